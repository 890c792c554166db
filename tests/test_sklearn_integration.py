"""The scikit-learn estimator contract, for every detector, tested directly.

scikit-learn's generic checks (``parametrize_with_checks``) fit with
multi-class ``y`` or with no ``y`` at all; a detector's ``y`` is its task (or
0/1 PU labels), so most of them cannot apply. Instead, the invariants they
cover are asserted here on valid data: ``fit`` returns ``self`` and mutates
neither its arguments nor the parameters, ``clone`` and pickle round-trip,
scores do not depend on which other rows are scored with them,
``n_features_in_`` exists exactly with precomputed embeddings, fitting is
idempotent, every invalid parameter is named, and a failed fit changes
nothing. The API checks that need no numeric ``X`` run as they are.
"""

from __future__ import annotations

import copy
import os
import pickle
from importlib import metadata

import numpy as np
import pytest
import sklearn
from _detectors import (
    CLASSES,
    DIM,
    IMAGE_FITTED,
    KINDS,
    data,
    fit_arguments,
    fitted,
    late_failing_fit,
    make,
)
from _synthetic import make_task_world
from packaging.requirements import Requirement
from packaging.version import Version
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from sklearn.utils.validation import check_is_fitted

from skhftt import HFTTDetector
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.embedding.inputs import Texts

API_CHECKS = [
    check_estimator_cloneable, check_estimator_repr, check_no_attributes_set_in_init,
    check_parameters_default_constructible, check_get_params_invariance, check_set_params,
    check_do_not_raise_errors_in_init_or_set_params,
]


@pytest.fixture(scope="module")
def values():
    return data()


def _fitted_attributes(detector) -> dict:
    return {name: value for name, value in vars(detector).items() if name.endswith("_")}


def _outputs(detector, X) -> dict[str, np.ndarray]:
    methods = ["score_samples", "decision_function", "predict"]
    if hasattr(detector, "predict_proba"):
        methods.append("predict_proba")
    return {method: getattr(detector, method)(X) for method in methods}


# ------------------------------------------------------------- API checks


