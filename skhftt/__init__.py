"""skhftt: remove unwanted images with a detector trained on text alone.

The estimator is :class:`HFTTDetector`; see its docstring for the method
(HFTT, Lee et al., NeurIPS 2024) and the scikit-learn conventions it follows.

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

from skhftt import _moved
from skhftt._show_versions import show_versions
from skhftt.detectors.hftt import HFTTDetector
from skhftt.space.head import HFTTHead

_moved.install()

__version__ = "0.1.0"

__all__ = ["HFTTDetector", "HFTTHead", "__version__", "show_versions"]
