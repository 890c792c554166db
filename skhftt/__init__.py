"""skhftt: remove unwanted images with a detector trained on text alone.

The estimator is :class:`HFTTDetector`; see its docstring for the method
(HFTT, Lee et al., NeurIPS 2024) and the scikit-learn conventions it follows.
:class:`HFTTEnsembleDetector` blends it with MCM's zero-shot score and is
the detector recommended for both OOD and unwanted-concept removal.

The packages, in the direction data flows:

* :mod:`skhftt.corpora` -- texts: world corpora, ImageNet, task texts.
* :mod:`skhftt.embedding` -- inputs and encoders -> unit embeddings.
* :mod:`skhftt.space` -- the maths on embeddings: head, loss, training.
* :mod:`skhftt.detectors` -- the estimators.
* :mod:`skhftt.removal` -- scores -> the images to remove.
* :mod:`skhftt.evaluation` -- metrics, scorers, plots.
* :mod:`skhftt.batch` -- scoring shards of images or embeddings, locally or on Dask.
* :mod:`skhftt.cli` -- the ``skhftt`` command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skhftt._show_versions import show_versions

if TYPE_CHECKING:
    from skhftt.detectors.ensemble import HFTTEnsembleDetector
    from skhftt.detectors.hftt import HFTTDetector
    from skhftt.space.head import HFTTHead

__version__ = "0.3.0"

__all__ = ["HFTTDetector", "HFTTEnsembleDetector", "HFTTHead", "__version__", "show_versions"]

# Imported on first use, so that ``import skhftt.cli`` (``skhftt --help``)
# does not pay for scikit-learn and torch.
_LAZY = {
    "HFTTDetector": "skhftt.detectors.hftt",
    "HFTTEnsembleDetector": "skhftt.detectors.ensemble",
    "HFTTHead": "skhftt.space.head",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'skhftt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
