"""Sphinx configuration of the skhftt documentation."""

from __future__ import annotations

import skhftt

project = "skhftt"
copyright = "2026, the skhftt developers"
version = release = skhftt.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = {"GL08"}
numpydoc_validation_exclude = {r"\.__init__$", r"\.__sklearn_tags__$", r"\.__sklearn_clone__$"}

# No network: cross-references to other projects are written as plain text.
intersphinx_mapping: dict = {}
nitpicky = False

html_theme = "pydata_sphinx_theme"
html_title = "skhftt"
html_theme_options = {"navigation_with_keys": False}
