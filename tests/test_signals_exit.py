"""The ``minivae`` program ignores SIGINT/SIGTERM once its command has finished (a kill during interpreter
shutdown must not turn a finished, saved run into "killed by SIGTERM"); ``main()`` called from Python restores
the caller's handlers instead."""
from __future__ import annotations

import signal
import subprocess
import sys

from minivae.cli import main


def test_console_program_ignores_signals_after_the_command():
    code = ("import signal; from minivae.cli import console_main; import sys; sys.argv = ['minivae', 'data', 'list'];"
            "status = console_main(); print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN, status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "True 0", out.stderr


def test_main_from_python_restores_the_callers_handlers(capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["data", "list"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before
