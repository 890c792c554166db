"""Streaming scoring on one machine: shards, bad files, atomic outputs, resume."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from typing import ClassVar

import joblib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from _scoring_data import (
    BAD_IMAGES,
    DIM,
    hashing_detector,
    partials,
    precomputed_detector,
    read_outputs,
    row_by_row,
    write_embedding_parquet,
    write_images,
    write_img2dataset_parquet,
    write_npy_shards,
)
from _synthetic import unit

from skhftt import HFTTDetector, HFTTEnsembleDetector
from skhftt.batch import (
    RUN_FILE,
    ScoringError,
    ShardScorer,
    discover_shards,
    missing_outputs,
    output_schema,
    read_manifest,
    score_shards,
)
from skhftt.detectors import MCMDetector
from skhftt.embedding.encoders.hashing import HashingEncoder


@pytest.fixture(scope="module")
def det():
    return hashing_detector()


@pytest.fixture(scope="module")
def pre_det():
    return precomputed_detector()


def _rows(folder, name):
    return pq.read_table(folder / f"{name}.parquet").to_pylist()


def _scored(rows):
    return [row for row in rows if row["error"] is None]


def _check_against(rows, det, inputs):
    """Scored rows equal the detector's own scores and predictions for ``inputs``."""
    if isinstance(inputs, np.ndarray):
        inputs = row_by_row(inputs)
    scores = np.array([row["score"] for row in rows])
    np.testing.assert_allclose(scores, det.score_samples(inputs), rtol=1e-5, atol=1e-4)
    assert [row["decision"] for row in rows] == det.predict(inputs).tolist()


# ----------------------------------------------------------------- discovery


def test_folder_is_walked_recursively_in_order_and_split(tmp_path):
    """Every file is an input, hidden ones too; a file of another extension is read as an
    image, except the sidecars of an image (same name up to the first dot)."""
    write_images(tmp_path / "pics", 7, bad=False)
    (tmp_path / "pics" / "notes.txt").write_text("not an image")
    (tmp_path / "pics" / "img000.txt").write_text("a caption")
    (tmp_path / "pics" / "sub" / "img002.json").write_text("{}")
    (tmp_path / "pics" / ".hidden.png").write_bytes((tmp_path / "pics" / "img000.png")
                                                    .read_bytes())
    shards = discover_shards(tmp_path / "pics", shard_size=3)
    assert [s.name for s in shards] == ["pics-00000", "pics-00001", "pics-00002"]
    assert {s.kind for s in shards} == {"images"}
    items = [item for s in shards for item in s.items]
    assert items == [
        ".hidden.png", "img000.png", "img001.png", "img003.png", "img004.png", "img006.png",
        "notes.txt", "sub/img002.jpg", "sub/img005.jpg",
    ]
    assert [s.n_items for s in shards] == [3, 3, 3]
    (tmp_path / "pics" / "sub" / "loop").symlink_to(tmp_path / "pics")
    assert [item for s in discover_shards(tmp_path / "pics") for item in s.items] == items


def test_each_kind_is_detected(tmp_path):
    write_images(tmp_path / "pics", 2, bad=False)
    (tmp_path / "list.txt").write_text("pics/img000.png\n")
    with tarfile.open(tmp_path / "a.tar", "w") as archive:
        archive.add(tmp_path / "pics" / "img000.png", "k0.png")
    write_npy_shards(tmp_path / "npys", [3, 2])
    (tmp_path / "laion" / "img_emb").mkdir(parents=True)
    np.save(tmp_path / "laion" / "img_emb" / "img_emb_0.npy", np.ones((2, DIM), np.float16))
    write_embedding_parquet(tmp_path / "e.parquet", [[1.0] * DIM])
    shards = discover_shards([
        tmp_path / "pics", tmp_path / "list.txt", tmp_path / "a.tar", tmp_path / "npys",
        tmp_path / "laion", tmp_path / "e.parquet", tmp_path / "pics" / "img001.png",
    ])
    assert [(s.kind, s.name, s.n_items) for s in shards] == [
        ("images", "pics-00000", 2), ("list", "list-00000", 1), ("tar", "a", None),
        ("npy", "part_0", 3), ("npy", "part_1", 2), ("npy", "img_emb_0", 2),
        ("parquet", "e", 1), ("images", "images-00000", 1),
    ]


