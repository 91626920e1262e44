"""Value types, names, references and canonical encodings. No I/O here."""
