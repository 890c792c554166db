"""What the ``skhftt`` commands say: help texts, errors in the words of the command line,
and partial results reported rather than hidden."""

from __future__ import annotations

import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
from _scoring_data import WORLD, hashing_detector, write_images
from _synthetic import make_task_world

from skhftt.cli import main
from skhftt.detectors import HFTTDetector


def _skhftt(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "skhftt", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def _help(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_gamma_is_described_as_the_focal_exponent(capsys):
    text = _help("fit", capsys)
    gamma = text[text.index("--gamma GAMMA"):]
    assert gamma.split("(default: 1.0)")[0].count("focal exponent") == 1
    assert "weight of the world term" not in text


def test_evaluate_help_mentions_no_option_it_lacks(capsys):
    assert "--scheduler" not in _help("evaluate", capsys)
    assert "--scheduler" in _help("score", capsys)


def test_the_default_encoder_is_the_package_constant(capsys):
    from skhftt.embedding.encoders import DEFAULT_ENCODER

    assert f"(default: {DEFAULT_ENCODER})" in _help("fit", capsys)


@pytest.fixture(scope="module")
def precomputed(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    data = make_task_world(n_world=200, dim=16, seed=4)
    detector = HFTTDetector(encoder="precomputed", random_state=0, n_embeddings=2)
    joblib.dump(detector.fit(data["world"], data["prompts"]), root / "det.joblib")
    np.save(root / "world.npy", data["world"])
    (root / "world.txt").write_text("\n".join(f"text {i}" for i in range(200)))
    return root


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ([], ["--world-embeddings NPY", "--world-words 10000"]),
        (["--world-words", "50", "--world-embeddings", "{root}/world.npy"],
         ["--world-embeddings", "200 rows for the 50 texts of --world-words 50", "--world FILE"]),
    ],
)
def test_explain_errors_name_the_flags(precomputed, capsys, extra, names):
    argv = [str(precomputed / "det.joblib"), *[a.format(root=precomputed) for a in extra]]
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("skhftt explain: error: ") and err.count("\n") == 1
    assert all(name in err for name in names), err
    assert "embeddings=" not in err and "pass the" not in err


def test_explain_with_the_world_embeddings_of_a_precomputed_detector(precomputed, capsys):
    assert main(["explain", str(precomputed / "det.joblib"), "--world",
                 str(precomputed / "world.txt"), "--world-embeddings",
                 str(precomputed / "world.npy"), "-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["learned_0", "learned_1"]


def test_an_unavailable_model_names_the_encoder_flag(tmp_path):
    done = _skhftt("fit", "-o", tmp_path / "x.safetensors", "--keep", "a dog", "--detector", "hftt",
                   "--world-words", 10, "--encoder", "skhftt-tests/no-such-clip",
                   env={"HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("skhftt fit: error: cannot load the encoder "
                                  "'skhftt-tests/no-such-clip'")
    assert done.stderr.count("\n") == 1
    assert "--encoder /path/to/clip-dir" in done.stderr and "encoder='" not in done.stderr
    assert "skhftt.testing" in done.stderr


def test_explain_reports_unreadable_images_and_goes_on(tmp_path):
    joblib.dump(hashing_detector(n_embeddings=2), tmp_path / "det.joblib")
    (tmp_path / "world.txt").write_text("\n".join(WORLD))
    write_images(tmp_path / "pics", 2, bad=False)
    (tmp_path / "pics" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "pics" / "phone.heic").write_bytes(b"not an image either")
    (tmp_path / "pics" / "notes.txt").write_text("not an image file")
    done = _skhftt("explain", tmp_path / "det.joblib", tmp_path / "pics", "--world",
                   tmp_path / "world.txt", "-k", 2)
    assert done.returncode == 0, done.stderr
    rows = done.stdout.split("\n\n")[1].splitlines()[2:]  # after the job and the header
    unreadable = sorted(row.split()[4].rstrip(":") for row in rows if " unreadable " in row)
    assert unreadable == [str(tmp_path / "pics" / "broken.png"),
                          str(tmp_path / "pics" / "phone.heic")]
    assert len(rows) == 4 and "notes.txt" not in done.stdout
    assert "2 of 4 input(s) could not be read and were skipped." in done.stdout


def test_evaluate_reports_unreadable_images(tmp_path, capsys):
    joblib.dump(hashing_detector(), tmp_path / "det.joblib")
    write_images(tmp_path / "a", 3, bad=False)
    write_images(tmp_path / "b", 3, seed=1, bad=False)
    (tmp_path / "a" / "broken.png").write_bytes(b"not an image")
    assert main(["evaluate", str(tmp_path / "det.joblib"), "--in", str(tmp_path / "a"),
                 "--out", str(tmp_path / "b"), "--num-workers", "0"]) == 0
    assert capsys.readouterr().out.startswith("3 in (1 unreadable, left out), 3 out\n")


def test_evaluate_without_matplotlib_stops_before_any_work(tmp_path):
    fake = tmp_path / "no_matplotlib" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    np.save(tmp_path / "in.npy", np.eye(2, 16, dtype=np.float32))
    joblib.dump(HFTTDetector(encoder="precomputed", random_state=0).fit(
        make_task_world(dim=16)["world"], np.eye(2, 16)), tmp_path / "det.joblib")
    done = _skhftt("evaluate", "det.joblib", "--in", "in.npy", "--out", "in.npy", "-o",
                   "report", cwd=tmp_path, env={"PYTHONPATH": os.pathsep.join(
                       filter(None, [str(fake.parent), os.environ.get("PYTHONPATH")]))})
    assert done.returncode == 2, done.stderr
    assert done.stderr == ('skhftt evaluate: error: -o/--output-dir draws roc.png with '
                           'matplotlib, which is not installed: pip install "skhftt[plot]"\n')
    assert done.stdout == "" and not (tmp_path / "report").exists()


def test_a_failure_no_rerun_can_fix_is_said_so_and_exits_2(precomputed, tmp_path, capsys):
    # Embeddings of width 5 for a detector of width 16 fail every time.
    np.save(tmp_path / "a.npy", np.eye(3, 5, dtype=np.float32))
    np.save(tmp_path / "b.npy", np.eye(3, 5, dtype=np.float32))
    code = main(["score", str(precomputed / "det.joblib"), str(tmp_path / "a.npy"),
                 str(tmp_path / "b.npy"), "-o", str(tmp_path / "out")])
    message = capsys.readouterr().err
    assert code == 2
    assert "2 shard(s) failed" in message and "A rerun cannot help" in message
    assert "Rerun to retry" not in message


def test_a_passing_failure_is_reported_as_retryable():
    from skhftt.batch.run import ScoringError, ScoringReport

    report = ScoringReport(output_dir="out", failed={"a": "OSError: disk full",
                                                     "b": "ValueError: width 5"},
                           permanent={"b"})
    error = ScoringError(report)
    assert not error.permanent
    assert "1 of them failed for reasons a rerun cannot fix" in str(error)
    assert "retry the other 1" in str(error)


def test_images_for_a_text_only_encoder_fail_before_any_shard(tmp_path):
    from skhftt.batch import score_shards

    class TextOnly:
        identity, dim, modalities = "text-only:4", 4, ("text",)

        def encode_text(self, texts, *, batch_size=256, show_progress=False):
            rows = np.ones((len(texts), 4), np.float32)
            return rows / 2.0

        def encode_image(self, images, *, batch_size=256):
            raise AssertionError("never called")

    with pytest.warns(UserWarning, match="embeds texts only"):
        det = HFTTDetector(encoder=TextOnly(), n_embeddings=1, cache_dir=False,
                           random_state=0).fit(["a", "b", "c"], ["d"])
    write_images(tmp_path / "imgs", 2, bad=False)
    with pytest.raises(ValueError, match="embeds texts only, so it cannot score images"):
        score_shards(det, tmp_path / "imgs", tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.parquet"))


@pytest.mark.parametrize("options", [[], ["--world", "world.txt", "--world-embeddings",
                                          "world.npy", "-k", "2"]])
def test_a_reader_that_went_away_ends_the_command_quietly(precomputed, options):
    """``skhftt info DETECTOR | head -1``: SIGPIPE's status and no error line, as in a shell."""
    command = "explain" if options else "info"
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes a line
    try:
        done = subprocess.run([sys.executable, "-m", "skhftt", command, "det.joblib", *options],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=300,
                              cwd=precomputed)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")
