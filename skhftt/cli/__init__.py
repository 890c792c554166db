"""The ``skhftt`` command line: one module per command, no business logic."""

from __future__ import annotations

from skhftt.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