def test_kind_override(tmp_path):
    (tmp_path / "paths.tsv").write_text("a.png\nb.png\n")
    [shard] = discover_shards(tmp_path / "paths.tsv", kind="list")
    assert (shard.kind, shard.n_items) == ("list", 2)


def _missing(folder):
    return folder / "missing"


def _unknown_extension(folder):
    (folder / "x.bin").write_bytes(b"x")
    return folder / "x.bin"


def _empty_folder(folder):
    (folder / "empty").mkdir()
    return folder / "empty"


def _blank_list(folder):
    (folder / "l.txt").write_text("\n  \n")
    return folder / "l.txt"


@pytest.mark.parametrize(
    ("setup", "error", "match"),
    [
        (_missing, FileNotFoundError, "input '.*missing' not found"),
        (_unknown_extension, ValueError, "cannot tell what kind of input .*x.bin.*'.bin'"),
        (_empty_folder, ValueError, "contains no image files"),
        (_blank_list, ValueError, "list file .* contains no paths"),
    ],
)
def test_discovery_errors_name_the_input(tmp_path, setup, error, match):
    with pytest.raises(error, match=match):
        discover_shards(setup(tmp_path))


def test_bad_kind_and_clashing_names(tmp_path):
    with pytest.raises(ValueError, match="kind='jpeg' is not one of images, list"):
        discover_shards(tmp_path, kind="jpeg")
    write_npy_shards(tmp_path / "a", [2])
    write_npy_shards(tmp_path / "b", [2])
    with pytest.raises(ValueError, match=r"would both write part_0\.parquet"):
        discover_shards([tmp_path / "a", tmp_path / "b"])
    with pytest.raises(ValueError, match="shard_size must be a positive int"):
        discover_shards(tmp_path / "a", shard_size=0)


