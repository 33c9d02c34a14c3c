"""`roberta` command: a dispatcher onto library functions, no logic of its own.

Each subcommand's flags are declared next to the library code it calls:
  run                                  -> roberta.pipelines.cli_run
  train-tokenizer, pretrain, finetune  -> roberta.training.commands
  export                               -> roberta.export
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from roberta import export
    from roberta.pipelines import cli_run
    from roberta.training import commands

    parser = argparse.ArgumentParser(prog="roberta", description="RoBERTa inference and training from the command line.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    cli_run.add_parser(sub)
    commands.add_parsers(sub)
    export.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, KeyError, TypeError) as err:  # a bad path or argument: one line, exit 2
        print(f"roberta {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
