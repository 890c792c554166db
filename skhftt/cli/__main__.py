"""``python -m skhftt.cli``: the ``skhftt`` command."""

from __future__ import annotations

import sys

from skhftt.cli.main import main

sys.exit(main())