def test_list_file_shards_are_read_by_offset(tmp_path, det):
    files = write_images(tmp_path / "pics", 5, bad=False)
    names = sorted(files)
    lines = [f"pics/{name}" for name in names]
    (tmp_path / "paths.txt").write_text("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]))
    shards = discover_shards(tmp_path / "paths.txt", shard_size=2)
    assert [s.n_items for s in shards] == [2, 2, 1]
    score_shards(det, shards, tmp_path / "out")
    rows = [row for s in shards for row in _rows(tmp_path / "out", s.name)]
    assert [row["id"] for row in rows] == lines
    _check_against(rows, det, [str(files[name]) for name in names])


# ---------------------------------------------------------------- embeddings


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_npy_shards_score_like_the_detector(tmp_path, pre_det, dtype):
    [path] = write_npy_shards(tmp_path, [1000], dtype=dtype)
    report = score_shards(pre_det, path, tmp_path / "out", block_rows=300)
    assert (report.written, report.n_rows, report.n_errors) == (["part_0"], 1000, 0)
    table = pq.read_table(tmp_path / "out" / "part_0.parquet")
    assert table.schema.equals(output_schema())
    assert table.column("row").to_pylist() == list(range(1000))
    assert table.column("id").null_count == 1000
    _check_against(table.to_pylist(), pre_det, np.load(path).astype(np.float32))
    manifest = read_manifest(tmp_path / "out" / "part_0.parquet")
    assert manifest["n_rows"] == 1000 and manifest["offset"] == pytest.approx(pre_det.offset_)


def test_laion_folder_takes_ids_from_metadata(tmp_path, pre_det):
    root = tmp_path / "laion"
    write_npy_shards(root / "img_emb", [7, 5])
    for index in range(2):
        (root / "img_emb" / f"part_{index}.npy").rename(root / "img_emb" / f"img_emb_{index}.npy")
    (root / "metadata").mkdir()
    pq.write_table(pa.table({"caption": ["c"] * 7, "key": [f"a{i}" for i in range(7)]}),
                   root / "metadata" / "metadata_0.parquet", row_group_size=2)
    pq.write_table(pa.table({"key": ["b0"]}), root / "metadata" / "metadata_1.parquet")
    with pytest.raises(ScoringError, match=r"1 shard.*img_emb_1: ValueError: .*describes 1 rows"):
        score_shards(pre_det, root, tmp_path / "out", block_rows=3)
    rows = _rows(tmp_path / "out", "img_emb_0")
    assert [row["id"] for row in rows] == [f"a{i}" for i in range(7)]
    _check_against(rows, pre_det, np.load(root / "img_emb" / "img_emb_0.npy").astype(np.float32))
    assert not (tmp_path / "out" / "img_emb_1.parquet").exists()
    assert partials(tmp_path / "out") == []


@pytest.mark.parametrize("fixed", [False, True])
def test_parquet_shard_with_bad_rows(tmp_path, pre_det, fixed):
    rng = np.random.default_rng(3)
    good = unit(rng.normal(size=(8, DIM)))
    embeddings = [list(map(float, row)) for row in good]
    embeddings[1] = None
    embeddings[3] = [float("nan")] * DIM
    embeddings[5] = [0.0] * DIM
    if not fixed:
        embeddings[6] = embeddings[6][:4]
    write_embedding_parquet(tmp_path / "e.parquet", embeddings, ids=list(range(8)),
                            value_type=pa.float16() if fixed else pa.float32(), fixed=fixed)
    report = score_shards(pre_det, tmp_path / "e.parquet", tmp_path / "out", block_rows=3)
    rows = _rows(tmp_path / "out", "e")
    assert [row["id"] for row in rows] == [str(i) for i in range(8)]
    errors = {row["row"]: row["error"] for row in rows if row["error"]}
    expected = {1: "embedding is missing (null)",
                3: "embedding contains NaN or infinite values",
                5: "embedding is all zeros: it has no direction"}
    if not fixed:
        expected[6] = f"embedding has width 4, expected {DIM}"
    assert errors == expected
    assert report.n_errors == len(expected)
    assert all(rows[i]["score"] is None and rows[i]["decision"] is None for i in errors)
    scored = [i for i in range(8) if i not in errors]
    stored = good.astype(np.float16).astype(np.float32) if fixed else good
    _check_against([rows[i] for i in scored], pre_det, stored[scored])


def test_parquet_embedding_column_choice(tmp_path, pre_det):
    path = tmp_path / "two.parquet"
    pq.write_table(pa.table({"a": [[1.0] * DIM], "b": [[1.0] * DIM]}), path)
    with pytest.raises(ScoringError, match=r"several .*a, b.*name the embedding column"):
        score_shards(pre_det, path, tmp_path / "out")
    score_shards(pre_det, path, tmp_path / "out", embedding_column="b")
    with pytest.raises(ScoringError, match="no embedding column 'c'"):
        score_shards(pre_det, path, tmp_path / "out2", embedding_column="c")


def test_wrong_width_fails_that_shard_only(tmp_path, pre_det):
    write_npy_shards(tmp_path / "in", [4])
    np.save(tmp_path / "in" / "part_1.npy", np.ones((3, DIM + 1), np.float32))
    with pytest.raises(ScoringError) as caught:
        score_shards(pre_det, tmp_path / "in", tmp_path / "out")
    report = caught.value.report
    assert report.written == ["part_0"]
    assert "width 17, but the detector works in a space of width 16" in report.failed["part_1"]
    assert sorted(os.listdir(tmp_path / "out")) == ["part_0.parquet", RUN_FILE]


def test_npy_files_are_checked(tmp_path, pre_det):
    np.save(tmp_path / "ints.npy", np.ones((3, DIM), np.int64))
    [shard] = discover_shards(tmp_path / "ints.npy")
    assert re.search(r"ints\.npy' holds a int64 array of shape \(3, 16\)", shard.error)
    (tmp_path / "junk.npy").write_bytes(b"junk")
    [shard] = discover_shards(tmp_path / "junk.npy")
    assert re.search(r"junk\.npy' is not a readable \.npy file", shard.error)
    with pytest.raises(ScoringError, match=r"junk: ValueError: .*junk\.npy' is not a readable"):
        score_shards(pre_det, tmp_path / "junk.npy", tmp_path / "junk")
    [path] = write_npy_shards(tmp_path / "in", [10])
    path.write_bytes(path.read_bytes()[: -DIM * 2 * 3 - 5])
    with pytest.raises(ScoringError, match="promises 10 rows, but the data end within row 6"):
        score_shards(pre_det, path, tmp_path / "out", block_rows=4)
    assert os.listdir(tmp_path / "out") == [RUN_FILE]


def test_empty_shards_give_empty_outputs(tmp_path, pre_det):
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "none.npy", np.zeros((0, DIM), np.float16))
    write_embedding_parquet(tmp_path / "in" / "none.parquet", [])
    for kind in ("npy", "parquet"):
        report = score_shards(pre_det, tmp_path / "in", tmp_path / kind, kind=kind)
        assert (report.written, report.n_rows) == (["none"], 0)
        assert pq.read_table(tmp_path / kind / "none.parquet").schema.equals(output_schema())


