"""Every detector's default operating point means something on its own scale.

MCM, MaxLogit and Energy set their cut at fit where task prompts and world
texts separate best (their equal-error point); MSP, Mahalanobis and KNN keep
95 % of the images they were fitted on (KNN by leave-one-out), as
scikit-learn's outlier detectors set ``offset_`` from ``contamination``.
Before, MCM's default cut of 0 made every input +1 (its scores lie in
[1/C, 1]) and KNN's and Mahalanobis's made nearly every input -1.
"""

from __future__ import annotations

import numpy as np
import pytest
from _synthetic import make_task_world, unit
from sklearn.base import clone

from skhftt.detectors import (
    EnergyDetector,
    KNNDetector,
    MahalanobisDetector,
    MaxLogitDetector,
    MCMDetector,
    MSPDetector,
)
from skhftt.detectors.image_fitted import kth_neighbour_similarity

SIMILARITY = [MCMDetector, MaxLogitDetector, EnergyDetector]
IMAGE_FITTED = [MSPDetector, MahalanobisDetector, KNNDetector]


@pytest.fixture(scope="module")
def data():
    task = make_task_world(n_classes=4, prompts_per_class=10, n_world=400, dim=16, seed=6)
    rng = np.random.default_rng(8)
    codes = np.repeat(np.arange(4), 50)
    task["images"] = unit(task["centres"][codes] + 0.15 * rng.normal(size=(200, 16)))
    task["labels"] = codes
    task["held_out"] = unit(task["centres"][codes] + 0.15 * rng.normal(size=(200, 16)))
    task["classes"] = {f"class {c}": task["prompts"][10 * c: 10 * c + 10] for c in range(4)}
    return task


def _smallest_gap(task_scores, world_scores):
    """The least difference, over every cut, between the task share below and the world share at
    or above it."""
    cuts = np.unique(np.r_[task_scores, world_scores])
    return min(abs(np.mean(task_scores < c) - np.mean(world_scores >= c)) for c in cuts)


@pytest.mark.parametrize("cls", SIMILARITY)
def test_the_default_cut_is_the_equal_error_point_of_task_prompts_and_world(data, cls):
    det = cls(encoder="precomputed").fit(data["world"], data["classes"])
    assert det.threshold == "auto"
    task, world = det.score_samples(data["prompts"]), det.score_samples(data["world"])
    gap = abs(np.mean(task < det.offset_) - np.mean(world >= det.offset_))
    assert gap == pytest.approx(_smallest_gap(task, world))
    assert det.offset_ in np.r_[task, world]  # a score, not a value in between


@pytest.mark.parametrize("cls", SIMILARITY)
def test_the_default_cut_separates_the_task_from_the_rest(data, cls):
    det = cls(encoder="precomputed").fit(data["world"], data["classes"])
    assert (det.predict(data["in_test"]) == 1).mean() > 0.7
    assert (det.predict(data["out_test"]) == -1).mean() > 0.9


def test_mcm_default_no_longer_matches_every_input(data):
    det = MCMDetector(encoder="precomputed").fit(data["world"], data["classes"])
    scores = det.score_samples(data["out_test"])
    assert (scores >= 1 / 4).all()  # MCM's scores lie in [1/C, 1]: a cut of 0 took them all
    assert det.offset_ > 1 / 4
    assert (det.predict(data["out_test"]) == -1).any()


@pytest.mark.parametrize("cls", SIMILARITY)
def test_the_world_sample_is_seeded_and_at_most_5000_texts(cls):
    from skhftt.detectors.base import calibration_rows, equal_error_cut

    rng = np.random.default_rng(3)
    task, world = unit(rng.normal(size=(6, 16))), unit(rng.normal(size=(6000, 16)))
    det = cls(encoder="precomputed").fit(world, task)
    sample = world[calibration_rows(6000)]
    assert len(sample) == 5000
    expected = equal_error_cut(det.score_samples(task), det.score_samples(sample))
    assert det.offset_ == expected
    assert clone(det).fit(world, task).offset_ == det.offset_


@pytest.mark.parametrize("cls", SIMILARITY)
def test_without_a_world_the_cut_keeps_95_percent_of_the_task_prompts(data, cls):
    det = cls(encoder="precomputed").fit(None, data["classes"])
    kept = det.predict(data["prompts"]) == 1
    prompts = det.score_samples(data["prompts"])
    assert det.offset_ == pytest.approx(np.quantile(prompts, 0.05, method="lower"))
    assert 0.95 <= kept.mean() < 1.0


@pytest.mark.parametrize("cls", IMAGE_FITTED)
def test_image_fitted_defaults_keep_most_in_distribution_images(data, cls):
    det = cls(encoder="precomputed").fit(data["images"],
                                         None if cls is KNNDetector else data["labels"])
    assert det.threshold == "auto"
    assert (det.predict(data["held_out"]) == 1).mean() > 0.9
    assert (det.predict(data["out_test"]) == -1).mean() > 0.9


@pytest.mark.parametrize("cls", [MSPDetector, MahalanobisDetector])
def test_msp_and_mahalanobis_keep_95_percent_of_their_fitted_images(data, cls):
    det = cls(encoder="precomputed").fit(data["images"], data["labels"])
    scores = det.score_samples(data["images"])
    assert det.offset_ == np.quantile(scores, 0.05, method="lower")
    assert (det.predict(data["images"]) == 1).mean() >= 0.95


def test_knn_sets_its_cut_by_leave_one_out(data):
    det = KNNDetector(encoder="precomputed", n_neighbors=5).fit(data["images"])
    # Each image is its own nearest neighbour: held out, its 5th neighbour is the 6th.
    held_out = kth_neighbour_similarity(data["images"], data["images"], 6) - 1.0
    assert det.offset_ == pytest.approx(np.quantile(held_out, 0.05, method="lower"))
    in_sample = det.score_samples(data["images"])
    assert det.offset_ < np.quantile(in_sample, 0.05)  # in-sample scores are optimistic


def test_knn_with_as_many_neighbours_as_images_has_none_to_hold_out(data):
    det = KNNDetector(encoder="precomputed", n_neighbors=4).fit(data["images"][:4])
    in_sample = det.score_samples(data["images"][:4])
    assert det.offset_ == np.quantile(in_sample, 0.05, method="lower")
    assert (det.predict(data["images"][:4]) == 1).all()


@pytest.mark.parametrize("cls", SIMILARITY + IMAGE_FITTED)
def test_auto_is_resolved_at_fit_only(data, cls):
    y = data["classes"] if cls in SIMILARITY else (
        None if cls is KNNDetector else data["labels"])
    X = data["world"] if cls in SIMILARITY else data["images"]
    det = cls(encoder="precomputed").fit(X, y)
    with pytest.raises(ValueError, match=r"set_threshold takes a number.*refit with "
                                         "threshold='auto'"):
        det.set_threshold("auto")
    assert det.set_threshold(-0.5).offset_ == -0.5 and det.threshold == -0.5
    assert det.set_params(threshold="auto").fit(X, y).offset_ != -0.5
