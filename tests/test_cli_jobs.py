"""The job is part of the detector: what ``skhftt fit --keep/--remove`` makes, and what follows.

A keep detector removes what does not match its task, a remove detector what
matches; ``score``, ``filter``, ``info``, ``explain`` and ``evaluate`` take the
side from the detector, and an explicit side that contradicts it is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _scoring_data import DIM, WORLD
from _synthetic import unit

from skhftt.cli import main
from skhftt.detectors import load_detector, save_detector


def _skhftt(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "skhftt", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A task, a world corpus, and inputs that match the task or do not, as .npy files."""
    root = tmp_path_factory.mktemp("jobs")
    rng = np.random.default_rng(0)
    task = unit(rng.normal(size=(3, DIM)))
    np.save(root / "task.npy", task)
    # A world corpus of a few topics, as texts are, away from the task.
    topics = unit(rng.normal(size=(8, DIM)))
    world = unit(topics[rng.integers(0, 8, 400)] + 0.1 * rng.normal(size=(400, DIM)))
    np.save(root / "world.npy", world)
    (root / "inputs").mkdir()
    # Near the task, and near world texts (what every detector here tells apart).
    matching = unit(task[rng.integers(0, 3, 10)] + 0.05 * rng.normal(size=(10, DIM)))
    other = world[:10]
    np.save(root / "inputs" / "a_matching.npy", matching.astype(np.float32))
    np.save(root / "inputs" / "b_other.npy", other.astype(np.float32))
    return root


def _fit(data, path, job, *extra, world=True):
    flag = "--keep-file" if job == "keep" else "--remove-file"
    corpus = ["--world", str(data / "world.npy")] if world else []
    return main(["fit", "-o", str(path), "--encoder", "precomputed", flag,
                 str(data / "task.npy"), *corpus, *extra])


@pytest.mark.parametrize("job", ["keep", "remove"])
def test_every_default_removes_the_side_of_the_job(tmp_path, data, capsys, job):
    path = tmp_path / f"{job}.safetensors"
    assert _fit(data, path, job, "--detector", "hftt") == 0
    out = capsys.readouterr().out
    if job == "remove":  # one prompt per item: the paper's temperature, said so
        assert "fitting at the paper's temperature, 0.01" in out
    assert load_detector(path).unwanted == ("match" if job == "remove" else "mismatch")
    assert main(["score", str(path), str(data / "inputs"), "-o", str(tmp_path / "s")]) == 0
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l")]) == 0
    removed = (tmp_path / "l" / "remove.txt").read_text().split()
    kept = (tmp_path / "l" / "keep.txt").read_text().split()
    matching = [f"a_matching:{row}" for row in range(10)]
    other = [f"b_other:{row}" for row in range(10)]
    assert (removed, kept) == ((matching, other) if job == "remove" else (other, matching))
    # info says it in words.
    assert main(["info", str(path)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("job:"))
    assert ("removes images that match: " if job == "remove"
            else "removes images that do not match its task") in line


def test_a_side_that_contradicts_the_job_is_refused(tmp_path, data, capsys):
    path = tmp_path / "remove.safetensors"
    assert _fit(data, path, "remove", "--detector", "hftt") == 0
    assert main(["score", str(path), str(data / "inputs"), "-o", str(tmp_path / "s")]) == 0
    capsys.readouterr()
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l"), "--unwanted",
                 "mismatch"]) == 2
    err = capsys.readouterr().err
    assert "--unwanted mismatch contradicts the job recorded" in err
    assert "unwanted=match" in err and not (tmp_path / "l").exists()
    # --override-job applies it anyway: the other side goes.
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l"), "--unwanted",
                 "mismatch", "--override-job"]) == 0
    assert (tmp_path / "l" / "remove.txt").read_text().split()[0] == "b_other:0"

    keep = tmp_path / "keep.safetensors"
    assert _fit(data, keep, "keep", "--detector", "mcm", world=False) == 0
    capsys.readouterr()
    assert main(["score", "-d", str(keep), "-d", str(path), "--unwanted", "keep=match",
                 str(data / "inputs"), "-o", str(tmp_path / "c")]) == 2
    assert "--unwanted keep=match contradicts the job of" in capsys.readouterr().err