def test_outputs_never_overwrite_inputs(tmp_path, pre_det):
    write_embedding_parquet(tmp_path / "e.parquet", [[1.0] * DIM])
    with pytest.raises(ValueError, match=r"shard 'e' would overwrite the input .*e\.parquet"):
        score_shards(pre_det, tmp_path / "e.parquet", tmp_path)
    assert pq.read_table(tmp_path / "e.parquet").column_names == ["embedding"]


# -------------------------------------------------------------------- images


def test_image_folder_keeps_a_row_for_every_bad_file(tmp_path, det):
    files = write_images(tmp_path / "pics", 6)
    report = score_shards(det, tmp_path / "pics", tmp_path / "out", batch_size=4, shard_size=50)
    rows = _rows(tmp_path / "out", "pics-00000")
    assert len(rows) == len(files) == report.n_rows
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == {str(tmp_path / "pics" / name) for name in files}
    for name in BAD_IMAGES:
        row = by_id[str(files[name])]
        assert row["score"] is None and row["decision"] is None
        assert row["error"].startswith("ValueError: image file") and name in row["error"]
    assert "truncated" in by_id[str(files["truncated.jpg"])]["error"]
    good = [name for name in files if name not in BAD_IMAGES]
    _check_against([by_id[str(files[n])] for n in good], det, [str(files[n]) for n in good])
    assert report.n_errors == 3


@pytest.mark.parametrize("kind", [MCMDetector, HFTTEnsembleDetector])
def test_detectors_without_an_hftt_head_score_around_the_bad_rows(tmp_path, kind):
    """Failed rows hold zeros, which a detector's own score_samples refuses."""
    params = {"random_state": 0, "calibration_size": 50} if kind is HFTTEnsembleDetector else {}
    det = kind(encoder=HashingEncoder(dim=DIM), **params).fit(
        [f"a photo of {word}" for word in "a dog cat car bus sea lake tree hill road".split()]
        * 5, {"apple": ["a ripe apple", "a red apple"], "pear": ["a pear", "a green pear"]})
    files = write_images(tmp_path / "pics", 4)
    report = score_shards(det, tmp_path / "pics", tmp_path / "out", batch_size=2)
    assert (report.n_rows, report.n_errors, dict(report.failed)) == (7, 3, {})
    by_id = {row["id"]: row for row in _rows(tmp_path / "out", "pics-00000")}
    good = [str(path) for name, path in files.items() if name not in BAD_IMAGES]
    assert all(by_id[str(files[name])]["score"] is None for name in BAD_IMAGES)
    _check_against([by_id[path] for path in good], det, good)

    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    for name in BAD_IMAGES:
        (only_bad / name).write_bytes(files[name].read_bytes())
    report = score_shards(det, only_bad, tmp_path / "out_bad")
    assert (report.n_rows, report.n_errors) == (3, 3)


