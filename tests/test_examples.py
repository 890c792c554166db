"""The command-line and Dask examples run offline and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(name: str) -> str:
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _offline(name: str, *args: str) -> subprocess.CompletedProcess:
    """Run an example with a model that is neither cached nor downloadable."""
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--encoder", "skhftt-tests/no-such-clip", *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


@pytest.mark.parametrize("name", ["quickstart_images.py", "low_quality_images.py"])
def test_examples_report_an_unavailable_model_as_skhftt_does(name):
    done = _offline(name, "--world-words", "100")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"{name}: error: ") and done.stderr.count("\n") == 1
    assert "--encoder /path/to/clip-dir" in done.stderr


def test_filter_folder_stops_with_the_status_of_the_failing_command():
    done = _offline("filter_folder.py")
    assert done.returncode == 2
    assert done.stderr.startswith("skhftt fit: error: cannot load the encoder")
    assert "$ skhftt info" not in done.stdout


def test_filter_folder():
    out = _run("filter_folder.py")
    assert "task columns:        3: flower, tree, garden" in out
    assert "scored 9 rows (1 with errors) in 1 shard(s)" in out
    assert "keep.txt: 4 image(s)\nremove.txt: 4 image(s)\nerrors.txt: 1 image(s)" in out


def test_dask_embedding_shards():
    out = _run("dask_embedding_shards.py")
    assert "scored 4,000 rows (0 with errors) in 4 shard(s)" in out
    assert "rerun: scored 0 rows (0 with errors) in 0 shard(s)" in out
    assert "4 shard(s) already done" in out


@pytest.mark.parametrize("script", ["tune_on_images.py", "compare_baselines.py"])
def test_evaluation_examples(script):
    assert "FPR95" in _run(script)
