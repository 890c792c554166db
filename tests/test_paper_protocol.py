"""The paper's OOD protocol runs end to end on a tiny synthetic layout.

A random-weight tiny CLIP, a few random images per folder, three ImageNet
classes, two templates and 300 world texts: plumbing, not accuracy.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from skhftt.corpora import imagenet_classes

PIL = pytest.importorskip("PIL.Image", reason="image inputs need Pillow")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_ood.py"
METHODS = ["HFTT", "MCM", "MaxLogit", "Energy", "NegLabel"]


def _write_images(folder: Path, n: int, rng: np.random.Generator, scale: float) -> None:
    folder.mkdir(parents=True)
    for index in range(n):
        pixels = (rng.random((40, 40, 3)) * 255 * scale).astype(np.uint8)
        PIL.fromarray(pixels).save(folder / f"{index}.png")


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    from skhftt.testing import build_tiny_clip

    root = tmp_path_factory.mktemp("paper_ood")
    rng = np.random.default_rng(0)
    for wnid in imagenet_classes().wnids[:3]:
        _write_images(root / "val" / wnid, 2, rng, 1.0)
    _write_images(root / "val" / imagenet_classes().wnids[5], 2, rng, 1.0)  # not selected
    _write_images(root / "inat" / "images", 3, rng, 0.5)
    _write_images(root / "dtd" / "images" / "banded", 3, rng, 0.2)
    return root, build_tiny_clip(root / "clip")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )


def test_paper_protocol_end_to_end(layout):
    root, clip = layout
    output = root / "results.json"
    done = _run(
        "--imagenet-val", str(root / "val"),
        "--ood", f"iNaturalist={root / 'inat'}", "--ood", f"Texture={root / 'dtd'}",
        "--encoder", str(clip), "--device", "cpu", "--seeds", "2", "--classes", "3",
        "--templates", "2", "--world-size", "300", "--neg-labels", "0.2",
        "--neg-groups", "5", "--set", "HFTT.n_embeddings=3", "--output", str(output),
    )
    assert done.returncode == 0, done.stderr
    table = done.stdout.strip().splitlines()
    assert table[0].startswith("| Method | iNaturalist FPR95↓ | iNaturalist AUROC↑ | Texture")
    assert table[0].endswith("Average FPR95↓ | Average AUROC↑ |")
    assert [line.split(" | ")[0].strip("| ") for line in table[2:]] == METHODS

    saved = json.loads(output.read_text("utf-8"))
    assert saved["settings"]["images"] == {"ImageNet": 6, "iNaturalist": 3, "Texture": 3}
    assert saved["settings"]["overrides"] == ["HFTT.n_embeddings=3"]
    results = saved["results"]
    assert set(results) == set(METHODS)
    for method in METHODS:
        for rows in results[method]["metrics"].values():
            assert len(rows) == 2
            assert all(0 <= row["auroc"] <= 1 and 0 <= row["fpr95"] <= 1 for row in rows)
    # Zero-shot baselines without randomness are fitted once: identical rows.
    for method in ("MCM", "MaxLogit", "Energy"):
        assert len(results[method]["fit_seconds"]) == 1
        first, second = results[method]["metrics"]["Texture"]
        assert first == second
    assert len(results["HFTT"]["fit_seconds"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ood", "no-equals-sign"], "expected NAME=DIR"),
        (["--ood", "x=y", "--classes", "0"], "--classes must be between 1 and 1000"),
        (["--ood", "x=y", "--neg-labels", "1.5"], "a count >= 1 or a fraction in (0, 1)"),
        (["--ood", "x=y", "--set", "HFTT=3"], "expected METHOD.PARAM=VALUE"),
        (["--ood", "x=y", "--set", "KNN.k=3"], "unknown method 'KNN'"),
    ],
)
def test_paper_protocol_argument_errors(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    paper_ood = importlib.import_module("paper_ood")
    with pytest.raises(SystemExit) as raised:
        paper_ood.parse_args(["--imagenet-val", str(tmp_path), *args])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
