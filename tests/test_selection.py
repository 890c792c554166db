"""select_detector: the text-only criterion, by hand, and its choices."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from _synthetic import unit
from sklearn.base import BaseEstimator

from skhftt.detectors import MaxLogitDetector, MCMDetector
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.evaluation import ood_metrics, select_detector


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(10, 16)))
    task = {f"c{i}": unit(centres[i] + 0.25 * rng.normal(size=(4, 16))) for i in range(10)}
    world = unit(rng.normal(size=(200, 16)))
    return task, world


class Recorder(BaseEstimator):
    """Scores = the first coordinate; remembers what it was fitted and scored on."""

    calls: ClassVar[list] = []

    def __init__(self, tag=0, unwanted="mismatch"):
        self.tag = tag
        self.unwanted = unwanted

    def fit(self, X, y):
        Recorder.calls.append(("fit", np.asarray(X), {k: np.asarray(v) for k, v in y.items()}))
        return self

    def decision_function(self, X):
        Recorder.calls.append(("score", np.asarray(X)))
        return np.asarray(X)[:, 0]


def test_criterion_by_hand(data):
    task, world = data
    result = select_detector({"MaxLogit": MaxLogitDetector(encoder="precomputed")}, world, task,
                             job="ood", n_folds=2, random_state=0, refit=False)
    rng = np.random.RandomState(0)
    folds = np.array_split(rng.permutation(200), 2)
    groups = np.array_split(rng.permutation(10), 5)
    names = list(task)
    expected = []
    for fold in range(2):
        held = groups[fold]
        kept = [i for i in range(10) if i not in held]
        columns = unit(np.stack([task[names[i]][:3].mean(axis=0) for i in kept]))

        def score(x, columns=columns):
            return (x @ columns.T).max(axis=1)

        inside = score(np.concatenate([task[names[i]][3:] for i in kept]))
        outside = np.r_[score(world[folds[fold]]),
                        score(np.concatenate([task[names[i]] for i in held]))]
        truth = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
        expected.append(ood_metrics(truth, np.r_[inside, outside]))
    got = result.criteria["MaxLogit"]
    assert got["fpr95"] == pytest.approx(np.mean([e["fpr95"] for e in expected]))
    assert got["auroc"] == pytest.approx(np.mean([e["auroc"] for e in expected]))


def _same_rows(a, b):
    assert sorted(map(tuple, np.asarray(a).tolist())) == sorted(map(tuple, np.asarray(b).tolist()))


@pytest.mark.parametrize("job", ["ood", "concept"])
def test_held_out_items_are_out_for_ood_and_in_for_concept(data, job):
    task, world = data
    Recorder.calls = []
    unwanted = "mismatch" if job == "ood" else "match"
    select_detector({"r": Recorder(unwanted=unwanted)}, world, task, n_folds=2, refit=False)
    fitted = [call for call in Recorder.calls if call[0] == "fit"]
    scored = [call[1] for call in Recorder.calls if call[0] == "score"]
    per_fold = 3 if job == "ood" else 2
    assert len(fitted) == 2 and len(scored) == 2 * per_fold
    for fold, (_, fit_world, fit_task) in enumerate(fitted):
        # 8 of 10 items, 3 of 4 prompts each; 100 of 200 world texts.
        assert len(fit_task) == 8 and all(len(v) == 3 for v in fit_task.values())
        assert len(fit_world) == 100
        calls = scored[per_fold * fold : per_fold * (fold + 1)]
        unseen = np.concatenate([task[k] for k in task if k not in fit_task])
        if job == "ood":  # in: new phrasings of kept items; out: world and unseen items
            rephrased = np.stack([task[k][3] for k in task if k in fit_task])
            _same_rows(calls[0], rephrased)
            assert len(calls[1]) == 100
            _same_rows(calls[2], unseen)
        else:  # in: the unseen items; out: world
            _same_rows(calls[0], unseen)
            assert len(calls[1]) == 100


def test_choice_refit_and_determinism(data):
    task, world = data
    remove = {"encoder": "precomputed", "unwanted": "match"}
    candidates = {"MCM": MCMDetector(**remove),
                  "MaxLogit": MaxLogitDetector(**remove),
                  "MCM hot": MCMDetector(**remove, temperature=100.0)}
    first = select_detector(candidates, world, task, job="concept", random_state=3)
    again = select_detector(candidates, world, task, random_state=3)
    assert first.criteria == again.criteria
    assert first.ranking()[0] == first.best_name
    fpr = {name: c["fpr95"] for name, c in first.criteria.items()}
    assert fpr[first.best_name] == min(fpr.values())
    # The refitted detector saw every prompt of every item.
    assert first.best_estimator.task_columns_.shape == (10, 16)
    by_auroc = select_detector(candidates, world, task, scoring="auroc", refit=False)
    assert by_auroc.best_estimator is None
    aurocs = {name: c["auroc"] for name, c in by_auroc.criteria.items()}
    assert aurocs[by_auroc.best_name] == max(aurocs.values())


def test_texts_and_templates():
    world = [f"a red car number {i}" for i in range(20)]
    result = select_detector({"MCM": MCMDetector(encoder=HashingEncoder(dim=32))}, world,
                             ["dog", "cat", "horse"], templates=["a photo of a {}.",
                                                                 "a drawing of a {}."])
    assert result.best_estimator.task_names_ == ["dog", "cat", "horse"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"job": "images"}, "job must be one of"),
        ({"job": "concept"}, "job='concept' contradicts the candidates' own job"),
        ({"scoring": "loss"}, "scoring must be one of"),
        ({"n_folds": 1}, "n_folds=1"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_arguments(data, kwargs, match):
    task, world = data
    with pytest.raises(ValueError, match=match):
        select_detector({"MCM": MCMDetector(encoder="precomputed")}, world, task, **kwargs)


def test_items_need_two_prompts(data):
    _, world = data
    with pytest.raises(ValueError, match="at least 2"):
        select_detector({"MCM": MCMDetector(encoder="precomputed")}, world,
                        {"a": world[:1], "b": world[1:3]})
    with pytest.raises(ValueError, match="candidates is empty"):
        select_detector({}, world, {"a": world[:2], "b": world[2:4]})


def test_the_job_comes_from_the_candidates_and_must_be_one(data):
    task, world = data
    keep = MaxLogitDetector(encoder="precomputed")
    remove = MaxLogitDetector(encoder="precomputed", unwanted="match")
    with pytest.raises(ValueError, match="made for different jobs"):
        select_detector({"keep": keep, "remove": remove}, world, task)
    by_job = select_detector({"remove": remove}, world, task, refit=False, random_state=0)
    explicit = select_detector({"remove": remove}, world, task, job="concept", refit=False,
                               random_state=0)
    assert by_job.criteria == explicit.criteria


def test_temperature_grid_clones_at_each_temperature():
    from skhftt import HFTTDetector
    from skhftt.evaluation import temperature_grid

    grid = temperature_grid(HFTTDetector(unwanted="match", random_state=0))
    assert list(grid) == ["T=0.01", "T=0.02", "T=0.05", "T=0.1"]
    assert [d.temperature for d in grid.values()] == [0.01, 0.02, 0.05, 0.1]
    assert {d.unwanted for d in grid.values()} == {"match"}


def test_the_candidates_templates_expand_the_task():
    world = [f"a red car number {i}" for i in range(20)]
    templates = ["a photo of a {}.", "a drawing of a {}."]
    encoder = HashingEncoder(dim=32)
    result = select_detector({"MCM": MCMDetector(encoder=encoder, templates=templates)}, world,
                             ["dog", "cat", "horse"])
    explicit = select_detector({"MCM": MCMDetector(encoder=encoder)}, world,
                               ["dog", "cat", "horse"], templates=templates)
    assert result.criteria == explicit.criteria
    with pytest.raises(ValueError, match="different templates"):
        select_detector({"a": MCMDetector(encoder=encoder, templates=templates),
                         "b": MCMDetector(encoder=encoder)}, world, ["dog", "cat"])
