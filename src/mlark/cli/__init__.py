"""The command line: the only place (with the server) that reads the environment, prints, or exits."""
