"""select_rows: scores joined back to their rows, streamed, atomic, resumable."""

from __future__ import annotations

import copy
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scoring_data import (
    DIM,
    hashing_detector,
    partials,
    precomputed_detector,
    write_embedding_parquet,
    write_images,
    write_npy_shards,
)
from _synthetic import unit

from skhftt import HFTTDetector
from skhftt.batch import read_manifest, score_shards, select_rows, selection
from skhftt.detectors.composite import Concept, MultiConceptDetector


@pytest.fixture(scope="module")
def det():
    return precomputed_detector()


def _laion(root, sizes, *, row_group_size=3):
    write_npy_shards(root / "img_emb", sizes)
    (root / "metadata").mkdir()
    for index, size in enumerate(sizes):
        (root / "img_emb" / f"part_{index}.npy").rename(root / "img_emb" / f"img_emb_{index}.npy")
        pq.write_table(pa.table({
            "key": [f"{index}-{row}" for row in range(size)],
            "caption": [f"caption {index}-{row}" for row in range(size)],
            "similarity": np.linspace(0, 1, size),
        }), root / "metadata" / f"metadata_{index}.parquet", row_group_size=row_group_size)


def _rows(path):
    return pq.read_table(path).to_pylist()


def test_keep_and_remove_split_the_scored_rows(tmp_path, det):
    _laion(tmp_path / "laion", [11, 7])
    score_shards(det, tmp_path / "laion", tmp_path / "scores", block_rows=4)
    kept = select_rows(tmp_path / "scores", tmp_path / "kept", batch_rows=4)
    removed = select_rows(tmp_path / "scores", tmp_path / "removed", keep=False,
                          columns=["key"], batch_rows=5)
    assert kept.n_rows == removed.n_rows == 18
    assert kept.n_selected + removed.n_selected == 18 and 0 < kept.n_selected < 18
    for name in ("img_emb_0", "img_emb_1"):
        scores = _rows(tmp_path / "scores" / f"{name}.parquet")
        metadata = _rows(tmp_path / "laion" / "metadata" / f"metadata_{name[-1]}.parquet")
        wanted = [{**meta, "score": row["score"], "decision": 1}
                  for meta, row in zip(metadata, scores, strict=True) if row["decision"] == 1]
        assert _rows(tmp_path / "kept" / f"{name}.parquet") == wanted
        unwanted = [{"key": meta["key"], "score": row["score"], "decision": -1}
                    for meta, row in zip(metadata, scores, strict=True) if row["decision"] == -1]
        assert _rows(tmp_path / "removed" / f"{name}.parquet") == unwanted
    assert read_manifest(tmp_path / "kept" / "img_emb_0.parquet") is None  # not a score file


def test_a_remove_job_and_a_threshold_on_oriented_scores(tmp_path, det):
    _laion(tmp_path / "laion", [20])
    remove_job = copy.deepcopy(det).set_params(unwanted="match")
    score_shards(remove_job, tmp_path / "laion", tmp_path / "scores")
    scores = np.array([row["score"] for row in _rows(tmp_path / "scores" / "img_emb_0.parquet")])
    match = select_rows(tmp_path / "scores", tmp_path / "match", keep=False)
    assert match.n_selected == int((scores - det.offset_ >= 0).sum())
    cut = float(np.sort(scores)[15])  # oriented = score: remove the 4 highest
    top = select_rows(tmp_path / "scores", tmp_path / "top", keep=False, unwanted="match",
                      threshold=cut, columns=["key"])
    removed = [row["key"] for row in _rows(tmp_path / "top" / "img_emb_0.parquet")]
    assert top.n_selected == 4 and removed == [f"0-{i}" for i in range(20) if scores[i] > cut]
    with pytest.raises(ValueError, match="unwanted='mismatch' contradicts the job recorded"):
        select_rows(tmp_path / "scores", tmp_path / "low", keep=False, unwanted="mismatch")


def test_a_keep_job_removes_below_its_threshold(tmp_path, det):
    _laion(tmp_path / "laion", [20])
    score_shards(det, tmp_path / "laion", tmp_path / "scores")
    scores = np.array([row["score"] for row in _rows(tmp_path / "scores" / "img_emb_0.parquet")])
    cut = float(np.sort(scores)[15])
    low = select_rows(tmp_path / "scores", tmp_path / "low", keep=False, threshold=-cut)
    assert low.n_selected == int((scores < cut).sum())


def test_rows_with_errors_are_in_neither(tmp_path, det):
    good = unit(np.random.default_rng(0).normal(size=(6, DIM)))
    embeddings = [list(map(float, row)) for row in good]
    embeddings[2] = None
    write_embedding_parquet(tmp_path / "e.parquet", embeddings, ids=[f"k{i}" for i in range(6)])
    score_shards(det, tmp_path / "e.parquet", tmp_path / "scores")
    kept = select_rows(tmp_path / "scores", tmp_path / "kept", columns=["id"])
    removed = select_rows(tmp_path / "scores", tmp_path / "removed", keep=False, columns=["id"])
    assert kept.n_errors == removed.n_errors == 1
    ids = {row["id"] for row in _rows(tmp_path / "kept" / "e.parquet")} | {
        row["id"] for row in _rows(tmp_path / "removed" / "e.parquet")}
    assert ids == {"k0", "k1", "k3", "k4", "k5"}


