from __future__ import annotations

import numpy as np
import pytest
from _synthetic import make_task_world
from sklearn.base import clone
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
    parametrize_with_checks,
)

from skhftt import HFTTDetector
from skhftt.embedding.encoders.hashing import HashingEncoder


@pytest.fixture(scope="module")
def pu_data():
    data = make_task_world(n_world=300, seed=2)
    X = np.vstack([data["world"], data["prompts"]])
    y = np.r_[np.zeros(len(data["world"])), np.ones(len(data["prompts"]))].astype(int)
    return X, y


@pytest.mark.parametrize(
    "check",
    [check_estimator_cloneable, check_estimator_repr, check_no_attributes_set_in_init,
     check_parameters_default_constructible, check_get_params_invariance, check_set_params,
     check_do_not_raise_errors_in_init_or_set_params],
)
@pytest.mark.parametrize("encoder", ["openai/clip-vit-base-patch16", "precomputed"])
def test_api_checks_on_text_estimator(check, encoder):
    check("HFTTDetector", HFTTDetector(encoder=encoder))


# Checks that cannot apply to HFTT on precomputed embeddings, with the reason.
# sklearn's generic checks fit with y = multi-class labels (0, 1, 2, ...) or
# with no y at all. HFTT's y is the task: task embeddings or 0/1 PU labels
# (1 = task text, 0 = world text); without one it has nothing to learn, so
# these fits are refused with an error naming the labels.
_MULTICLASS_Y = "fits with multi-class y; HFTT's y must be 0/1 PU labels or task embeddings"
EXPECTED_FAILED_CHECKS = dict.fromkeys(
    [
        "check_fit_score_takes_y", "check_estimators_overwrite_params",
        "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
        "check_readonly_memmap_input", "check_n_features_in_after_fitting",
        "check_positive_only_tag_during_fit", "check_estimators_dtypes",
        "check_dtype_object", "check_f_contiguous_array_estimator",
        "check_classifier_data_not_an_array", "check_non_transformer_estimators_n_iter",
        "check_methods_sample_order_invariance", "check_methods_subset_invariance",
        "check_dict_unchanged", "check_fit2d_predict1d", "check_fit2d_1sample",
        "check_fit2d_1feature",
    ],
    _MULTICLASS_Y,
) | {
    "check_outliers_train": "calls fit(X) with no task at all",
    "check_outliers_fit_predict": "fit_predict is deliberately unavailable: HFTT fits on "
    "texts and predicts on images",
    "check_complex_data": "passes complex y, which is neither labels nor a task",
    "check_estimator_sparse_array": "sparse embeddings are not supported (CLIP "
    "embeddings are dense); the y error comes first",
    "check_estimator_sparse_matrix": "sparse embeddings are not supported (CLIP "
    "embeddings are dense); the y error comes first",
    "check_estimator_sparse_tag": "sparse embeddings are not supported",
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [HFTTDetector(encoder="precomputed", n_embeddings=3, random_state=0)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_checks_on_precomputed(estimator, check):
    check(estimator)


def test_clone_keeps_params_and_drops_fitted_state(pu_data):
    det = HFTTDetector(encoder="precomputed", n_embeddings=4, gamma=2.0, random_state=3)
    det.fit(*pu_data)
    copy = clone(det)
    assert copy.get_params() == det.get_params()
    assert not hasattr(copy, "head_")


def test_clone_shares_encoder_objects():
    encoder = HashingEncoder()
    assert clone(HFTTDetector(encoder=encoder)).encoder is encoder


def test_set_params_changes_the_fit(pu_data):
    det = HFTTDetector(encoder="precomputed", random_state=0)
    assert det.set_params(n_embeddings=3) is det
    assert det.fit(*pu_data).trainable_columns_.shape[0] == 3


def test_pipeline_with_precomputed_embeddings(pu_data):
    X, y = pu_data
    scale = FunctionTransformer(lambda x: 2.0 * x)
    pipe = Pipeline([("scale", scale), ("hftt", HFTTDetector(encoder="precomputed",
                                                             random_state=0))])
    pipe.fit(X, y)
    direct = HFTTDetector(encoder="precomputed", random_state=0).fit(X, y)
    np.testing.assert_allclose(pipe.decision_function(X), direct.decision_function(X),
                               rtol=1e-4, atol=1e-3)
    assert set(np.unique(pipe.predict(X))) <= {-1, 1}


def test_pipeline_with_texts():
    encoder = HashingEncoder(dim=32)
    texts = [f"a photo of a {w}" for w in "dog cat car bus tree road lamp desk".split()] * 5
    texts += ["a ripe apple", "a ripe banana", "a ripe cherry"]
    y = np.r_[np.zeros(40), np.ones(3)].astype(int)
    pipe = Pipeline([("hftt", HFTTDetector(encoder=encoder, random_state=0))]).fit(texts, y)
    scores = pipe.decision_function(["a ripe apple", "a photo of a bus"])
    assert scores[0] > scores[1]


def test_gridsearch_on_pu_labels_gives_finite_scores(pu_data):
    X, y = pu_data
    search = GridSearchCV(
        HFTTDetector(encoder="precomputed", random_state=0),
        {"n_embeddings": [2, 8], "gamma": [0.0, 1.0]},
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all() and (scores > 0.5).all()
    assert search.best_estimator_.head_.trainable_columns.shape[0] in (2, 8)


def test_cross_val_score_with_average_precision(pu_data):
    X, y = pu_data
    scores = cross_val_score(
        HFTTDetector(encoder="precomputed", random_state=0), X, y,
        scoring="average_precision", cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    assert np.isfinite(scores).all()
