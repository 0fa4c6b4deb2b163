"""``python -m dendrax``: the ``dendrax`` command (see dendrax.cli)."""

import sys

from dendrax.cli import main

sys.exit(main())
