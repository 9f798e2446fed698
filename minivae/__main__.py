"""``python -m minivae`` runs the ``minivae`` command line."""
import sys

from minivae.cli import console_main

sys.exit(console_main())
