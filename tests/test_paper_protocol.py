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
TEXT_METHODS = ["HFTT", "MCM", "MaxLogit", "Energy", "NegLabel"]
IMAGE_METHODS = ["MSP", "Mahalanobis", "KNN"]
WNIDS = imagenet_classes().wnids[:3]


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
    for wnid in WNIDS:
        _write_images(root / "val" / wnid, 2, rng, 1.0)
        _write_images(root / "train" / wnid, 3, rng, 1.0)
    _write_images(root / "val" / imagenet_classes().wnids[5], 2, rng, 1.0)  # not selected
    _write_images(root / "inat" / "images", 3, rng, 0.5)
    _write_images(root / "dtd" / "images" / "banded", 3, rng, 0.2)
    return root, build_tiny_clip(root / "clip")


@pytest.fixture
def paper_ood(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    return importlib.import_module("paper_ood")


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
        timeout=300, check=False,
    )


def test_paper_protocol_end_to_end(layout):
    root, clip = layout
    rng = np.random.default_rng(1)
    np.savez(root / "npos.npz", ImageNet=rng.normal(size=6), iNaturalist=rng.normal(size=3),
             Texture=rng.normal(size=3), uses_id_images=True)
    np.savez(root / "zoc.npz", ImageNet=rng.normal(size=(2, 6)),
             iNaturalist=rng.normal(size=(2, 3)), Texture=rng.normal(size=(2, 3)))
    output = root / "results.json"
    done = _run(
        "--imagenet-val", str(root / "val"), "--imagenet-train", str(root / "train"),
        "--train-per-class", "2",
        "--ood", f"iNaturalist={root / 'inat'}", "--ood", f"Texture={root / 'dtd'}",
        "--encoder", str(clip), "--device", "cpu", "--seeds", "2", "--classes", "3",
        "--templates", "2", "--world-size", "300", "--neg-labels", "0.2",
        "--neg-groups", "5", "--set", "HFTT.n_embeddings=3", "--output", str(output),
        "--extra-scores", f"NPOS={root / 'npos.npz'}", "--extra-scores", f"ZOC={root / 'zoc.npz'}",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("| Method | iNaturalist FPR95↓ | iNaturalist AUROC↑ | Texture")
    assert lines[0].endswith("Average FPR95↓ | Average AUROC↑ |")
    rows = [line.split(" | ")[0].strip("| ") for line in lines[2:] if line.startswith("|")]
    assert rows == [*TEXT_METHODS, "MSP†", "Mahalanobis†", "KNN†", "NPOS†", "ZOC"]
    assert lines[-1] == "† used in-distribution images; the other rows used none."

    saved = json.loads(output.read_text("utf-8"))
    settings = saved["settings"]
    assert settings["images"] == {"ImageNet": 6, "iNaturalist": 3, "Texture": 3}
    assert settings["fit_images"] == 6
    assert settings["overrides"] == ["HFTT.n_embeddings=3"]
    assert settings["paper_defaults"] == {"KNN": {"n_neighbors": 1}}
    results = saved["results"]
    assert set(results) == {*TEXT_METHODS, *IMAGE_METHODS, "NPOS", "ZOC"}
    for method in (*TEXT_METHODS, *IMAGE_METHODS):
        assert results[method]["uses_id_images"] == (method in IMAGE_METHODS)
        for found in results[method]["metrics"].values():
            assert len(found) == 2
            assert all(0 <= row["auroc"] <= 1 and 0 <= row["fpr95"] <= 1 for row in found)
    # Methods without randomness are fitted once: identical rows.
    for method in ("MCM", "MaxLogit", "Energy", *IMAGE_METHODS):
        assert len(results[method]["fit_seconds"]) == 1
        first, second = results[method]["metrics"]["Texture"]
        assert first == second
    assert len(results["HFTT"]["fit_seconds"]) == 2
    assert len(results["NPOS"]["metrics"]["Texture"]) == 1
    assert len(results["ZOC"]["metrics"]["Texture"]) == 2


def test_validation_split_never_evaluates_fitted_images(layout, paper_ood):
    root, _ = layout
    args = paper_ood.parse_args(
        ["--imagenet-val", str(root / "val"), "--ood", "x=y", "--classes", "3",
         "--val-split", "1"]
    )
    fit, test = paper_ood.fit_and_test_images(args, WNIDS)
    assert sorted(fit) == sorted(WNIDS) and all(len(images) == 1 for images in fit.values())
    fitted = {path for images in fit.values() for path in images}
    assert len(test) == 3 and not fitted & set(test)
    assert {path.parent.name for path in test} == set(WNIDS)
    assert args.methods == TEXT_METHODS + IMAGE_METHODS
    again, _ = paper_ood.fit_and_test_images(args, WNIDS)
    assert again == fit  # seeded


def test_validation_split_needs_a_test_image_per_class(layout, paper_ood):
    root, _ = layout
    with pytest.raises(SystemExit, match="--val-split 2 leaves no test image of class"):
        paper_ood.split_validation(root / "val", WNIDS, 2)


def test_without_fitting_images_the_image_methods_are_skipped(tmp_path, paper_ood, capsys):
    args = paper_ood.parse_args(["--imagenet-val", str(tmp_path), "--ood", "x=y"])
    assert args.methods == TEXT_METHODS
    assert "MSP, Mahalanobis, KNN need in-distribution images" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("encoder", "n_fit", "expected"),
    [("blip:Salesforce/blip-itm-base-coco", None, {"HFTT": {"temperature": 0.0174}}),
     ("blip:Salesforce/blip-itm-large-coco@main", 12812,
      {"HFTT": {"temperature": 0.0222}, "KNN": {"n_neighbors": 10}}),
     ("openai/clip-vit-large-patch14", 1281167,
      {"HFTT": {"temperature": 0.01}, "KNN": {"n_neighbors": 1000}}),
     ("/my/model", 50, {"KNN": {"n_neighbors": 1}})],
)
def test_paper_defaults(paper_ood, encoder, n_fit, expected):
    assert paper_ood.paper_defaults(encoder, n_fit) == expected


