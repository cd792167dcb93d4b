"""``python -m cli`` runs the ``nudge`` command."""

import sys

from cli import main

sys.exit(main())