def test_concept_outputs_use_their_remove_column(tmp_path):
    rng = np.random.default_rng(2)
    world = unit(rng.normal(size=(300, DIM)))
    first = HFTTDetector(encoder="precomputed", random_state=0).fit(world, world[:3])
    second = HFTTDetector(encoder="precomputed", unwanted="match", random_state=0).fit(
        world, world[3:6])
    concepts = MultiConceptDetector({"ood": Concept(first), "harm": Concept(second)})
    _laion(tmp_path / "laion", [9])
    score_shards(concepts, tmp_path / "laion", tmp_path / "scores")
    scores = _rows(tmp_path / "scores" / "img_emb_0.parquet")
    report = select_rows(tmp_path / "scores", tmp_path / "removed", keep=False, columns=["key"])
    rows = _rows(tmp_path / "removed" / "img_emb_0.parquet")
    assert [row["key"] for row in rows] == [f"0-{i}" for i, r in enumerate(scores) if r["remove"]]
    assert report.n_selected == len(rows) and set(rows[0]) == {
        "key", "ood_score", "ood_decision", "harm_score", "harm_decision", "remove", "triggered"}
    with pytest.raises(ValueError, match="threshold applies to scores of one detector"):
        select_rows(tmp_path / "scores", tmp_path / "t", threshold=0.0)


def test_rerun_skips_done_shards_and_redoes_changed_options(tmp_path, det):
    _laion(tmp_path / "laion", [5, 4])
    score_shards(det, tmp_path / "laion", tmp_path / "scores")
    first = select_rows(tmp_path / "scores", tmp_path / "kept")
    stamp = (tmp_path / "kept" / "img_emb_0.parquet").stat().st_mtime_ns
    again = select_rows(tmp_path / "scores", tmp_path / "kept")
    assert (again.written, again.skipped) == ([], first.written)
    assert (tmp_path / "kept" / "img_emb_0.parquet").stat().st_mtime_ns == stamp
    other = select_rows(tmp_path / "scores", tmp_path / "kept", columns=["key"])
    assert other.written == first.written
    assert pq.read_table(tmp_path / "kept" / "img_emb_0.parquet").column_names == [
        "key", "score", "decision"]
    assert partials(tmp_path / "kept") == []


def test_a_failure_leaves_no_partial_selection(tmp_path, det, monkeypatch):
    _laion(tmp_path / "laion", [12])
    score_shards(det, tmp_path / "laion", tmp_path / "scores")
    original = selection._Join.removed
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(*args, **kwargs)

    monkeypatch.setattr(selection._Join, "removed", failing)
    with pytest.raises(OSError, match="disk full"):
        select_rows(tmp_path / "scores", tmp_path / "kept", batch_rows=4)
    assert os.listdir(tmp_path / "kept") == []


def test_what_cannot_be_joined_is_a_clear_error(tmp_path, det):
    write_images(tmp_path / "pics", 2, bad=False)
    score_shards(hashing_detector(), tmp_path / "pics", tmp_path / "image_scores")
    with pytest.raises(ValueError, match="scores a images shard, whose rows have no parquet file"):
        select_rows(tmp_path / "image_scores", tmp_path / "out")
    _laion(tmp_path / "laion", [4])
    score_shards(det, tmp_path / "laion", tmp_path / "scores")
    with pytest.raises(ValueError, match=r"has no column\(s\) \['url'\]"):
        select_rows(tmp_path / "scores", tmp_path / "out", columns=["url"])
    with pytest.raises(TypeError, match=r"not a single string: \['key'\]"):
        select_rows(tmp_path / "scores", tmp_path / "out", columns="key")
    with pytest.raises(ValueError, match="unwanted must be 'match', 'mismatch' or None"):
        select_rows(tmp_path / "scores", tmp_path / "out", unwanted="both")
    pq.write_table(pa.table({"key": ["a"] * 5}), tmp_path / "laion" / "metadata" /
                   "metadata_0.parquet")
    with pytest.raises(ValueError, match=r"holds 5 rows but .* scores 4; it changed since"):
        select_rows(tmp_path / "scores", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"scores .*nowhere.* not found"):
        select_rows(tmp_path / "nowhere", tmp_path / "out")


def test_metadata_is_streamed_in_batches(tmp_path, det, monkeypatch):
    _laion(tmp_path / "laion", [40], row_group_size=7)
    score_shards(det, tmp_path / "laion", tmp_path / "scores")
    sizes = []
    original = pq.ParquetFile.iter_batches

    def iter_batches(self, *args, **kwargs):
        for batch in original(self, *args, **kwargs):
            sizes.append(len(batch))
            yield batch

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    report = select_rows(tmp_path / "scores", tmp_path / "kept", batch_rows=8)
    assert report.n_rows == 40 and max(sizes) <= 8 and sum(sizes) == 80  # both files, once


def test_an_incomplete_run_is_refused_unless_allowed(tmp_path, det):
    _laion(tmp_path / "laion", [5, 4])
    score_shards(det, tmp_path / "laion", tmp_path / "scores")
    (tmp_path / "scores" / "img_emb_1.parquet").unlink()  # as a killed run leaves it
    with pytest.raises(ValueError, match=r"scores '.*scores' is incomplete: 1 of the 2 "
                                         r"shard\(s\) .*\(img_emb_1\.parquet\).*score_shards "
                                         r"again.*allow_incomplete=True"):
        select_rows(tmp_path / "scores", tmp_path / "kept")
    assert not (tmp_path / "kept").exists()
    with pytest.warns(UserWarning, match=r"1 of the 2 shard\(s\)"):
        report = select_rows(tmp_path / "scores", tmp_path / "kept", allow_incomplete=True)
    assert (report.written, report.n_rows) == (["img_emb_0"], 5)