def test_missing_file_in_a_list_is_an_error_row(tmp_path, det):
    write_images(tmp_path / "pics", 2, bad=False)
    (tmp_path / "l.txt").write_text("pics/img000.png\nnot/there.jpg\npics/img001.png\n")
    score_shards(det, tmp_path / "l.txt", tmp_path / "out")
    rows = _rows(tmp_path / "out", "l-00000")
    assert [row["id"] for row in rows] == ["pics/img000.png", "not/there.jpg", "pics/img001.png"]
    assert rows[1]["error"] == "FileNotFoundError: image file 'not/there.jpg' not found."
    assert rows[0]["score"] is not None and rows[2]["score"] is not None


def test_tar_shard_groups_members_by_key(tmp_path, det):
    files = write_images(tmp_path / "pics", 3)
    with tarfile.open(tmp_path / "shard.tar", "w") as archive:
        archive.add(files["img000.png"], "s/000.png")
        text = b"a caption"
        info = tarfile.TarInfo("s/000.txt")
        info.size = len(text)
        archive.addfile(info, io.BytesIO(text))
        archive.add(files["img001.png"], "s/001.png")
        archive.add(files["corrupt.png"], "s/002.png")
        archive.add(files["empty.jpg"], "s/003.jpg")
        info = tarfile.TarInfo("s/004.json")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"{}"))
    score_shards(det, tmp_path / "shard.tar", tmp_path / "out")
    rows = _rows(tmp_path / "out", "shard")
    assert [row["id"] for row in rows] == ["s/000", "s/001", "s/002", "s/003", "s/004"]
    _check_against(rows[:2], det, [str(files["img000.png"]), str(files["img001.png"])])
    assert rows[2]["error"] == (
        "ValueError: tar member 's/002.png' is not a readable image: Pillow recognises no "
        "image format in it, or it is corrupt."
    )
    assert rows[3]["error"].startswith("ValueError: tar member 's/003.jpg' is not a readable")
    assert rows[4]["error"] == "ValueError: sample 's/004' has no image member (extensions: json)"


def test_tiny_clip_through_dataloader_workers(tmp_path, tiny_clip_dir, image_files):
    det = HFTTDetector(encoder=str(tiny_clip_dir), device="cpu", random_state=0)
    det.fit(["a photo of a dog", "a photo of a car", "a tree"], ["an astronaut"])
    folder = image_files["astronaut.jpg"].parent
    score_shards(det, folder, tmp_path / "out", num_workers=2, batch_size=4)
    rows = _rows(tmp_path / "out", folder.name + "-00000")
    by_name = {os.path.basename(row["id"]): row for row in rows}
    expected = sorted(os.listdir(folder))  # scan_0001, a PNG without extension, included
    assert "scan_0001" in expected and sorted(by_name) == expected
    assert by_name["corrupt.jpg"]["error"].startswith("ValueError")
    good = [name for name in expected if name != "corrupt.jpg"]
    _check_against([by_name[n] for n in good], det, [str(folder / n) for n in good])


def _to_pixels(image):
    array = np.asarray(image.resize((8, 8)), dtype=np.float32) / 255
    return torch.from_numpy(array).permute(2, 0, 1)


class PixelEncoder(HashingEncoder):
    """Preprocesses in the DataLoader workers and embeds stacked pixel tensors."""

    def __init__(self):
        super().__init__(dim=DIM)
        self.batches = []

    def pixel_transform(self):
        return _to_pixels

    def encode_pixels(self, pixels):
        self.batches.append(tuple(pixels.shape))
        return self._unit([self._vector(row.numpy().tobytes()) for row in pixels])


