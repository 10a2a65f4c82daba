"""One module per command, each with ``add_parser(subparsers)`` and a handler."""
