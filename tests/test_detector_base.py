"""What every detector inherits, seen through a new detector written in a dozen lines.

A new kind of detector subclasses BaseTextDetector, declares its fitted
attributes and what each must look like in a saved file, and assigns them at
the end of ``fit``; scoring chain, operating point, persistence (validated at
load) and the estimator API then come with the base class.
"""

from __future__ import annotations

from numbers import Real
from typing import ClassVar

import numpy as np
import pytest
from _detectors import CLASSES
from _synthetic import make_task_world
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import check_estimator_repr, check_get_params_invariance

from skhftt._sklearn_compat import Interval, fit_context
from skhftt.detectors import load_detector
from skhftt.detectors.base import BaseTextDetector, space_state
from skhftt.detectors.fitted import Array, Names
from skhftt.detectors.persistence import registered_kinds


class CentroidDetector(BaseTextDetector):
    """Cosine similarity to the normalised mean of the task columns."""

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "threshold": [Interval(Real, -1, 1, closed="both")],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, "task_names_", "centroid_",
    )
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec, "task_names_": Names("C"), "centroid_": Array(("dim",)),
    }

    def __init__(self, *, encoder="precomputed", unwanted="mismatch", templates=None,
                 threshold=0.0, encode_batch_size=256, cache_dir=None, device="auto",
                 verbose=0):
        self.encoder = encoder
        self.unwanted = unwanted
        self.templates = templates
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    @fit_context
    def fit(self, X, y=None):
        data = self._fit_data(X, y, need_world=False)
        centroid = data.task_columns.astype(np.float64).mean(axis=0)
        self._set_fitted({
            **space_state(data.space, data.digests),
            "task_names_": list(data.task.names),
            "centroid_": centroid / np.linalg.norm(centroid),
            "offset_": self._offset_of(self.threshold),
        })
        return self

    def score_samples(self, X):
        return self.embed(X).astype(np.float64) @ self.centroid_


@pytest.fixture(scope="module")
def data():
    return make_task_world(n_classes=3, dim=16, n_world=50, seed=3)


@pytest.fixture
def detector(data):
    return CentroidDetector().fit(None, data["prompts"])


def test_the_new_kind_has_the_estimator_api(detector, data):
    check_estimator_repr("CentroidDetector", CentroidDetector())
    check_get_params_invariance("CentroidDetector", CentroidDetector())
    assert detector.n_features_in_ == 16 and detector.encoder_spec_ == "precomputed"
    X = np.vstack([data["in_test"], data["out_test"]])
    np.testing.assert_array_equal(detector.decision_function(X), detector.score_samples(X))
    assert not hasattr(detector, "predict_proba") and not hasattr(detector, "fit_predict")
    with pytest.raises(NotFittedError):
        CentroidDetector().predict(X)


@pytest.mark.parametrize("name", ["decision_function", "predict", "set_threshold", "embed"])
def test_every_detector_inherits_the_scoring_chain(name):
    for cls in CLASSES.values():
        assert getattr(cls, name) is getattr(BaseTextDetector, name), cls.__name__


def test_an_input_exactly_at_the_threshold_is_predicted_plus_one(detector, data):
    X = np.vstack([data["in_test"], data["out_test"]])
    scores = detector.score_samples(X)
    detector.set_threshold(float(scores[60]))
    assert detector.decision_function(X)[60] == 0.0
    predicted = detector.predict(X)
    assert predicted[60] == 1
    np.testing.assert_array_equal(predicted, np.where(scores >= scores[60], 1, -1))


def test_the_new_kind_saves_and_loads_without_more_code(detector, data, tmp_path):
    assert "CentroidDetector" in registered_kinds()
    detector.set_threshold(0.25).save(tmp_path / "centroid.safetensors")
    loaded = load_detector(tmp_path / "centroid.safetensors")
    assert type(loaded) is CentroidDetector and loaded.threshold == 0.25
    X = data["out_test"]
    np.testing.assert_array_equal(loaded.score_samples(X), detector.score_samples(X))
    np.testing.assert_array_equal(loaded.predict(X), detector.predict(X))


def test_a_failed_fit_assigns_nothing(data):
    detector = CentroidDetector()
    with pytest.raises(ValueError):
        detector.fit(None, np.full((2, 16), np.nan))
    assert not [name for name in vars(detector) if name.endswith("_")]


def test_a_fit_must_assign_exactly_the_declared_attributes(data):
    with pytest.raises(ValueError, match=r"missing \['centroid_'\]"):
        CentroidDetector()._set_fitted({"embedding_dim_": 16, "encoder_identity_": None,
                                        "encoder_spec_": "precomputed", "offset_": 0.0,
                                        "training_digests_": None, "task_names_": ["a"]})


def test_two_kinds_of_one_name_are_refused():
    with pytest.raises(TypeError, match="two detector classes are named 'CentroidDetector'"):
        type("CentroidDetector", (CentroidDetector,), {})
