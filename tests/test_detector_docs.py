"""The detectors' docstrings are written out: numpydoc validates them and their examples run."""

from __future__ import annotations

import doctest
import importlib

import numpydoc.validate
import pytest
from _detectors import CLASSES

MODULES = [
    "skhftt.detectors.base", "skhftt.detectors.fitted", "skhftt.detectors.hftt",
    "skhftt.detectors.ensemble", "skhftt.detectors.similarity",
    "skhftt.detectors.negative_labels", "skhftt.detectors.image_fitted",
    "skhftt.detectors.persistence", "skhftt.corpora._pools", "skhftt.space.blocks",
]
METHODS = ["fit", "score_samples", "decision_function", "predict", "predict_proba",
           "set_threshold", "embed", "save", "load"]
# A method may leave out a See Also, an Examples and an extended summary, and describe
# its return value on the first line.
METHOD_CHECKS_SKIPPED = {"SA01", "EX01", "ES01", "RT02", "RT03"}


@pytest.mark.parametrize("module", MODULES)
def test_the_examples_run(module):
    result = doctest.testmod(importlib.import_module(module),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("kind", list(CLASSES))
def test_every_detector_docstring_passes_numpydoc_validation(kind):
    cls = CLASSES[kind]
    assert "{" + "tail}" not in cls.__doc__
    assert numpydoc.validate.validate(f"{cls.__module__}.{kind}")["errors"] == []
    for method in METHODS:
        if hasattr(cls, method):
            errors = numpydoc.validate.validate(f"{cls.__module__}.{kind}.{method}")["errors"]
            assert [e for e in errors if e[0] not in METHOD_CHECKS_SKIPPED] == [], method


@pytest.mark.parametrize("kind", list(CLASSES))
def test_every_threshold_doc_states_its_unit_and_default(kind):
    cls = CLASSES[kind]
    threshold = cls.__doc__.split("    threshold : ")[1].split("\n    encode_batch_size")[0]
    default = cls().threshold
    written = f'"{default}"' if isinstance(default, str) else str(default)
    assert threshold.splitlines()[0].endswith(f"default={written}"), threshold
    assert any(word in threshold for word in ("Probability", "probability", "Cut-off")), kind
