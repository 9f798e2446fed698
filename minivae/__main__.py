"""``python -m minivae`` runs the ``minivae`` command line."""
import sys

from minivae.cli import main

sys.exit(main())
