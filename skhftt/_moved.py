"""Old module names of skhftt 0.1, kept importable where their code moved.

``import skhftt.baselines`` gives the module :mod:`skhftt.detectors.zero_shot`
itself (not a copy), so classes keep one identity and detectors pickled with
skhftt 0.1 still load. New code should import from the new places.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys

MOVED: dict[str, str] = {
    "skhftt.baselines": "skhftt.detectors.zero_shot",
    "skhftt.image_baselines": "skhftt.detectors.image_fitted",
    "skhftt.detector": "skhftt.detectors.hftt",
    "skhftt.composite": "skhftt.detectors.composite",
    "skhftt.persistence": "skhftt.detectors.persistence",
    "skhftt.head": "skhftt.space.head",
    "skhftt.objective": "skhftt.space.objective",
    "skhftt.training": "skhftt.space.training",
    "skhftt.task": "skhftt.space.task",
    "skhftt.inputs": "skhftt.embedding.inputs",
    "skhftt.encoders.cache": "skhftt.embedding.cache",
    "skhftt.encoders": "skhftt.embedding.encoders",
    "skhftt.thresholds": "skhftt.removal.thresholds",
    "skhftt.filtering": "skhftt.removal.rules",
    "skhftt.explain": "skhftt.removal.explain",
    "skhftt.metrics": "skhftt.evaluation.metrics",
    "skhftt.plotting": "skhftt.evaluation.plotting",
    "skhftt.scoring.runner": "skhftt.batch.run",
    "skhftt.scoring": "skhftt.batch",
    "skhftt.distributed": "skhftt.batch.distributed",
}
"""Old module name -> new one; a moved package's submodules move with it."""

MOVED_ATTRIBUTES: dict[tuple[str, str], str] = {
    ("skhftt.corpora", "CORRUPTIONS"): "skhftt.evaluation",
    ("skhftt.corpora", "corrupt_image"): "skhftt.evaluation",
    ("skhftt.corpora", "make_corruption_set"): "skhftt.evaluation",
}
"""(module, name) -> the module that holds ``name`` now."""


def moved_attribute(module: str, name: str) -> object:
    """``module.name`` of skhftt 0.1, from where it lives now (for ``__getattr__``)."""
    new = MOVED_ATTRIBUTES.get((module, name))
    if new is None:
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    return getattr(importlib.import_module(new), name)


def new_name(old: str) -> str | None:
    """Where the module once called ``old`` lives now; None if it never moved."""
    if old in MOVED:
        return MOVED[old]
    package, _, child = old.rpartition(".")
    parent = new_name(package) if package.startswith("skhftt.") else None
    return f"{parent}.{child}" if parent else None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: object) -> None:
        # The import system returns whatever sys.modules holds once this ran.
        sys.modules[module.__name__] = importlib.import_module(self.target)


class _MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None):
        new = new_name(fullname) if fullname.startswith("skhftt.") else None
        if new is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new))


def install() -> None:
    """Make the old names importable (idempotent)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())