def test_the_task_flag_asks_for_the_job(tmp_path, capsys):
    assert main(["fit", "-o", str(tmp_path / "x.safetensors"), "--task", "a dog"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--task does not say which side to remove: use --keep" in err
    assert "or --remove to remove the images that match them" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--detector", "csp", "--n-embeddings", "3"],
         "--n-embeddings do(es) not apply to --detector csp"),
        (["--detector", "mcm", "--seed", "1"], "--seed do(es) not apply to --detector mcm"),
        (["--detector", "hftt", "--select", "--temperature", "0.05"],
         "--select chooses the temperature from the texts"),
        (["--detector", "csp", "--select"], "--select chooses the temperature of hftt"),
        (["--detector", "hftt", "--threshold", "1.5"],
         "--threshold with --detector hftt is a probability"),
        (["--detector", "csp"], "--detector csp embeds its WordNet pool"),
    ],
)
def test_options_a_detector_does_not_take_are_named(tmp_path, data, capsys, argv, message):
    assert _fit(data, tmp_path / "x.safetensors", "keep", *argv, world="hftt" in argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.parametrize("kind", ["hftt", "ensemble", "neglabel", "mcm", "maxlogit", "energy"])
def test_every_text_only_detector_fits_from_the_cli(tmp_path, data, kind):
    path = tmp_path / f"{kind}.safetensors"
    options = ["--n-embeddings", "3"] if kind in ("hftt", "ensemble") else []
    if kind == "neglabel":
        options = ["--n-negatives", "200"]
    takes_world = kind in ("hftt", "ensemble", "neglabel")
    assert _fit(data, path, "remove", "--detector", kind, *options, world=takes_world) == 0
    detector = load_detector(path)
    names = {"hftt": "HFTTDetector", "ensemble": "HFTTEnsembleDetector",
             "neglabel": "NegLabelDetector", "mcm": "MCMDetector",
             "maxlogit": "MaxLogitDetector", "energy": "EnergyDetector"}
    assert type(detector).__name__ == names[kind]
    assert detector.unwanted == "match"
    scores = detector.score_samples(np.load(data / "inputs" / "a_matching.npy"))
    others = detector.score_samples(np.load(data / "inputs" / "b_other.npy"))
    assert scores.min() > others.max()


def test_remove_chooses_the_temperature_from_the_texts(tmp_path, tiny_clip_dir, capsys):
    (tmp_path / "world.txt").write_text("\n".join(WORLD))
    assert main(["fit", "-o", str(tmp_path / "r.safetensors"), "--remove", "a knife",
                 "a sword", "a gun", "--world", str(tmp_path / "world.txt"), "--encoder",
                 str(tiny_clip_dir), "--device", "cpu", "--n-embeddings", "2"]) == 0
    out = capsys.readouterr().out
    assert "prompted with the 80 CLIP templates" in out
    assert out.count("held-out FPR95") == 4
    chosen = out.split("selected ")[1].split(" from the texts")[0]
    detector = load_detector(tmp_path / "r.safetensors")
    assert chosen == f"T={detector.temperature:g}"
    assert detector.unwanted == "match" and type(detector).__name__ == "HFTTDetector"
    # Refitted on every prompt: each text's 80 phrasings make its column.
    assert detector.task_names_ == ["a knife", "a sword", "a gun"]


def test_remove_without_a_world_option_chooses_on_the_bundled_corpus(tmp_path, tiny_clip_dir,
                                                                     capsys, monkeypatch):
    """``fit --remove TEXT...`` as the README gives it: the world is the bundled corpus."""
    import skhftt.corpora

    sample = skhftt.corpora.load_world_corpus(400)  # the corpus's first words, for speed
    loaded = []
    monkeypatch.setattr(skhftt.corpora, "load_world_corpus",
                        lambda *args, **kwargs: loaded.append(args) or sample)
    assert main(["fit", "-o", str(tmp_path / "r.safetensors"), "--remove", "a knife",
                 "a sword", "a gun", "--encoder", str(tiny_clip_dir), "--device", "cpu",
                 "--n-embeddings", "2"]) == 0
    assert loaded and capsys.readouterr().out.count("held-out FPR95") == 4
    detector = load_detector(tmp_path / "r.safetensors")
    assert detector.unwanted == "match" and detector.training_digests_["world"] is not None


@pytest.mark.slow
def test_remove_fits_hftt_on_the_whole_bundled_corpus(tmp_path, tiny_clip_dir):
    """The remove default chooses T on, then fits on, all 292,073 bundled world texts."""
    # About 10 CPU-minutes: a guard against a hang, not a time limit on a shared machine.
    done = _skhftt("fit", "-o", tmp_path / "r.safetensors", "--remove", "a rocket",
                   "a space shuttle", "--encoder", tiny_clip_dir, "--device", "cpu",
                   timeout=3600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("held-out FPR95") == 4
    detector = load_detector(tmp_path / "r.safetensors")
    assert type(detector).__name__ == "HFTTDetector" and detector.unwanted == "match"


@pytest.mark.slow
def test_keep_fits_csp_with_the_reference_pool(tmp_path, tiny_clip_dir):
    """The keep default embeds CSP's whole reference pool (491,924 prompts)."""
    # About 10 CPU-minutes: a guard against a hang, not a time limit on a shared machine.
    done = _skhftt("fit", "-o", tmp_path / "k.safetensors", "--keep", "a dog", "a cat",
                   "--encoder", tiny_clip_dir, "--device", "cpu", timeout=3600)
    assert done.returncode == 0, done.stderr
    assert "CSP embeds its reference pool once: 491,924 short prompts" in done.stdout
    detector = load_detector(tmp_path / "k.safetensors")
    assert type(detector).__name__ == "CSPDetector" and detector.unwanted == "mismatch"
    parts = {part: detector.negative_parts_.count(part) for part in ("noun", "adj")}
    assert parts == {"noun": int(0.15 * 55_967), "adj": int(0.15 * 11_047)}


def test_a_file_of_0_2_loads_as_a_keep_job_and_info_says_it_was_not_recorded(tmp_path, data,
                                                                            capsys):
    from skhftt import HFTTDetector

    detector = HFTTDetector(encoder="precomputed", random_state=0).fit(
        np.load(data / "world.npy"), np.load(data / "task.npy"))
    save_detector(detector, tmp_path / "new.safetensors")
    _rewrite_as_0_2(tmp_path / "new.safetensors", tmp_path / "old.safetensors")
    old = load_detector(tmp_path / "old.safetensors")
    assert old.unwanted == "mismatch" and old.training_digests_ is None
    X = np.load(data / "inputs" / "a_matching.npy")
    np.testing.assert_array_equal(old.score_samples(X), detector.score_samples(X))
    assert main(["info", str(tmp_path / "old.safetensors")]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("job:"))
    assert "not recorded, since skhftt 0.2.0 recorded no job; it is taken as a keep job" in line


def _rewrite_as_0_2(source, target):
    """``source`` as skhftt 0.2 wrote it: format 2, no ``unwanted``, no digests."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(source), framework="numpy") as handle:
        config = json.loads(handle.metadata()["skhftt"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    config.update(format_version=2, skhftt_version="0.2.0")
    del config["params"]["unwanted"], config["fitted"]["training_digests_"]
    save_file(tensors, str(target), metadata={"skhftt": json.dumps(config)})


def test_filter_and_review_refuse_scores_they_cannot_read_as_one(tmp_path, data, capsys):
    """Scores of two jobs in one folder, a side for several detectors, a concept of one."""
    import shutil

    keep, remove = tmp_path / "keep.safetensors", tmp_path / "remove.safetensors"
    assert _fit(data, keep, "keep", "--detector", "hftt") == 0
    assert _fit(data, remove, "remove", "--detector", "hftt") == 0
    for name, detectors in (("k", [keep]), ("r", [remove]),
                            ("c", ["-d", keep, "-d", remove])):
        assert main(["score", *map(str, detectors), str(data / "inputs"), "-o",
                     str(tmp_path / name)]) == 0
    (tmp_path / "mixed").mkdir()
    for name in ("k", "r"):
        for path in (tmp_path / name).glob("*.parquet"):
            shutil.copy(path, tmp_path / "mixed" / f"{name}_{path.name}")
    cases = [(["mixed"], "mixes scores of detectors with different jobs (match, mismatch)"),
             (["c", "--unwanted", "match"], "--unwanted applies to one detector's score"),
             (["k", "--concept", "keep"], "--concept 'keep': "),
             (["c", "--concept", "other"], "--concept 'other' is not in ")]
    for command in ("filter", "review"):
        for argv, message in cases:
            capsys.readouterr()
            out = tmp_path / f"out_{command}"
            assert main([command, str(tmp_path / argv[0]), *argv[1:], "-o", str(out)]) == 2
            assert message in capsys.readouterr().err
            assert not out.exists()
    # Each folder alone is read, ids and all, by both.
    for command in ("filter", "review"):
        assert main([command, str(tmp_path / "c"), "--concept", "remove", "-o",
                     str(tmp_path / f"{command}_c")]) == 0
    removed = (tmp_path / "filter_c" / "remove.txt").read_text().split()
    assert removed == [f"a_matching:{row}" for row in range(10)]
