"""skhftt: remove unwanted images with a detector trained on text alone.

The estimator is :class:`HFTTDetector`; see its docstring for the method
(HFTT, Lee et al., NeurIPS 2024) and the scikit-learn conventions it follows.
"""

from __future__ import annotations

from skhftt._show_versions import show_versions
from skhftt.detector import HFTTDetector
from skhftt.head import HFTTHead

__version__ = "0.1.0"

__all__ = ["HFTTDetector", "HFTTHead", "__version__", "show_versions"]
