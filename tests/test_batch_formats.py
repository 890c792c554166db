"""Encoded images in parquet files (img2dataset, Hugging Face) and ``datasets.Dataset`` objects."""

from __future__ import annotations

import os
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scoring_data import (
    BAD_IMAGES,
    DIM,
    hashing_detector,
    image_bytes,
    precomputed_detector,
    read_outputs,
    write_embedding_parquet,
    write_hf_parquet,
    write_images,
    write_img2dataset_parquet,
)

from skhftt.batch import ScoringError, discover_shards, score_shards
from skhftt.batch.images import ArrowImages, ParquetChunks, image_source
from skhftt.testing import write_sample_images

UNREADABLE = "Pillow recognises no image format in it, or it is corrupt."


@pytest.fixture(scope="module")
def det():
    return hashing_detector()


def _rows(folder, name):
    return pq.read_table(folder / f"{name}.parquet").to_pylist()


def _check_scores(rows, det, files):
    """Scored rows equal the detector's own scores of the files they were made from."""
    scores = [row["score"] for row in rows]
    np.testing.assert_allclose(scores, det.score_samples([str(f) for f in files]), rtol=1e-5,
                               atol=1e-4)
    assert [row["decision"] for row in rows] == det.predict([str(f) for f in files]).tolist()


# -------------------------------------------------------------- img2dataset


def test_img2dataset_parquet_scores_every_row_with_its_key(tmp_path, det):
    files = write_images(tmp_path / "pics", 5)
    images = image_bytes(files)
    keys = write_img2dataset_parquet(tmp_path / "00000.parquet", images)
    [shard] = discover_shards(tmp_path / "00000.parquet")
    assert (shard.kind, shard.image_column, shard.has_embeddings) == ("parquet", "jpg", False)
    report = score_shards(det, tmp_path / "00000.parquet", tmp_path / "out", batch_size=4)
    rows = _rows(tmp_path / "out", "00000")
    assert [row["id"] for row in rows] == keys and report.n_rows == len(images)
    names = list(images)
    errors = {names[row["row"]]: row["error"] for row in rows if row["error"]}
    assert set(errors) == set(BAD_IMAGES) and report.n_errors == 3
    position = names.index("corrupt.png")
    assert errors["corrupt.png"] == (
        f"ValueError: row {position} of {str(tmp_path / '00000.parquet')!r} is not a readable "
        f"image: {UNREADABLE}"
    )
    assert "truncated" in errors["truncated.jpg"]
    good = [i for i, name in enumerate(names) if name not in BAD_IMAGES]
    _check_scores([rows[i] for i in good], det, [files[names[i]] for i in good])


def test_null_images_and_decoding_workers(tmp_path, det):
    files = write_images(tmp_path / "pics", 4, bad=False)
    images = {**image_bytes(files), "missing": None}
    write_img2dataset_parquet(tmp_path / "s.parquet", images, row_group_size=2)
    score_shards(det, tmp_path / "s.parquet", tmp_path / "out", batch_size=2, num_workers=2)
    rows = _rows(tmp_path / "out", "s")
    assert rows[-1]["error"] == (
        f"ValueError: row 4 of {str(tmp_path / 's.parquet')!r} has no image (null)"
    )
    _check_scores(rows[:-1], det, list(files.values()))


def test_image_parquet_needs_an_encoder_before_anything_is_written(tmp_path):
    files = write_images(tmp_path / "pics", 1, bad=False)
    write_img2dataset_parquet(tmp_path / "s.parquet", image_bytes(files))
    with pytest.raises(ValueError, match="image inputs need an encoder"):
        score_shards(precomputed_detector(), tmp_path / "s.parquet", tmp_path / "out")
    assert os.listdir(tmp_path / "out") == []


# ------------------------------------------------------------ Hugging Face


def test_hf_parquet_image_struct_bytes_or_path(tmp_path, det):
    files = write_images(tmp_path / "pics", 3)
    data = image_bytes(files)
    images = [
        (data["img000.png"], "img000.png"),
        (None, str(files["img001.png"])),  # not embedded: read from its path
        (data["corrupt.png"], "corrupt.png"),
        (data["sub/img002.jpg"], None),
        (None, None),
        None,
    ]
    write_hf_parquet(tmp_path / "train-00000-of-00001.parquet", images, row_group_size=4)
    [shard] = discover_shards(tmp_path / "train-00000-of-00001.parquet")
    assert shard.image_column == "image"
    score_shards(det, shard.path, tmp_path / "out")
    rows = _rows(tmp_path / "out", "train-00000-of-00001")
    assert [row["id"] for row in rows] == [
        "img000.png", str(files["img001.png"]), "corrupt.png", None, None, None]
    label = repr(str(tmp_path / "train-00000-of-00001.parquet"))
    assert [row["error"] for row in rows[2:]] == [
        f"ValueError: row 2 of {label} is not a readable image: {UNREADABLE}",
        None,
        f"ValueError: row 4 of {label} has no image (null)",
        f"ValueError: row 5 of {label} has no image (null)",
    ]
    _check_scores([rows[0], rows[1], rows[3]], det,
                  [files["img000.png"], files["img001.png"], files["sub/img002.jpg"]])


