"""Files written by one ``skhftt`` command work from any other folder, and outputs are
checked before any work. Every command runs as a user runs it: a process in its own
working directory."""

from __future__ import annotations

import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
from _scoring_data import WORLD, hashing_detector, precomputed_detector, write_images


def _skhftt(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "skhftt", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def _one_line_error(done, command):
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"skhftt {command}: error: "), done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


@pytest.fixture
def folders(tmp_path):
    """A project folder with images and a detector, and an unrelated working folder."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_images(project / "imgs", 4, bad=False)
    joblib.dump(hashing_detector(), project / "det.joblib")
    return project, elsewhere


def test_filter_copies_images_scored_from_another_folder(folders):
    project, elsewhere = folders
    scored = _skhftt("score", "det.joblib", "imgs", "-o", "scores", "--num-workers", 0,
                     cwd=project)
    assert scored.returncode == 0, scored.stderr
    done = _skhftt("filter", project / "scores", "-o", "lists", "--method", "fraction",
                   "--fraction", 0.25, "--copy-to", "kept", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    kept = (elsewhere / "lists" / "keep.txt").read_text().split()
    assert len(kept) == 3 and all(os.path.isabs(name) for name in kept)
    copies = sorted(path.name for path in (elsewhere / "kept").iterdir())
    assert copies == sorted(os.path.basename(name) for name in kept)


def test_filter_resolves_list_files_against_their_folder(folders):
    project, elsewhere = folders
    (project / "imgs" / "some.txt").write_text("img000.png\nimg001.png\n")
    assert _skhftt("score", "det.joblib", "imgs/some.txt", "-o", "scores", cwd=project
                   ).returncode == 0
    done = _skhftt("filter", project / "scores", "-o", "lists", "--method", "fraction",
                   "--fraction", 0.5, "--symlink-to", "kept", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    links = list((elsewhere / "kept").iterdir())
    assert len(links) == 1 and links[0].resolve().parent == (project / "imgs").resolve()


def test_filter_checks_everything_before_writing(tmp_path):
    joblib.dump(precomputed_detector(), tmp_path / "det.joblib")
    np.save(tmp_path / "emb.npy", np.eye(3, 16, dtype=np.float32))
    assert _skhftt("score", "det.joblib", "emb.npy", "-o", "scores", cwd=tmp_path
                   ).returncode == 0
    done = _skhftt("filter", "scores", "-o", "lists", "--method", "fraction",
                   "--copy-to", "kept", cwd=tmp_path)
    _one_line_error(done, "filter")
    assert "is not an image file" in done.stderr
    assert not (tmp_path / "lists").exists() and not (tmp_path / "kept").exists()


def test_fit_stores_a_local_encoder_folder_that_works_from_anywhere(folders):
    from skhftt.testing import build_tiny_clip

    project, elsewhere = folders
    build_tiny_clip(project / "tinyclip")
    (project / "world.txt").write_text("\n".join(WORLD))
    done = _skhftt("fit", "-o", "tiny.safetensors", "--encoder", "tinyclip", "--keep", "apple",
                   "--detector", "hftt", "--world", "world.txt", "--n-embeddings", 2,
                   "--device", "cpu", cwd=project)
    assert done.returncode == 0, done.stderr
    info = _skhftt("info", project / "tiny.safetensors", cwd=elsewhere)
    assert info.returncode == 0, info.stderr
    encoder = next(line for line in info.stdout.splitlines() if line.startswith("encoder:"))
    assert encoder.split(":", 1)[1].strip() == (
        f"{(project / 'tinyclip').resolve()} (local directory)")
    scored = _skhftt("score", project / "tiny.safetensors", project / "imgs", "-o", "scores",
                     "--num-workers", 0, "--device", "cpu", cwd=elsewhere)
    assert scored.returncode == 0, scored.stderr
    assert "scored 4 rows (0 with errors)" in scored.stdout


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["fit", "-o", "{missing}/x.safetensors", "--encoder", "precomputed", "--keep-file",
          "task.npy", "--world", "world.npy", "--detector", "hftt"], "-o/--output"),
        (["fit", "-o", "{file}/x.joblib", "--encoder", "precomputed", "--keep-file",
          "task.npy", "--world", "world.npy", "--detector", "hftt"], "-o/--output"),
        (["score", "det.joblib", "world.npy", "-o", "{file}"], "-o/--output-dir"),
        (["score", "det.joblib", "world.npy", "-o", "{file}/sub"], "-o/--output-dir"),
        (["evaluate", "det.joblib", "--in", "task.npy", "--out", "world.npy", "-o", "{file}"],
         "-o/--output-dir"),
        (["filter", "scores", "-o", "{file}"], "-o/--output-dir"),
        (["filter", "scores", "-o", "lists", "--keep-list", "{missing}/keep.txt"],
         "--keep-list"),
        (["filter", "scores", "-o", "lists", "--copy-to", "{file}"], "--copy-to"),
    ],
)
def test_output_locations_are_checked_before_any_work(tmp_path, argv, flag):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "task.npy", rng.normal(size=(3, 16)).astype(np.float32))
    np.save(tmp_path / "world.npy", rng.normal(size=(50, 16)).astype(np.float32))
    joblib.dump(precomputed_detector(), tmp_path / "det.joblib")
    (tmp_path / "scores").mkdir()
    (tmp_path / "a_file").write_text("")
    names = {"missing": tmp_path / "nonexistent_dir", "file": tmp_path / "a_file"}
    done = _skhftt(*[arg.format(**names) for arg in argv], cwd=tmp_path)
    _one_line_error(done, argv[0])
    assert flag in done.stderr
    assert sorted(os.listdir(tmp_path)) == ["a_file", "det.joblib", "scores", "task.npy",
                                            "world.npy"]
    assert os.listdir(tmp_path / "scores") == []
