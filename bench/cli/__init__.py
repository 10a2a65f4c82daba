"""The command line: the parser, the help pages, and one thin module per command."""