def test_parquet_content_is_detected_from_its_columns(tmp_path):
    kind = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    both = pa.table({"embedding": pa.array([[1.0] * DIM], pa.list_(pa.float32())),
                     "jpg": pa.array([b"x"], pa.binary())})
    pq.write_table(both, tmp_path / "both.parquet")
    pq.write_table(pa.table({"png": pa.array([b"x"]), "thumb": pa.array([b"y"])}),
                   tmp_path / "two.parquet")
    pq.write_table(pa.table({"a": pa.array([b"x"]), "b": pa.array([b"y"])}),
                   tmp_path / "unnamed.pq")
    pq.write_table(pa.table({"picture": pa.array([{"bytes": b"x", "path": None}], kind)}),
                   tmp_path / "struct.parquet")
    found = {s.name: s for s in discover_shards(tmp_path, kind="parquet")}
    assert found["both"].has_embeddings and found["both"].image_column is None
    assert found["two"].image_column == "png"  # a usual name wins over another binary column
    assert found["struct"].image_column == "picture"
    [forced] = discover_shards(tmp_path / "both.parquet", image_column="jpg")
    assert forced.image_column == "jpg" and not forced.has_embeddings
    # A shard that cannot be read carries why, and fails alone when it is scored.
    [unnamed] = discover_shards(tmp_path / "unnamed.pq", kind="parquet")
    assert re.search(r"several \(a, b\) columns of encoded images; name the image column "
                     r"\(image_column=, --image-column\)", unnamed.error)
    [unnamed] = discover_shards(tmp_path / "unnamed.pq", kind="parquet", image_column="c")
    assert "has no image column 'c' holding encoded images" in unnamed.error


def test_a_table_of_neither_is_a_clear_shard_error(tmp_path):
    pq.write_table(pa.table({"caption": ["a dog"]}), tmp_path / "captions.parquet")
    with pytest.raises(ScoringError, match=r"holds neither embeddings \(a column of float "
                                           r"lists\) nor encoded images"):
        score_shards(precomputed_detector(), tmp_path / "captions.parquet", tmp_path / "out")


# ----------------------------------------------------------- bounded memory


def test_image_parquet_is_read_one_row_group_at_a_time(tmp_path, det, monkeypatch):
    """Reads go row group by row group, each once; a few row groups are held at a time."""
    rng = np.random.default_rng(0)
    from PIL import Image

    images = {}
    for index in range(120):  # incompressible pixels: ~12 KB of PNG each
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
            tmp_path / "x.png")
        images[f"{index}.png"] = (tmp_path / "x.png").read_bytes()
    write_img2dataset_parquet(tmp_path / "big.parquet", images, row_group_size=4)
    total = sum(map(len, images.values()))
    reads, held, peaks, released = [], [], [], [0]
    original_read, original_release = ParquetChunks.read, ArrowImages.release

    def read(self, index, columns):
        reads.append(index)
        held.append(sum(self.starts[group + 1] > released[0] for group in reads))
        peaks.append(pa.total_allocated_bytes())
        return original_read(self, index, columns)

    def release(self, stop):
        released[0] = max(released[0], stop)
        original_release(self, stop)

    monkeypatch.setattr(ParquetChunks, "read", read)
    monkeypatch.setattr(ArrowImages, "release", release)
    report = score_shards(det, tmp_path / "big.parquet", tmp_path / "out", batch_size=5)
    assert report.n_rows == 120 and report.n_errors == 0
    assert sorted(reads) == list(range(30))  # decoding threads may ask in another order
    # Rows of two batches of 5 (the one encoded, the next decoded) span at most 4 groups of 4.
    assert max(held) <= 4, held
    # Arrow's reader keeps buffers of its own beside them (seen: 1 to 3 groups' worth,
    # varying from run to run), yet far from the file's 30 groups.
    assert max(peaks) < 15 * total / 30, (max(peaks), total / 30)


def test_embedding_parquet_is_read_in_blocks(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(40, DIM))
    write_embedding_parquet(tmp_path / "e.parquet", [list(map(float, r)) for r in rows])
    sizes = []
    original = pq.ParquetFile.iter_batches

    def iter_batches(self, *args, **kwargs):
        for batch in original(self, *args, **kwargs):
            sizes.append(len(batch))
            yield batch

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
        score_shards(precomputed_detector(), tmp_path / "e.parquet", tmp_path / "out",
                     block_rows=8)
    assert max(sizes) <= 8 and sum(sizes) == 40


