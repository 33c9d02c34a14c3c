"""`roberta` command: a dispatcher onto library functions, no logic of its own.

Each subcommand's flags are declared next to the library code it calls:
  run                                  -> roberta.pipelines.cli_run (--engine ray: roberta.serve.ray_run)
  serve                                -> roberta.serve.command
  train-tokenizer, pretrain, finetune  -> roberta.training.commands
  export                               -> roberta.export

Every failure ends in a short message naming the problem and a non-zero exit: 2 for bad input (files, flags,
data, a missing extra: OSError, ValueError, KeyError, TypeError, ImportError and kin), 1 for anything unexpected, 130 / 143 when
stopped by SIGINT / SIGTERM. `--debug` (or ROBERTA_DEBUG=1) shows the traceback instead.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

_BAD_INPUT = (OSError, ValueError, KeyError, TypeError, LookupError, UnicodeError, ImportError)
_MAX_LINES = 3


def build_parser() -> argparse.ArgumentParser:
    from roberta import export
    from roberta.pipelines import cli_run
    from roberta.serve import command as serve_command, ray_run
    from roberta.training import commands

    parser = argparse.ArgumentParser(prog="roberta", description="RoBERTa inference and training from the command line.")
    parser.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ray_run.add_engine_arguments(cli_run.add_parser(sub))
    commands.add_parsers(sub)
    export.add_parser(sub)
    serve_command.add_parser(sub)
    for command in sub.choices.values():  # also accepted after the subcommand: `roberta run ... --debug`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="on an error, show the full traceback")
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` (temp-file cleanup) runs before the exit."""


def _terminate(signum, frame):
    raise Terminated("SIGTERM")


def describe(err: BaseException) -> str:
    """A few lines naming the problem: the message, with the exception type where the message alone is vague."""
    text = str(err).strip()
    if isinstance(err, KeyError) and len(err.args) == 1 and isinstance(err.args[0], str):
        text = err.args[0]  # str(KeyError) wraps its message in quotes
    if isinstance(err, MemoryError):
        return "out of memory" + (f": {text}" if text else "")
    if not text:
        return type(err).__name__
    lines = text.splitlines()
    if len(lines) > _MAX_LINES:
        lines = lines[:_MAX_LINES] + ["..."]
    message = "\n  ".join(lines)
    return message if isinstance(err, _BAD_INPUT) else f"{type(err).__name__}: {message}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get("ROBERTA_DEBUG", "") not in ("", "0")
    name = f"roberta {args.command}"
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if on_main_thread else None
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as err:  # Ctrl-C, SIGTERM, or training stopped by either (checkpoint saved)
        signum = getattr(err, "signum", signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT)
        print(f"{name}: interrupted" + (f" ({err})" if str(err) else ""), file=sys.stderr)
        return 128 + int(signum)
    except Exception as err:
        if debug:
            raise
        hint = "" if isinstance(err, _BAD_INPUT) else " (run with --debug for the traceback)"
        print(f"{name}: error: {describe(err)}{hint}", file=sys.stderr)
        return 2 if isinstance(err, _BAD_INPUT) else 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
