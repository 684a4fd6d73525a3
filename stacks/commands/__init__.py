"""The `authgate` subcommands, one module each (see stacks/cli.py)."""
