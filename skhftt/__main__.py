"""``python -m skhftt``: the ``skhftt`` command line."""

from __future__ import annotations

import sys

from skhftt.cli import main

sys.exit(main())
