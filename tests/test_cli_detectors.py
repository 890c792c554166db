"""Every kind of saved detector works with the commands that apply to it.

Baselines fitted on texts and detectors fitted on images are saved as
safetensors and with joblib; ``info``, ``score`` (then ``filter``) and
``evaluate`` take all of them, ``explain`` the detectors with learned
columns (HFTT and the ensemble) and, for the others, says in one line why it
does not apply.
"""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from _synthetic import make_task_world

from skhftt.cli import main
from skhftt.detectors import (
    CSPDetector,
    EnergyDetector,
    HFTTDetector,
    HFTTEnsembleDetector,
    KNNDetector,
    MahalanobisDetector,
    MaxLogitDetector,
    MCMDetector,
    MSPDetector,
    NegLabelDetector,
    save_detector,
)

DATA = make_task_world(n_world=300, dim=16, seed=2)
CLASSES = np.repeat(np.arange(4), 3)


def _fitted(kind):
    task, world = DATA["prompts"], DATA["world"]
    pool = {"noun": world[:150], "adjective": world[150:]}
    if kind in (HFTTDetector, HFTTEnsembleDetector):
        return kind(encoder="precomputed", random_state=0, n_embeddings=3).fit(world, task)
    if kind is CSPDetector:
        return kind(encoder="precomputed", candidates=pool, n_negatives=0.1, n_groups=2,
                    random_state=0).fit(None, task)
    if kind is NegLabelDetector:
        return kind(encoder="precomputed", n_negatives=20, n_groups=2).fit(world, task)
    if kind in (MSPDetector, MahalanobisDetector):
        return kind(encoder="precomputed").fit(task, CLASSES)
    if kind is KNNDetector:
        return kind(encoder="precomputed", n_neighbors=2).fit(task)
    return kind(encoder="precomputed").fit(None, task)


KINDS = [HFTTDetector, HFTTEnsembleDetector, MCMDetector, MaxLogitDetector, EnergyDetector,
         NegLabelDetector, CSPDetector, MSPDetector, MahalanobisDetector,
         KNNDetector]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    np.save(root / "in.npy", DATA["in_test"][:20])
    np.save(root / "out.npy", DATA["out_test"][:20])
    return root


@pytest.mark.parametrize("suffix", [".safetensors", ".joblib"])
@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_every_detector_kind_with_every_command(tmp_path, shards, capsys, kind, suffix):
    detector = _fitted(kind)
    path = str(tmp_path / f"det{suffix}")
    if suffix == ".safetensors":
        if isinstance(detector.get_params().get("candidates"), dict):
            # Arrays of a pool cannot go in the file's header, as the error says.
            detector.set_params(candidates="wordnet")
        save_detector(detector, path)
    else:
        joblib.dump(detector, path)

    assert main(["info", path]) == 0
    info = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    if suffix == ".safetensors":
        assert info["detector"].strip() == kind.__name__
        assert info["encoder"].strip() == "precomputed (precomputed)"
        assert info["embedding width"].strip() == "16"
        assert info["job"].strip().startswith(("removes images that do not match",
                                               "removes images unlike"))
    else:  # never unpickled: named from its opcodes
        assert info["format"].strip().startswith("joblib/pickle: not opened")
        assert f"{type(detector).__module__}.{kind.__name__}" in info["names"]

    assert main(["score", path, str(shards / "out.npy"), "-o", str(tmp_path / "s")]) == 0
    decisions = np.load(shards / "out.npy")
    assert f"scored {len(decisions)} rows" in capsys.readouterr().out
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l")]) == 0
    removed = (tmp_path / "l" / "remove.txt").read_text().split()
    assert len(removed) == int((detector.predict(decisions) == -1).sum())

    assert main(["evaluate", path, "--in", str(shards / "in.npy"), "--out",
                 str(shards / "out.npy")]) == 0
    assert "20 in, 20 out" in capsys.readouterr().out

    capsys.readouterr()
    code = main(["explain", path, str(shards / "in.npy"), "--world-words", "50",
                 "--world-embeddings", str(tmp_path / "absent.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    if kind in (HFTTDetector, HFTTEnsembleDetector):
        assert "--world-embeddings '" in err and "not found" in err
    else:
        assert f"holds a {kind.__name__} (score, filter, evaluate and info work" in err
