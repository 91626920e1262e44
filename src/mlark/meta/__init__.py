"""The metadata database: schema, migrations, engines and queries."""
