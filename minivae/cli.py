"""The ``minivae`` command line: ``minivae train | evaluate | sample | plot | data | gradcheck``.

Each sub-command lives in its own module under :mod:`minivae.commands` and provides two functions:
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status).
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
import warnings
import zipfile

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


def closest_flag(flag: str, options) -> str | None:
    """The option of ``options`` a mistyped ``flag`` most likely meant, or None: the one it abbreviates
    (``--epoch`` for ``--epochs``), the one made of its words' initials (``--learning-rate`` for ``--lr``),
    else the closest spelling (:func:`difflib.get_close_matches`, ``--batchsize`` for ``--batch-size``)."""
    flag = flag.split("=", 1)[0]
    longs = sorted(o for o in options if o.startswith("--"))
    prefixed = [o for o in longs if o.startswith(flag) and len(flag) > 2]
    if len(prefixed) == 1:
        return prefixed[0]
    words = [w for w in flag.lstrip("-").replace("_", "-").split("-") if w]
    initials = "--" + "".join(w[0] for w in words)
    if len(words) > 1 and initials in longs:
        return initials
    close = difflib.get_close_matches(flag.replace("_", "-"), longs, n=1, cutoff=0.6)
    return close[0] if close else None


def _plain_choices(message: str) -> str:
    """argparse's "(choose from 'a', 'b')" as "(choose from a, b)"."""
    return re.sub(r"\(choose from ([^)]*)\)", lambda m: "(choose from " + m.group(1).replace("'", "") + ")", message)


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with the errors a newcomer needs: no abbreviated flags (``--epoch`` is not taken
    for ``--epochs``); a bad value (wrong type, out of range, unknown choice) is one line naming the flag,
    the value and what is allowed, without the usage; an unknown flag or sub-command gets the usage of the
    sub-command it was given to and the closest name ("did you mean --lr?"). Exit status 2 as argparse's."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        choice = re.match(r"argument ([^:]+): invalid choice: '([^']*)' \(choose from ([^)]*)\)", message)
        if choice:
            options = [c.strip().strip("'") for c in choice.group(3).split(",")]
            close = difflib.get_close_matches(choice.group(2), options, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
            if choice.group(1) == "COMMAND":
                self.exit(2, f"{self.prog}: error: unknown command '{choice.group(2)}' (choose from "
                             f"{', '.join(options)}){hint}\n")
            self.exit(2, f"{self.prog}: error: {_plain_choices(message)}{hint}\n")
        if re.match(r"argument [^:]+: (invalid|must|expected (an integer|a number)|not a|no such)", message):
            self.exit(2, f"{self.prog}: error: {message}\n")  # a bad value: the line is enough
        super().error(message)  # usage, then the line

    def unknown_arguments(self, extras: list[str]):
        """Refuse ``extras`` (what no argument took) with the usage and, for a flag, the closest one."""
        flags = [a for a in extras if a.startswith("-") and a != "-"]
        if not flags:
            self.error(f"unexpected argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}")
        options = [o for action in self._actions for o in action.option_strings]
        close = closest_flag(flags[0], options)
        hint = f" (did you mean {close}?)" if close else f" (see {self.prog} --help)"
        self.error(f"unknown option {flags[0].split('=', 1)[0]}{hint}")


def build_parser() -> ArgumentParser:
    """The ``minivae`` parser: its sub-commands' parsers are kept in ``parser.subparsers`` (name to parser)."""
    parser = ArgumentParser(
        prog="minivae",
        description="Train, evaluate and inspect VAEs built on minivae's autodiff engine.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    parser.subparsers = {}
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"minivae.commands.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"minivae.commands.{name}":
                raise
            continue  # not built yet
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(name, help=_summary(doc) or name, description=doc, formatter_class=_HelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
        parser.subparsers[name] = p
    return parser


def _summary(doc: str) -> str:
    """The first sentence of a docstring's first paragraph (the line ``minivae --help`` shows per command)."""
    paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    return re.split(r"(?<=[.;])\s", paragraph, maxsplit=1)[0].rstrip(".;")


def _innermost(parser: ArgumentParser, args) -> ArgumentParser:
    """The parser of the sub-command (and its action: ``data fetch``) that ``args`` came through."""
    chosen = parser
    for _ in range(3):
        subs = [a for a in chosen._actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(args, subs[0].dest, None) if subs else None
        if name is None or name not in subs[0].choices:
            break
        chosen = subs[0].choices[name]
    return chosen


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse ``argv`` (default ``sys.argv[1:]``) as :func:`main` does; on an error print it and exit 2."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:
        _innermost(parser, args).unknown_arguments(extras)
    return args


def not_a_run(path: str) -> str | None:
    """Why ``path`` (given to ``evaluate``/``sample``/``plot``) is not a run, in words, or None when it
    may be one (a folder holding a checkpoint, or a checkpoint file: a zip archive). A folder of runs lists
    the runs inside it. A missing path is left to the loader's "checkpoint not found" message."""
    from pathlib import Path

    from minivae.train import CHECKPOINT

    p = Path(path)
    if p.is_file():
        if zipfile.is_zipfile(p):
            return None
        return (f"{path} is not a run: give the folder written by `minivae train --out DIR`, or the "
                f"{CHECKPOINT} inside it")
    if p.is_dir() and not (p / CHECKPOINT).exists():
        inside = sorted(str(c) for c in p.iterdir() if (c / CHECKPOINT).is_file())
        if inside:
            return f"{path} is a folder of runs, not a run; the runs inside: {', '.join(inside)}"
        return f"{path} is not a run: it holds no {CHECKPOINT} (a run is the folder `minivae train --out DIR` writes)"
    return None


def _one_line_warning(command: str):
    """A ``warnings.showwarning`` that prints ``minivae COMMAND: warning: MESSAGE``: one plain line, no
    source line."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"minivae {command}: warning: {message}", file=file or sys.stderr)

    return show


def console_main() -> int:
    """The ``minivae`` program (console script and ``python -m minivae``): :func:`main`, and once the command has
    finished, SIGINT/SIGTERM are ignored while the interpreter shuts down."""
    return main(_console=True)


def main(argv: list[str] | None = None, _console: bool = False) -> int:
    """Run a sub-command; returns its exit status. SIGINT/SIGTERM give ``128 + signal`` (130/143) and one
    line; any other error one line ``minivae CMD: error: ...`` and status 1 (``--debug``: the traceback);
    a closed stdout (``minivae data list | head``) ends quietly."""
    from minivae.signals import GracefulStop

    args = parse_args(argv)
    if args.command in ("evaluate", "sample", "plot"):
        problem = not_a_run(args.checkpoint)
        if problem:
            print(f"minivae {args.command}: error: {problem}", file=sys.stderr)
            return 1
    try:
        with GracefulStop(ignore_after=_console), warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command)
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