@pytest.mark.parametrize("check", API_CHECKS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("encoder", ["openai/clip-vit-base-patch16", "precomputed"])
def test_api_checks(check, kind, encoder):
    check(kind, CLASSES[kind](encoder=encoder))


# -------------------------------------------------------------- invariants


@pytest.mark.parametrize("kind", KINDS)
def test_fit_returns_self_and_mutates_neither_arguments_nor_parameters(kind, values):
    detector = make(kind)
    X, y = fit_arguments(kind, values)
    X_before, y_before = copy.deepcopy(X), copy.deepcopy(y)
    params = detector.get_params(deep=False)
    params_before = copy.deepcopy(params)
    assert detector.fit(X, y) is detector
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    after = detector.get_params(deep=False)
    assert after == params_before
    assert all(after[name] is params[name] for name in params)


@pytest.mark.parametrize("kind", KINDS)
def test_clone_and_pickle_round_trip(kind, values):
    detector = fitted(kind, values)
    copy_ = clone(detector)
    assert copy_.get_params() == detector.get_params()
    assert not _fitted_attributes(copy_)
    with pytest.raises(NotFittedError):
        copy_.score_samples(values["test"])
    restored = pickle.loads(pickle.dumps(detector))
    for method, expected in _outputs(detector, values["test"]).items():
        np.testing.assert_array_equal(getattr(restored, method)(values["test"]), expected,
                                      err_msg=method)


@pytest.mark.parametrize("kind", KINDS)
def test_scores_do_not_depend_on_the_other_rows(kind, values):
    detector = fitted(kind, values)
    X = values["test"]
    whole = _outputs(detector, X)
    subset = np.arange(0, len(X), 3)
    order = np.random.default_rng(0).permutation(len(X))
    # float32 products round differently in blocks of other sizes (~1e-7 relative), and
    # log-odds near 0 magnify that; a row that depended on the others would differ by far more.
    for rows in (subset, order, [5]):
        for method, expected in _outputs(detector, X[rows]).items():
            np.testing.assert_allclose(expected, whole[method][rows], rtol=1e-5, atol=1e-6,
                                       err_msg=method)


@pytest.mark.parametrize("kind", KINDS)
def test_n_features_in_exactly_when_precomputed(kind, values):
    detector = fitted(kind, values)
    assert detector.n_features_in_ == DIM == detector.embedding_dim_
    encoder = HashingEncoder(dim=DIM)
    if kind in IMAGE_FITTED:
        X, y = fit_arguments(kind, values)
        detector.set_params(encoder=encoder).fit(
            Texts([f"text {i}" for i in range(len(X))]), y)
    else:
        detector.set_params(encoder=encoder).fit(
            [f"world text {i}" for i in range(60)], ["a task text", "another one"])
    assert not hasattr(detector, "n_features_in_")
    assert detector.encoder_identity_ == encoder.identity


@pytest.mark.parametrize("kind", KINDS)
def test_fit_is_idempotent(kind, values):
    detector = fitted(kind, values)
    first = _outputs(detector, values["test"])
    detector.fit(*fit_arguments(kind, values))
    for method, expected in _outputs(detector, values["test"]).items():
        np.testing.assert_array_equal(getattr(detector, method)(values["test"]), expected,
                                      err_msg=method)
        np.testing.assert_array_equal(first[method], expected, err_msg=method)


# One invalid value for every parameter of every detector.
INVALID = {
    "encoder": 3, "templates": "a photo of a {}", "encode_batch_size": 0, "cache_dir": True,
    "device": 3, "verbose": -1, "n_embeddings": 0, "temperature": 0.0, "gamma": -1.0,
    "task_weight": 1.0, "threshold": float("nan"), "max_iter": 0, "batch_size": 0,
    "learning_rate_init": 0.0, "learning_rate": "no-such-schedule", "momentum": 1.0,
    "random_state": -1, "n_negatives": 1.5, "percentile": 101.0, "n_groups": 0, "C": 0.0,
    "shrinkage": "oas", "n_neighbors": 0, "candidates": "no-such-pool", "max_similarity": 2.0,
    "unwanted": "keep", "noun_templates": "the {}", "adjective_templates": "{}",
    "superclasses": "thing", "exclude_categories": "noun.person", "mcm_weight": 1.5,
    "mcm_temperature": 0.0, "calibration_size": 1,
}
PARAMETERS = [(kind, name) for kind in KINDS for name in CLASSES[kind]().get_params()]


@pytest.mark.parametrize(("kind", "name"), PARAMETERS)
def test_invalid_parameters_are_named(kind, name, values):
    assert name in INVALID, f"add an invalid value of {name!r} to INVALID"
    detector = make(kind, **{name: INVALID[name]})
    with pytest.raises((ValueError, TypeError), match=name):
        detector.fit(*fit_arguments(kind, values))
    assert not _fitted_attributes(detector)


# -------------------------------------------------------------- failed fit


@pytest.mark.parametrize("kind", KINDS)
def test_failed_first_fit_leaves_the_detector_unfitted(kind, values):
    params, X, y = late_failing_fit(kind, values)
    detector = make(kind, **params)
    with pytest.raises(ValueError):
        detector.fit(X, y)
    assert not _fitted_attributes(detector)
    with pytest.raises(NotFittedError):
        check_is_fitted(detector)
    with pytest.raises(NotFittedError):
        detector.predict(values["test"])


@pytest.mark.parametrize("kind", KINDS)
def test_failed_refit_keeps_the_previous_state(kind, values):
    detector = fitted(kind, values)
    before = pickle.dumps(_fitted_attributes(detector))
    outputs = _outputs(detector, values["test"])
    params, X, y = late_failing_fit(kind, values)
    with pytest.raises(ValueError):
        detector.set_params(**params).fit(X, y)
    assert pickle.dumps(_fitted_attributes(detector)) == before
    for method, expected in outputs.items():
        np.testing.assert_array_equal(getattr(detector, method)(values["test"]), expected)


# ------------------------------------------------------ model selection


@pytest.fixture(scope="module")
def pu_data():
    task = make_task_world(n_world=300, seed=2)
    X = np.vstack([task["world"], task["prompts"]])
    y = np.r_[np.zeros(len(task["world"])), np.ones(len(task["prompts"]))].astype(int)
    return X, y


def test_clone_shares_encoder_objects():
    encoder = HashingEncoder()
    assert clone(HFTTDetector(encoder=encoder)).encoder is encoder


def test_set_params_changes_the_fit(pu_data):
    det = HFTTDetector(encoder="precomputed", random_state=0)
    assert det.set_params(n_embeddings=3) is det
    assert det.fit(*pu_data).head_.trainable_columns.shape[0] == 3


def test_pipeline_with_precomputed_embeddings(pu_data):
    X, y = pu_data
    scale = FunctionTransformer(lambda x: 2.0 * x)
    pipe = Pipeline([("scale", scale), ("hftt", HFTTDetector(encoder="precomputed",
                                                             random_state=0))])
    pipe.fit(X, y)
    direct = HFTTDetector(encoder="precomputed", random_state=0).fit(X, y)
    np.testing.assert_allclose(pipe.decision_function(X), direct.decision_function(X),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(pipe.predict(X), direct.predict(X))


def test_pipeline_with_texts():
    encoder = HashingEncoder(dim=32)
    texts = [f"a photo of a {w}" for w in "dog cat car bus tree road lamp desk".split()] * 5
    texts += ["a ripe apple", "a ripe banana", "a ripe cherry"]
    y = np.r_[np.zeros(40), np.ones(3)].astype(int)
    pipe = Pipeline([("hftt", HFTTDetector(encoder=encoder, random_state=0))]).fit(texts, y)
    scores = pipe.decision_function(Texts(["a ripe apple", "a photo of a bus"]))
    assert scores[0] > scores[1]


def test_gridsearch_scores_each_candidate_as_a_manual_loop_and_refits_the_best(pu_data):
    X, y = pu_data
    base = HFTTDetector(encoder="precomputed", random_state=0)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    search = GridSearchCV(base, {"n_embeddings": [2, 8], "gamma": [0.0, 1.0]},
                          scoring="roc_auc", cv=cv, error_score="raise").fit(X, y)
    means = search.cv_results_["mean_test_score"]
    for params, mean in zip(search.cv_results_["params"], means, strict=True):
        manual = [
            roc_auc_score(y[test], clone(base).set_params(**params).fit(X[train], y[train])
                          .decision_function(X[test]))
            for train, test in cv.split(X, y)
        ]
        assert mean == pytest.approx(np.mean(manual), abs=1e-12)
    assert (means > 0.9).all()
    assert search.best_params_ == search.cv_results_["params"][int(np.argmax(means))]
    refit = clone(base).set_params(**search.best_params_).fit(X, y)
    np.testing.assert_array_equal(search.best_estimator_.head_.trainable_columns,
                                  refit.head_.trainable_columns)


def test_cross_val_score_equals_a_manual_loop(pu_data):
    X, y = pu_data
    base = HFTTDetector(encoder="precomputed", random_state=0)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(base, X, y, scoring="average_precision", cv=cv)
    manual = [
        average_precision_score(y[test], clone(base).fit(X[train], y[train])
                                .decision_function(X[test]))
        for train, test in cv.split(X, y)
    ]
    np.testing.assert_allclose(scores, manual, rtol=0, atol=1e-12)
    assert (scores > 5 * y.mean()).all()  # far above the precision of a random ranking


# ------------------------------------------------------- scikit-learn version


def test_the_installed_scikit_learn_is_one_the_package_allows():
    """Records the scikit-learn these tests ran against.

    CI runs the estimator tests once more against the oldest scikit-learn
    the package allows and sets ``SKHFTT_EXPECTED_SKLEARN`` to that version,
    so that this test fails if the job silently ran another one.
    """
    requirement = next(Requirement(text) for text in metadata.requires("skhftt")
                       if Requirement(text).name == "scikit-learn")
    assert requirement.specifier.contains(sklearn.__version__), sklearn.__version__
    expected = os.environ.get("SKHFTT_EXPECTED_SKLEARN")
    if expected:
        assert Version(sklearn.__version__) == Version(expected), (sklearn.__version__, expected)
