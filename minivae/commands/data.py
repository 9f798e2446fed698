"""List the known datasets and where their files are, or download one.

`minivae data list` prints a table of the datasets (mnist, fashion-mnist, kmnist), which splits are
present and in which folder. `minivae data fetch NAME` makes a dataset available, reusing verified
local copies and downloading the rest from the public mirrors (or --mirror URL / $MINIVAE_MIRROR).
Files are searched in --data-dir (and DIR/NAME), $MINIVAE_DATA (and /NAME), the cache
($XDG_CACHE_HOME or ~/.cache)/minivae/NAME, then system folders such as /usr/share/datasets/NAME.
Downloads go to DIR/NAME with --data-dir, else $MINIVAE_DATA/NAME, else the cache.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("list", help="table of the known datasets, which files are present and where")
    p.add_argument("--data-dir", default=None, help="extra folder to search first (default: none)")
    p = sub.add_parser("fetch", help="download a dataset (local copies are verified and reused)")
    p.add_argument("name", help="dataset name: mnist, fashion-mnist or kmnist")
    p.add_argument("--data-dir", default=None, help="folder to search first and to download into (DIR/NAME; default: $MINIVAE_DATA, else the cache)")
    p.add_argument("--mirror", action="append", default=None, metavar="URL",
                   help="base URL to download from instead of the built-in mirrors (repeatable; "
                        "also $MINIVAE_MIRROR; default: the built-in mirrors)")
    p.add_argument("--split", action="append", choices=("train", "test"), default=None,
                   help="split(s) to fetch (default: both)")
    p.add_argument("--timeout", type=float, default=30.0, help="network time-out in seconds")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from minivae.data import DataFileError, DatasetNotFoundError, DownloadError, describe, fetch

    try:
        if args.data_command == "list":
            print(describe(args.data_dir))
            return 0
        if args.data_command == "fetch":
            splits = tuple(args.split) if args.split else ("train", "test")
            paths = fetch(args.name, data_dir=args.data_dir, splits=splits, mirrors=args.mirror,
                          timeout=args.timeout, progress=not args.no_progress)
            for split, (images, labels) in paths.items():
                print(f"{args.name} {split}: {images}")
                print(f"{args.name} {split}: {labels}")
            return 0
        print(f"minivae data: unknown action {args.data_command!r}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader went away (`| head`): minivae.cli ends quietly
    except (DatasetNotFoundError, DataFileError, DownloadError, ValueError, OSError) as err:
        print(f"minivae data: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:  # Ctrl-C: 130, SIGTERM: 143, as `minivae train`
        print(f"minivae data: interrupted ({err if str(err).startswith('SIG') else 'SIGINT'}); files already "
              f"downloaded and verified are kept", file=sys.stderr)
        return getattr(err, "exit_status", 130)