def test_extra_scores_must_cover_every_dataset(tmp_path, paper_ood):
    path = tmp_path / "partial.npz"
    np.savez(path, ImageNet=np.zeros(3), iNaturalist=np.ones(2))
    with pytest.raises(SystemExit, match=r"lack \['Texture'\]"):
        paper_ood.extra_result(path, ["iNaturalist", "Texture"], {}, "NPOS")
    uneven = tmp_path / "uneven.npz"
    np.savez(uneven, ImageNet=np.zeros((2, 3)), iNaturalist=np.ones(2))
    with pytest.raises(SystemExit, match="same number of runs"):
        paper_ood.extra_result(uneven, ["iNaturalist"], {}, "NPOS")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ood", "no-equals-sign"], "expected NAME=PATH"),
        (["--ood", "x=y", "--classes", "0"], "--classes must be between 1 and 1000"),
        (["--ood", "x=y", "--neg-labels", "1.5"], "a count >= 1 or a fraction in (0, 1)"),
        (["--ood", "x=y", "--set", "HFTT=3"], "expected METHOD.PARAM=VALUE"),
        (["--ood", "x=y", "--set", "NPOS.k=3"], "unknown method 'NPOS'"),
        (["--ood", "x=y", "--methods", "HFTT", "KNN"], "KNN need --imagenet-train or --val-split"),
        (["--ood", "x=y", "--val-split", "0"], "--val-split must be at least 1"),
        (["--ood", "x=y", "--val-split", "1", "--imagenet-train", "t"], "not allowed with"),
        (["--ood", "x=y", "--extra-scores", "MCM=f.npz"], "MCM is a shipped method"),
    ],
)
def test_paper_protocol_argument_errors(tmp_path, paper_ood, capsys, args, message):
    with pytest.raises(SystemExit) as raised:
        paper_ood.parse_args(["--imagenet-val", str(tmp_path), *args])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
