"""CLI subcommands: each module offers `add_parser(subparsers)` and `execute(args) -> int`."""
