"""The ``minivae`` command line: ``minivae train | evaluate | sample | plot | data | gradcheck``.

Each sub-command lives in its own module under :mod:`minivae.commands` and provides two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

#: Sub-commands in the order ``minivae --help`` lists them.
COMMANDS = ("train", "evaluate", "sample", "plot", "data", "gradcheck")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the docstrings' line breaks; show a default only where one is set and the help omits it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is not None and action.default is not False and action.default != argparse.SUPPRESS \
                and "default" not in text:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minivae",
        description="Train, evaluate and inspect VAEs built on minivae's autodiff engine.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"minivae.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"minivae.commands.{name}":
                raise
            continue  # not built yet
        doc = (module.__doc__ or "").strip().splitlines()
        p = sub.add_parser(name, help=doc[0] if doc else name, description=(module.__doc__ or "").strip(),
                           formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def console_main() -> int:
    """The ``minivae`` program (console script and ``python -m minivae``): :func:`main`, and once the command has
    finished, SIGINT/SIGTERM are ignored while the interpreter shuts down."""
    return main(_console=True)


def main(argv: list[str] | None = None, _console: bool = False) -> int:
    """Run a sub-command; returns its exit status. SIGINT/SIGTERM give ``128 + signal`` (130/143) and one
    line; any other error one line ``minivae CMD: error: ...`` and status 1 (``--debug``: the traceback);
    a closed stdout (``minivae data list | head``) ends quietly."""
    from minivae.signals import GracefulStop

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with GracefulStop(ignore_after=_console):
            return int(args._run(args) or 0)
    except KeyboardInterrupt as err:
        hint = " The last finished epoch's checkpoint is kept; continue with `minivae train --resume DIR`." \
            if args.command == "train" else ""
        name = str(err) if str(err).startswith("SIG") else "SIGINT"
        print(f"\nminivae {args.command}: interrupted ({name}).{hint}", file=sys.stderr)
        return getattr(err, "exit_status", 130)
    except BrokenPipeError:
        # the reader went away (`| head`): point stdout at /dev/null so the flush at exit cannot fail too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a pipeline cut short
    except Exception as err:  # noqa: BLE001 - one line for the user; --debug shows the traceback
        if args.debug:
            raise
        print(f"minivae {args.command}: error: {type(err).__name__}: {err} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(console_main())
