"""The ``skhftt`` subcommands other than single-detector ``score``, run as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

import joblib
import numpy as np
import pyarrow.parquet as pq
import pytest
from _scoring_data import DIM, WORLD, hashing_detector, precomputed_detector, write_images
from _synthetic import unit

from skhftt import HFTTDetector
from skhftt.cli import main
from skhftt.detectors.persistence import save_detector


def _skhftt(*args):
    return subprocess.run([sys.executable, "-m", "skhftt", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory):
    """Task, world, in and out embeddings as .npy files, and in/out shards folders."""
    root = tmp_path_factory.mktemp("emb")
    rng = np.random.default_rng(3)
    task = unit(rng.normal(size=(3, DIM)))
    np.save(root / "task.npy", task)
    np.save(root / "world.npy", unit(rng.normal(size=(300, DIM))))
    (root / "in").mkdir()
    (root / "out").mkdir()
    near = task[rng.integers(0, 3, 40)] + 0.2 * rng.normal(size=(40, DIM))
    np.save(root / "in" / "part_0.npy", unit(near).astype(np.float32))
    np.save(root / "out" / "other_0.npy", unit(rng.normal(size=(40, DIM))).astype(np.float32))
    return root


@pytest.fixture(scope="module")
def fitted(embeddings):
    path = embeddings / "det.joblib"
    done = _skhftt("fit", "-o", path, "--encoder", "precomputed", "--keep-file",
                   embeddings / "task.npy", "--world", embeddings / "world.npy",
                   "--n-embeddings", 4, "--seed", 1, "--detector", "hftt")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(
        f"wrote {str(path)!r}: HFTTDetector, 3 task column(s), width 16; it removes inputs "
        "that do not match its task")
    return path


def test_fit_writes_safetensors_and_info_describes_it(tmp_path, embeddings):
    path = tmp_path / "det.safetensors"
    assert main(["fit", "-o", str(path), "--encoder", "precomputed", "--keep-file",
                 str(embeddings / "task.npy"), "--world", str(embeddings / "world.npy"),
                 "--temperature", "0.05", "--threshold", "0.3", "--detector", "hftt"]) == 0
    done = _skhftt("info", path)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert lines["detector"].strip() == "HFTTDetector"
    assert lines["encoder"].strip() == "precomputed (precomputed)"
    assert lines["embedding width"].strip() == "16"
    assert lines["task columns"].strip().startswith("3: ")
    assert lines["learned columns (K)"].strip() == "10"
    assert lines["temperature"].strip() == "0.05"
    assert lines["threshold"].strip().startswith("0.3 (score offset -0.8473")
    assert "bytes" in lines["file"] and lines["written by skhftt"].strip()[0].isdigit()


def test_fit_texts_with_templates(tmp_path, capsys):
    (tmp_path / "templates.txt").write_text("a photo of a {}.\na drawing of a {}.\n")
    (tmp_path / "world.txt").write_text("\n".join(WORLD))
    (tmp_path / "tiny").mkdir()
    from skhftt.testing import build_tiny_clip

    build_tiny_clip(tmp_path / "tiny")
    assert main(["fit", "-o", str(tmp_path / "det.joblib"), "--keep", "apple", "pear",
                 "--detector", "hftt", "--templates", str(tmp_path / "templates.txt"),
                 "--world", str(tmp_path / "world.txt"), "--encoder", str(tmp_path / "tiny"),
                 "--device", "cpu", "--n-embeddings", "2"]) == 0
    assert "HFTTDetector, 2 task column(s)" in capsys.readouterr().out
    detector = joblib.load(tmp_path / "det.joblib")
    assert detector.templates == ["a photo of a {}.", "a drawing of a {}."]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "-o", "{tmp}/x.joblib", "--keep-file", "{tmp}/absent.txt"],
         "--keep-file '{tmp}/absent.txt' not found."),
        (["fit", "-o", "{tmp}/x.joblib", "--keep", "a", "--templates", "{tmp}/absent.txt"],
         "--templates '{tmp}/absent.txt' not found."),
        (["fit", "-o", "{tmp}/x.joblib", "--encoder", "precomputed", "--keep", "a",
          "--detector", "hftt"],
         "--encoder precomputed embeds nothing: give the task texts' embeddings with "
         "--keep-file or --remove-file FILE.npy."),
        (["score", "{det}", "-o", "{tmp}/o"], "no INPUT after the detector"),
        (["score", "-d", "{det}", "-d", "{det}", "{tmp}", "-o", "{tmp}/o"],
         "two detectors are named 'det'"),
        (["score", "-d", "{det}", "--unwanted", "nope=match", "{tmp}", "-o", "{tmp}/o"],
         "--unwanted 'nope=match' names no detector; the detectors are det."),
        (["filter", "{tmp}", "-o", "{tmp}/o"], "holds no score files"),
        (["info", "{tmp}/absent.joblib"], "not found"),
    ],
)
def test_user_mistakes_are_one_line(tmp_path, fitted, capsys, argv, message):
    code = main([a.format(tmp=tmp_path, det=fitted) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message.format(tmp=tmp_path) in err
    assert err.startswith(f"skhftt {argv[0]}: error: ") and err.count("\n") == 1


def test_detectors_of_different_spaces_are_refused(tmp_path, fitted):
    joblib.dump(precomputed_detector(dim=8), tmp_path / "narrow.joblib")
    done = _skhftt("score", "-d", fitted, "-d", tmp_path / "narrow.joblib", tmp_path,
                   "-o", tmp_path / "o")
    assert done.returncode == 2
    assert "different embedding spaces" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_several_detectors_then_filter(tmp_path, embeddings, fitted):
    second = tmp_path / "strict.safetensors"
    save_detector(joblib.load(fitted).set_params(threshold=0.9, unwanted="match"), second)
    done = _skhftt("score", "-d", fitted, "-d", second, "--unwanted", "strict=match",
                   embeddings / "in", embeddings / "out" / "other_0.npy", "-o", tmp_path / "s",
                   "--encoder", "precomputed")
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "s" / "part_0.parquet")
    assert table.column_names == ["id", "row", "det_score", "det_decision", "strict_score",
                                  "strict_decision", "remove", "triggered", "error"]
    rows = table.to_pylist()
    for row in rows:
        flagged = ["det"] * (row["det_decision"] == -1) + ["strict"] * (
            row["strict_decision"] == 1)
        assert row["triggered"] == flagged and row["remove"] == bool(flagged)

    done = _skhftt("filter", tmp_path / "s", "-o", tmp_path / "lists")
    assert done.returncode == 0, done.stderr
    rows += pq.read_table(tmp_path / "s" / "other_0.parquet").to_pylist()
    removed = (tmp_path / "lists" / "remove.txt").read_text().split()
    assert len(removed) == sum(row["remove"] for row in rows) > 0
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l2"),
                 "--method", "fraction"]) == 2
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l2"), "--method",
                 "fraction", "--fraction", "0.25", "--concept", "det"]) == 0


def test_filter_methods_on_one_detector(tmp_path, embeddings, fitted, capsys):
    for side in ("in", "out"):
        assert main(["score", str(fitted), str(embeddings / side), "-o",
                     str(tmp_path / side)]) == 0
    lists = tmp_path / "lists"
    assert main(["filter", str(tmp_path / "out"), "-o", str(lists), "--method", "fdr",
                 "--alpha", "0.1", "--calibration", str(tmp_path / "in")]) == 0
    assert "removed" in capsys.readouterr().out
    removed = (lists / "remove.txt").read_text().split()
    kept = (lists / "keep.txt").read_text().split()
    assert len(removed) > 30 and len(removed) + len(kept) == 40
    assert removed[0].startswith("other_0:")
    uids = np.load(lists / "kept_uids.npy")
    assert uids.dtype.kind == "U" and uids.tolist() == sorted(kept)

    assert main(["filter", str(tmp_path / "out"), "-o", str(lists), "--method", "fraction",
                 "--fraction", "0.25", "--keep-list", str(tmp_path / "k.txt")]) == 0
    assert len((lists / "remove.txt").read_text().split()) == 10
    assert len((tmp_path / "k.txt").read_text().split()) == 30
    assert main(["filter", str(tmp_path / "out"), "-o", str(lists), "--method", "tpr"]) == 2
    assert "needs --calibration CLEAN_SCORES" in capsys.readouterr().err


def test_filter_images_with_errors_into_a_symlinked_folder(tmp_path):
    joblib.dump(hashing_detector().set_params(unwanted="match"), tmp_path / "det.joblib")
    write_images(tmp_path / "pics", 4)
    assert main(["score", str(tmp_path / "det.joblib"), str(tmp_path / "pics"), "-o",
                 str(tmp_path / "s"), "--num-workers", "0"]) == 0
    assert main(["filter", str(tmp_path / "s"), "-o", str(tmp_path / "l"), "--unwanted",
                 "match", "--symlink-to", str(tmp_path / "kept")]) == 0
    errors = (tmp_path / "l" / "errors.txt").read_text().split()
    kept = (tmp_path / "l" / "keep.txt").read_text().split()
    assert len(errors) == 3 and len(kept) + len((tmp_path / "l" / "remove.txt").read_text()
                                                .split()) == 4
    links = sorted((tmp_path / "kept").iterdir())
    assert len(links) == len(kept) and all(link.is_symlink() for link in links)


def test_evaluate_writes_metrics_and_roc(tmp_path, embeddings, fitted):
    done = _skhftt("evaluate", fitted, "--in", embeddings / "in", "--out",
                   embeddings / "out", "-o", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    assert "40 in, 40 out" in done.stdout and "\nauroc      0.9" in done.stdout
    assert "job: keep what matches the task (--in); fpr95 is the share of --out" in done.stdout
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert metrics["auroc"] > 0.9 and metrics["unwanted"] == "mismatch"
    assert (tmp_path / "report" / "roc.png").read_bytes()[:4] == b"\x89PNG"


def test_explain_world_and_inputs(tmp_path):
    joblib.dump(hashing_detector(n_embeddings=2), tmp_path / "det.joblib")
    (tmp_path / "world.txt").write_text("\n".join(WORLD))
    write_images(tmp_path / "pics", 2, bad=False)
    done = _skhftt("explain", tmp_path / "det.joblib", tmp_path / "pics", "--world",
                   tmp_path / "world.txt", "-k", 3)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("learned_0: a photo of a ") and lines[0].count(";") == 2
    assert lines[1].startswith("learned_1: ")
    assert lines[3] == ("job: it removes inputs that do not match its task (at its threshold, "
                        f"score offset {0:.4f})")
    assert lines[4].split() == ["score", "share", "removed", "column", "input"]
    assert len(lines) == 7 and lines[5].endswith("img000.png")
    score, removed = float(lines[5].split()[0]), lines[5].split()[2]
    assert removed == ("no" if score >= 0 else "yes")


def test_every_command_has_help_with_an_example():
    for command in ("fit", "score", "filter", "evaluate", "explain", "info"):
        with pytest.raises(SystemExit) as caught:
            main([command, "--help"])
        assert caught.value.code == 0
    done = _skhftt("filter", "--help")
    assert "examples:\n  skhftt filter scores/ -o lists/" in done.stdout


def test_option_values_are_checked_by_the_parser(capsys):
    for argv in (["fit", "-o", "x", "--keep", "a", "--world-words", "0"],
                 ["fit", "-o", "x", "--keep", "a", "--gamma", "-1"],
                 ["explain", "d", "-k", "0"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "argument --world-words: must be at least 1, got 0" in err
    assert "argument --gamma: must be at least 0, got -1.0" in err
    assert "argument -k: must be at least 1, got 0" in err


def test_the_base_install_has_what_score_writes():
    from pathlib import Path

    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    names = [requirement.split(">")[0].split("=")[0].strip()
             for requirement in pyproject["project"]["dependencies"]]
    assert "pyarrow" in names and "matplotlib" not in names


HEAVY = ("torch", "sklearn", "scipy", "transformers", "sentence_transformers", "pyarrow")


@pytest.mark.parametrize("argv", [["--help"], ["info", "{det}"]])
def test_help_and_info_import_no_scientific_stack(tmp_path, argv):
    """``skhftt --help`` and ``skhftt info`` answer in a fraction of a second: they import
    neither torch nor scikit-learn (benchmarks/RESULTS.md, "CLI start-up", has the times)."""
    rng = np.random.default_rng(0)
    save_detector(HFTTDetector(encoder="precomputed", random_state=0).fit(
        rng.normal(size=(50, 8)), rng.normal(size=(2, 8))), tmp_path / "det.safetensors")
    args = [a.format(det=tmp_path / "det.safetensors") for a in argv]
    code = (
        "import sys\n"
        "from skhftt.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_info_of_detectors_fitted_with_an_encoder_object(tmp_path, capsys):
    detector = hashing_detector()
    save_detector(detector, tmp_path / "det.safetensors")
    joblib.dump(detector, tmp_path / "det.joblib")
    assert main(["info", str(tmp_path / "det.safetensors")]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["encoder"].strip() == (
        "none saved: fitted with an encoder object; give the model with --encoder")


class _Payload:
    """A pickle that, once loaded, creates the file ``path`` (as hostile code could)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["evil.bin", "evil.joblib", "evil.pkl"])
def test_info_never_runs_a_pickle(tmp_path, name):
    import pickle

    marker = tmp_path / "ran"
    evil = tmp_path / name
    evil.write_bytes(pickle.dumps(_Payload(str(marker))))
    done = _skhftt("info", evil)
    assert done.returncode == 0, done.stderr
    assert not marker.exists()  # nothing in the file ran
    assert "joblib/pickle: not opened" in done.stdout
    assert "io.open" in done.stdout  # what loading it would call, named
