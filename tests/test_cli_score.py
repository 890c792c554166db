"""``skhftt score``: the command line over streaming scoring."""

from __future__ import annotations

import subprocess
import sys

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scoring_data import (
    BAD_IMAGES,
    DIM,
    hashing_detector,
    precomputed_detector,
    read_outputs,
    row_by_row,
    write_images,
    write_npy_shards,
)

from skhftt.cli import build_parser, main
from skhftt.detectors.persistence import save_detector


def _skhftt(*args, module="skhftt"):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def joblib_detector(tmp_path_factory):
    path = tmp_path_factory.mktemp("det") / "det.joblib"
    joblib.dump(hashing_detector(), path)
    return path


def test_score_images_from_folder_and_list(tmp_path, joblib_detector):
    files = write_images(tmp_path / "pics", 4)
    (tmp_path / "more.txt").write_text("pics/img000.png\nabsent.png\n")
    done = _skhftt("score", joblib_detector, tmp_path / "pics", tmp_path / "more.txt",
                   "-o", tmp_path / "out", "--batch-size", 3, "--num-workers", 1, "-v")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"scored 9 rows (4 with errors) in 2 shard(s) into '{tmp_path / 'out'}'; "
        "0 shard(s) already done"
    )
    assert "img/s" in done.stderr and "shards=2/2" in done.stderr
    outputs = read_outputs(tmp_path / "out")
    assert sorted(outputs) == ["more-00000.parquet", "pics-00000.parquet"]
    errors = {row["id"] for row in outputs["pics-00000.parquet"] if row["error"]}
    assert errors == {str(tmp_path / "pics" / name) for name in BAD_IMAGES}
    scored = [row for row in outputs["pics-00000.parquet"] if not row["error"]]
    expected = hashing_detector().score_samples([row["id"] for row in scored])
    np.testing.assert_allclose([row["score"] for row in scored], expected, rtol=1e-5)
    assert len(files) == 7

    again = _skhftt("score", joblib_detector, tmp_path / "pics", tmp_path / "more.txt",
                    "-o", tmp_path / "out", module="skhftt.cli")
    assert again.returncode == 0, again.stderr
    assert "in 0 shard(s)" in again.stdout and "2 shard(s) already done" in again.stdout


def test_score_laion_embeddings_with_a_safetensors_detector(tmp_path):
    det = precomputed_detector()
    save_detector(det, tmp_path / "det.safetensors")
    root = tmp_path / "laion"
    write_npy_shards(root / "img_emb", [5])
    (root / "img_emb" / "part_0.npy").rename(root / "img_emb" / "img_emb_0.npy")
    (root / "metadata").mkdir()
    pq.write_table(pa.table({"url": [f"http://x/{i}.jpg" for i in range(5)]}),
                   root / "metadata" / "metadata_0.parquet")
    done = _skhftt("score", tmp_path / "det.safetensors", root, "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    rows = read_outputs(tmp_path / "out")["img_emb_0.parquet"]
    assert [row["id"] for row in rows] == [f"http://x/{i}.jpg" for i in range(5)]
    embeddings = np.load(root / "img_emb" / "img_emb_0.npy").astype(np.float32)
    assert [row["decision"] for row in rows] == det.predict(row_by_row(embeddings)).tolist()


def test_usage_errors_are_one_line_and_exit_2(tmp_path, joblib_detector):
    done = _skhftt("score", joblib_detector, tmp_path / "nothing", "-o", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr == f"skhftt score: error: input '{tmp_path / 'nothing'}' not found.\n"
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.joblib", "{tmp}"], "DETECTOR 'missing.joblib' not found."),
        (["{det}", "{tmp}/x.bin"], "cannot tell what kind of input"),
        (["{tmp}/x.bin", "{tmp}"], "is neither a .safetensors detector nor a joblib file"),
        (["{det}", "{tmp}", "--kind", "npy"], "contains no npy shards"),
        (["{det}", "{tmp}/x.png", "--kind", "images", "--device", "tpu"],
         "--device 'tpu' is not a device of this machine"),
    ],
)
def test_usage_errors(tmp_path, joblib_detector, capsys, args, message):
    (tmp_path / "x.bin").write_bytes(b"\x00")
    (tmp_path / "x.png").write_bytes(b"\x00")
    argv = [a.format(tmp=tmp_path, det=joblib_detector) for a in args]
    assert main(["score", *argv, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skhftt score: error: ") and message in err
    assert err.count("\n") == 1


def test_bad_option_values_are_rejected_by_the_parser(capsys):
    for argv in (["score", "d", "i", "-o", "o", "--kind", "video"],
                 ["score", "d", "i", "-o", "o", "--batch-size", "0"],
                 ["score", "d", "i"]):
        with pytest.raises(SystemExit) as caught:
            main(argv)
        assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'video'" in err and "must be at least 1, got 0" in err
    assert "required: -o/--output-dir" in err


def test_a_shard_of_the_wrong_width_fails_for_good_and_the_others_are_kept(tmp_path, capsys):
    joblib.dump(precomputed_detector(), tmp_path / "det.joblib")
    write_npy_shards(tmp_path / "in", [3])
    np.save(tmp_path / "in" / "part_1.npy", np.ones((2, DIM + 1), np.float32))
    code = main(["score", str(tmp_path / "det.joblib"), str(tmp_path / "in"),
                 "-o", str(tmp_path / "out")])
    assert code == 2  # a rerun would fail the same way
    err = capsys.readouterr().err
    assert err.startswith("skhftt score: error: 1 shard(s) failed (part_1: ValueError:")
    assert "A rerun cannot help" in err and "Rerun to retry" not in err
    assert sorted(read_outputs(tmp_path / "out")) == ["part_0.parquet"]


def test_saved_detector_without_its_encoder(tmp_path, capsys):
    save_detector(hashing_detector(), tmp_path / "det.safetensors")
    write_npy_shards(tmp_path / "in", [3])
    argv = ["score", str(tmp_path / "det.safetensors"), str(tmp_path / "in"), "-o",
            str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "fitted with an encoder object" in err and "--encoder precomputed" in err
    assert "encoder=" not in err
    assert main([*argv, "--encoder", "precomputed"]) == 0
    assert "scored 3 rows" in capsys.readouterr().out


def test_scheduler_option(tmp_path, joblib_detector):
    distributed = pytest.importorskip("distributed")
    write_images(tmp_path / "pics", 3)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:
        done = _skhftt("score", joblib_detector, tmp_path / "pics", "-o", tmp_path / "out",
                       "--scheduler", cluster.scheduler_address, "--shard-size", 4)
    assert done.returncode == 0, done.stderr
    assert "scored 6 rows (3 with errors) in 2 shard(s)" in done.stdout


def test_help_lists_the_score_command(capsys):
    assert "score" in build_parser().format_help()
    with pytest.raises(SystemExit) as caught:
        main(["score", "--help"])
    assert caught.value.code == 0 and "--scheduler ADDRESS" in capsys.readouterr().out