# ------------------------------------------------------------------ datasets


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path_factory.mktemp("sample")
    files = [str(path) for path in write_sample_images(folder)]
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not a jpeg")
    paths = [*files[:3], str(corrupt), *files[3:]]
    dataset = datasets.Dataset.from_dict(
        {"image": paths, "label": list(range(len(paths)))}
    ).cast_column("image", datasets.Image())
    return dataset, paths


def test_dataset_is_scored_in_shards_without_decoding_it(tmp_path, det, image_dataset,
                                                         monkeypatch):
    dataset, paths = image_dataset
    monkeypatch.setattr(type(dataset), "__getitem__", _forbidden)
    monkeypatch.setattr(type(dataset), "__iter__", _forbidden)
    shards = discover_shards(dataset, shard_size=4)
    assert [(s.kind, s.name, s.span, s.image_column) for s in shards] == [
        ("dataset", "dataset-00000", (0, 4), "image"),
        ("dataset", "dataset-00001", (4, 4), "image"),
        ("dataset", "dataset-00002", (8, 1), "image"),
    ]
    monkeypatch.undo()
    report = score_shards(det, dataset, tmp_path / "out", shard_size=4, batch_size=3)
    assert report.written == ["dataset-00000", "dataset-00001", "dataset-00002"]
    rows = [row for name in report.written for row in _rows(tmp_path / "out", name)]
    assert [row["id"] for row in rows] == paths
    assert rows[3]["error"].startswith(
        f"ValueError: row 3 of 'dataset' (image file {paths[3]!r}) is not a readable image")
    good = [i for i in range(len(paths)) if i != 3]
    _check_scores([rows[i] for i in good], det, [paths[i] for i in good])
    again = score_shards(det, dataset, tmp_path / "out", shard_size=4)
    assert again.skipped == report.written and again.written == []
    changed = score_shards(det, dataset.select(range(1, len(paths))), tmp_path / "out",
                           shard_size=4)
    assert changed.written == report.written[:2]  # another dataset: every shard again


def _forbidden(*args, **kwargs):
    raise AssertionError("the dataset's rows were decoded by datasets")


def test_dataset_with_embedded_bytes_through_workers(tmp_path, det, image_dataset):
    datasets = pytest.importorskip("datasets")
    _, paths = image_dataset
    embedded = datasets.Dataset.from_dict(
        {"image": [{"bytes": open(p, "rb").read(), "path": None} for p in paths],
         "key": [f"k{i}" for i in range(len(paths))]},
        features=datasets.Features({"image": datasets.Image(), "key": datasets.Value("string")}),
    )
    report = score_shards(det, embedded, tmp_path / "out", num_workers=2, batch_size=2)
    rows = _rows(tmp_path / "out", "dataset-00000")
    assert [row["id"] for row in rows] == [f"k{i}" for i in range(len(paths))]
    assert report.n_errors == 1 and rows[3]["error"].endswith(UNREADABLE)
    good = [i for i in range(len(paths)) if i != 3]
    _check_scores([rows[i] for i in good], det, [paths[i] for i in good])


def test_dataset_of_embeddings_needs_no_encoder(tmp_path):
    datasets = pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(7, DIM)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    dataset = datasets.Dataset.from_dict(
        {"embedding": embeddings.tolist(), "id": [f"e{i}" for i in range(7)]})
    dataset.info.dataset_name = "my/embeddings"
    pre = precomputed_detector()
    report = score_shards(pre, dataset, tmp_path / "out", block_rows=3)
    assert report.written == ["my_embeddings-00000"]
    rows = read_outputs(tmp_path / "out")["my_embeddings-00000.parquet"]
    assert [row["id"] for row in rows] == [f"e{i}" for i in range(7)]
    np.testing.assert_allclose([row["score"] for row in rows], pre.score_samples(embeddings),
                               rtol=1e-5)


def test_other_datasets_are_refused_clearly(tmp_path, image_dataset):
    datasets = pytest.importorskip("datasets")
    dataset, _ = image_dataset
    splits = datasets.DatasetDict({"train": dataset, "test": dataset})
    with pytest.raises(TypeError, match=r"DatasetDict holds several splits \(train, test\); "
                                        r"pass one of them"):
        discover_shards(splits)
    with pytest.raises(TypeError, match="a streaming IterableDataset cannot be split"):
        score_shards(hashing_detector(), [dataset.to_iterable_dataset()], tmp_path / "out")
    with pytest.raises(ValueError, match="dataset 'dataset' has no rows"):
        discover_shards(dataset.select([]))


def test_image_source_of_a_dataset_reads_slices(image_dataset):
    dataset, paths = image_dataset
    [shard] = discover_shards(dataset, shard_size=100)
    source = image_source(shard)
    assert len(source) == len(paths)
    assert [source.item_id(i) for i in range(len(paths))] == paths
    assert source.load(0).mode == "RGB"