def test_encoder_pixel_path_is_used(tmp_path):
    encoder = PixelEncoder()
    det = HFTTDetector(encoder=encoder, random_state=0).fit(["a dog", "a cat"], ["an apple"])
    write_images(tmp_path / "pics", 5)
    score_shards(det, tmp_path / "pics", tmp_path / "out", batch_size=4)
    rows = _rows(tmp_path / "out", "pics-00000")
    assert [bool(row["error"]) for row in rows] == [True] * 2 + [False] * 4 + [True, False]
    assert encoder.batches == [(2, 3, 8, 8), (3, 3, 8, 8)]


class PickyEncoder(HashingEncoder):
    """Fails on any batch holding an image 14 pixels high; ``always`` fails every batch."""

    def __init__(self, always=False):
        super().__init__(dim=DIM)
        self.always = always

    def encode_image(self, images, *, batch_size=64, show_progress=False):
        if self.always or any(image.size[1] == 14 for image in images):
            raise RuntimeError("the model cannot take this")
        return super().encode_image(images)


def test_encoder_failure_is_isolated_to_its_item(tmp_path):
    det = HFTTDetector(encoder=PickyEncoder(), random_state=0).fit(["a dog"], ["an apple"])
    write_images(tmp_path / "pics", 4, bad=False)  # img002 is 14 pixels high
    score_shards(det, tmp_path / "pics", tmp_path / "out", batch_size=8)
    rows = _rows(tmp_path / "out", "pics-00000")
    errors = {os.path.basename(row["id"]): row["error"] for row in rows}
    assert errors == {"img000.png": None, "img001.png": None, "img003.png": None,
                      "img002.jpg": "RuntimeError: the model cannot take this"}


def test_systemic_encoder_failure_fails_the_shard(tmp_path):
    det = HFTTDetector(encoder=PickyEncoder(always=True), random_state=0)
    det.fit(["a dog"], ["an apple"])
    write_images(tmp_path / "pics", 2, bad=False)
    with pytest.raises(ScoringError, match="pics-00000: RuntimeError: the model cannot take this"):
        score_shards(det, tmp_path / "pics", tmp_path / "out")
    assert os.listdir(tmp_path / "out") == [RUN_FILE]


def test_precomputed_detector_refuses_images_before_writing(tmp_path, pre_det):
    write_images(tmp_path / "pics", 1, bad=False)
    with pytest.raises(ValueError, match=r"image inputs need an encoder.*encoder='precomputed'"):
        score_shards(pre_det, tmp_path / "pics", tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


def test_options_are_checked(tmp_path, pre_det):
    with pytest.raises(ValueError, match="batch_size must be an int >= 1; got 0"):
        score_shards(pre_det, tmp_path, tmp_path / "out", batch_size=0)
    with pytest.raises(ValueError, match="num_workers must be an int >= 0; got -1"):
        score_shards(pre_det, tmp_path, tmp_path / "out", num_workers=-1)


def test_scorer_needs_a_fitted_head():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ShardScorer.from_detector(HFTTDetector())
    with pytest.raises(TypeError, match="not an estimator"):
        ShardScorer.from_detector("det.joblib")


class RecordingBar:
    """Stands in for tqdm's bar: records what the run tells it."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, **options):
        self.options, self.updates, self.postfixes = options, [], []
        RecordingBar.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def update(self, n):
        self.updates.append(n)

    def set_postfix(self, **values):
        self.postfixes.append(values)


def test_progress_counts_rows_and_shards(tmp_path, pre_det, det, monkeypatch):
    monkeypatch.setattr("tqdm.auto.tqdm", RecordingBar)
    RecordingBar.made.clear()
    write_npy_shards(tmp_path / "in", [5, 6])
    score_shards(pre_det, tmp_path / "in", tmp_path / "out", verbose=1, block_rows=4)
    [bar] = RecordingBar.made
    assert (bar.options["total"], bar.options["unit"], bar.options["disable"]) == (11, "emb",
                                                                                   False)
    assert bar.updates == [4, 1, 4, 2]
    assert bar.postfixes == [{"shards": "1/2"}, {"shards": "2/2"}]
    score_shards(pre_det, tmp_path / "in", tmp_path / "out")  # nothing left to do
    assert (RecordingBar.made[-1].options["total"], RecordingBar.made[-1].options["disable"]) \
        == (0, True)
    write_images(tmp_path / "pics", 3, bad=False)
    (tmp_path / "more.txt").write_text("pics/img000.png\n")
    score_shards(det, [tmp_path / "pics", tmp_path / "more.txt"], tmp_path / "img", verbose=2,
                 batch_size=2)
    bar = RecordingBar.made[-1]
    assert (bar.options["total"], bar.options["unit"], sum(bar.updates)) == (4, "img", 4)


# ------------------------------------------------------------ resume, atomic


def test_rerun_skips_finished_shards_and_redoes_changed_ones(tmp_path, pre_det):
    paths = write_npy_shards(tmp_path / "in", [5, 6, 7])
    out = tmp_path / "out"
    score_shards(pre_det, tmp_path / "in", out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    first = read_outputs(out)
    report = score_shards(pre_det, tmp_path / "in", out)
    assert (report.written, report.skipped) == ([], ["part_0", "part_1", "part_2"])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    np.save(paths[1], np.load(paths[1])[::-1])
    report = score_shards(pre_det, tmp_path / "in", out)
    assert (report.written, report.skipped) == (["part_1"], ["part_0", "part_2"])

    report = score_shards(precomputed_detector(threshold=0.001), tmp_path / "in", out)
    assert report.written == ["part_0", "part_1", "part_2"]
    changed = read_outputs(out)["part_0.parquet"]
    assert [row["score"] for row in changed] == [row["score"] for row in first["part_0.parquet"]]
    offset = read_manifest(out / "part_0.parquet")["offset"]
    assert offset == pytest.approx(np.log(0.001 / 0.999))
    assert [row["decision"] for row in changed] == [
        1 if row["score"] - offset >= 0 else -1 for row in changed
    ]
    assert changed != first["part_0.parquet"]


class FailingHead:
    """Scores the first block, then fails, as a crash mid-shard would."""

    def __init__(self, head):
        self.head, self.dim, self.calls = head, head.dim, 0

    def log_odds(self, embeddings):
        self.calls += 1
        if self.calls > 1:
            raise OSError("disk full")
        return self.head.log_odds(embeddings)


def test_failure_mid_shard_leaves_no_output(tmp_path, pre_det):
    write_npy_shards(tmp_path / "in", [10])
    scorer = ShardScorer.from_detector(pre_det)
    broken = ShardScorer(FailingHead(scorer.head), scorer.offset, scorer.fingerprint)
    with pytest.raises(ScoringError, match="part_0: OSError: disk full"):
        score_shards(broken, tmp_path / "in", tmp_path / "out", block_rows=4)
    assert os.listdir(tmp_path / "out") == [RUN_FILE]


_CHILD = textwrap.dedent(
    """
    import dataclasses, json, sys, time
    import joblib
    from skhftt.batch import ShardScorer, score_shards

    detector_path, output_dir, hang_after, options, *inputs = sys.argv[1:]
    scorer = ShardScorer.from_detector(joblib.load(detector_path))
    if any(item.startswith("hf:") for item in inputs):
        import datasets

        inputs = [datasets.load_from_disk(item[3:]) if item.startswith("hf:") else item
                  for item in inputs]


    class HangingHead:
        # Scores normally, then hangs forever in call number hang_after + 1.
        def __init__(self, head, after):
            self.head, self.dim, self.after, self.calls = head, head.dim, after, 0

        def log_odds(self, embeddings):
            self.calls += 1
            while self.calls > self.after:
                time.sleep(1)
            return self.head.log_odds(embeddings)


    if int(hang_after) >= 0:
        scorer = dataclasses.replace(scorer, head=HangingHead(scorer.head, int(hang_after)))
    report = score_shards(scorer, inputs, output_dir, **json.loads(options))
    print(json.dumps({"written": report.written, "skipped": report.skipped}))
    """
)


def _run_child(tmp_path, detector_path, out, inputs, options, hang_after=-1):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    import json

    args = [sys.executable, str(script), str(detector_path), str(out), str(hang_after),
            json.dumps(options), *map(str, inputs)]
    if hang_after < 0:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.splitlines()[-1])
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(condition, process, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never reached the point to kill it"
        time.sleep(0.02)


def _killed_run_inputs(tmp_path, kind):
    """(detector, inputs, options, blocks per shard, rows, rows with errors) of a kind."""
    if kind == "embeddings":
        write_npy_shards(tmp_path / "in", [6, 6, 5, 6])
        return precomputed_detector(), [tmp_path / "in"], {"block_rows": 2}, 3, 23, 0
    options = {"block_rows": 2, "batch_size": 2, "shard_size": 4}
    files = write_images(tmp_path / "pics", 9)  # 12 files with 3 bad ones
    if kind == "images":
        (tmp_path / "list.txt").write_text("pics/img000.png\nnowhere.png\n")
        return hashing_detector(), [tmp_path / "pics", tmp_path / "list.txt"], options, 2, 14, 4
    names = sorted(files)
    if kind == "parquet images":
        (tmp_path / "in").mkdir()
        for index in range(3):
            chosen = {name: files[name].read_bytes() for name in names[4 * index : 4 * index + 4]}
            write_img2dataset_parquet(tmp_path / "in" / f"{index:05d}.parquet", chosen,
                                      row_group_size=3)
        return hashing_detector(), [tmp_path / "in"], options, 2, 12, 3
    datasets = pytest.importorskip("datasets")
    dataset = datasets.Dataset.from_dict({"image": [str(files[name]) for name in names]})
    dataset.cast_column("image", datasets.Image()).save_to_disk(tmp_path / "saved")
    return hashing_detector(), [f"hf:{tmp_path / 'saved'}"], options, 2, 12, 3


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
@pytest.mark.parametrize("kind", ["embeddings", "images", "parquet images", "dataset"])
def test_killed_run_resumes_to_the_same_output(tmp_path, kind):
    """SIGKILL a run while it hangs inside its second shard (after writing part of it),
    rerun, and compare every row with an uninterrupted run."""
    detector, inputs, options, blocks_per_shard, n_rows, n_errors = _killed_run_inputs(
        tmp_path, kind)
    detector_path = tmp_path / "det.joblib"
    joblib.dump(detector, detector_path)
    reference = _run_child(tmp_path, detector_path, tmp_path / "reference", inputs, options)

    out = tmp_path / "out"
    child = _run_child(tmp_path, detector_path, out, inputs, options,
                       hang_after=blocks_per_shard + 1)
    try:  # the run record, the first shard's output and the second's temporary file
        _wait_for(lambda: out.is_dir() and len(os.listdir(out)) == 3, child)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    first = reference["written"][0]
    assert sorted(p for p in os.listdir(out) if ".partial-" not in p) == [f"{first}.parquet",
                                                                         RUN_FILE]
    assert missing_outputs(out) == [f"{name}.parquet" for name in reference["written"][1:]]
    assert len(partials(out)) == 1  # the second shard, cut short
    finished_at = (out / f"{first}.parquet").stat().st_mtime_ns

    resumed = _run_child(tmp_path, detector_path, out, inputs, options)
    assert resumed["skipped"] == [first]
    assert resumed["written"] == reference["written"][1:]
    assert missing_outputs(out) == []
    assert (out / f"{first}.parquet").stat().st_mtime_ns == finished_at
    assert partials(out) == []
    expected = read_outputs(tmp_path / "reference")
    assert read_outputs(out) == expected
    rows = [row for table in expected.values() for row in table]
    assert len(rows) == n_rows
    assert sum(row["error"] is not None for row in rows) == n_errors
