"""Scoring shards on a Dask LocalCluster: same outputs, small payloads, killed workers."""

from __future__ import annotations

import dataclasses
import os
import pickle
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from _scoring_data import (
    DIM,
    hashing_detector,
    image_bytes,
    partials,
    precomputed_detector,
    read_outputs,
    write_images,
    write_img2dataset_parquet,
    write_npy_shards,
)

from skhftt import HFTTDetector
from skhftt.batch import ScoringError, ShardScorer, score_shards
from skhftt.batch.embeddings import unit_block
from skhftt.batch.record import read_run
from skhftt.embedding.encoders.hashing import HashingEncoder

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def det():
    return precomputed_detector()


def _shards(folder: Path) -> Path:
    write_npy_shards(folder, [7, 5, 6, 6, 1, 4], seed=2)
    return folder


def test_embedding_shards_on_dask_equal_in_process(tmp_path, client, det):
    inputs = _shards(tmp_path / "in")
    here = score_shards(det, inputs, tmp_path / "here", block_rows=4)
    there = score_shards(det, inputs, tmp_path / "there", block_rows=4, client=client)
    assert sorted(there.written) == here.written and there.n_rows == here.n_rows == 29
    assert read_outputs(tmp_path / "there") == read_outputs(tmp_path / "here")
    assert read_run(tmp_path / "there") == read_run(tmp_path / "here")  # recorded on Dask too
    assert read_run(tmp_path / "there")["shards"] == [f"{name}.parquet" for name in here.written]
    again = score_shards(det, inputs, tmp_path / "there", client=client)
    assert again.written == [] and sorted(again.skipped) == here.written


class UnpicklableEncoder(HashingEncoder):
    """Holds a lock: it cannot travel to a worker, so a job that needs it fails."""

    def __init__(self):
        super().__init__(dim=DIM)
        self.lock = threading.Lock()


def test_embedding_jobs_send_only_the_head(tmp_path, client):
    det = HFTTDetector(encoder=UnpicklableEncoder(), random_state=0)
    det.fit(["a dog", "a car", "a tree"], ["an apple"])
    with pytest.raises(TypeError):
        pickle.dumps(det)
    report = score_shards(det, _shards(tmp_path / "in"), tmp_path / "out", client=client)
    assert report.n_rows == 29
    payload = pickle.dumps(ShardScorer.from_detector(det).model_free())
    assert len(payload) < 4096, len(payload)  # 3 task + 10 trained columns of width 16


def test_image_shards_load_the_encoder_once_per_worker(tmp_path, client, tiny_clip_dir):
    det = HFTTDetector(encoder=str(tiny_clip_dir), device="cpu", random_state=0)
    det.fit(["a photo of a dog", "a photo of a car", "a tree"], ["an astronaut"])
    write_images(tmp_path / "pics", 9)
    options = {"shard_size": 3, "batch_size": 2}
    here = score_shards(det, tmp_path / "pics", tmp_path / "here", **options)
    there = score_shards(det, tmp_path / "pics", tmp_path / "there", client=client, **options)
    assert sorted(there.written) == here.written and len(here.written) == 4
    expected, got = read_outputs(tmp_path / "here"), read_outputs(tmp_path / "there")
    assert got.keys() == expected.keys()
    for name, rows in expected.items():
        assert [(r["id"], r["error"], r["decision"]) for r in got[name]] == [
            (r["id"], r["error"], r["decision"]) for r in rows
        ]
        np.testing.assert_allclose(
            [r["score"] or 0.0 for r in got[name]], [r["score"] or 0.0 for r in rows], rtol=1e-5
        )

    def n_loaded_models():
        from skhftt.embedding.encoders import loaded_models

        return len(loaded_models())

    per_worker = client.run(n_loaded_models)
    assert sorted(per_worker.values()) == [1, 1], per_worker


def test_image_parquet_and_datasets_on_dask_equal_in_process(tmp_path, client):
    datasets = pytest.importorskip("datasets")
    det = hashing_detector()
    files = write_images(tmp_path / "pics", 5)
    (tmp_path / "in").mkdir()
    write_img2dataset_parquet(tmp_path / "in" / "00000.parquet", image_bytes(files))
    dataset = datasets.Dataset.from_dict({"image": [str(f) for f in files.values()]})
    inputs = [tmp_path / "in", dataset.cast_column("image", datasets.Image())]
    options = {"shard_size": 4, "batch_size": 3}
    here = score_shards(det, inputs, tmp_path / "here", **options)
    there = score_shards(det, inputs, tmp_path / "there", client=client, **options)
    assert sorted(there.written) == sorted(here.written) == [
        "00000", "dataset-00000", "dataset-00001"]
    assert read_outputs(tmp_path / "there") == read_outputs(tmp_path / "here")
    assert here.n_errors == 6


class KillOnceHead:
    """Kills its own worker process when asked to score ``trigger``, the first time only.

    Before dying it records what the output folder holds, to show that the
    shard was cut short after part of it was written.
    """

    def __init__(self, head, trigger, marker, output_dir):
        self.head, self.dim = head, head.dim
        self.trigger, self.marker, self.output_dir = trigger, marker, output_dir

    def log_odds(self, embeddings):
        if np.array_equal(embeddings, self.trigger) and not os.path.exists(self.marker):
            Path(self.marker).write_text("\n".join(sorted(os.listdir(self.output_dir))))
            os.kill(os.getpid(), signal.SIGKILL)
        return self.head.log_odds(embeddings)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_killed_worker_loses_and_duplicates_nothing(tmp_path, client, det):
    inputs = _shards(tmp_path / "in")
    reference = score_shards(det, inputs, tmp_path / "reference", block_rows=2)
    scorer = ShardScorer.from_detector(det)
    second_block = unit_block(np.load(inputs / "part_0.npy")[2:4]).embeddings
    marker = tmp_path / "killed"
    out = tmp_path / "out"
    out.mkdir()
    killer = KillOnceHead(scorer.head, second_block, str(marker), str(out))
    report = score_shards(dataclasses.replace(scorer, head=killer), inputs, out, block_rows=2,
                          client=client)
    assert marker.exists(), "no worker was killed"
    assert ".part_0.parquet.partial-" in marker.read_text()
    assert sorted(report.written) == reference.written and report.n_rows == reference.n_rows
    assert partials(out) == []
    assert read_outputs(out) == read_outputs(tmp_path / "reference")


def test_failing_shard_is_retried_then_reported(tmp_path, client, det):
    inputs = _shards(tmp_path / "in")
    np.save(inputs / "part_9.npy", np.ones((2, DIM + 3), np.float32))
    with pytest.raises(ScoringError, match=r"part_9: ValueError: .*width 19") as caught:
        score_shards(det, inputs, tmp_path / "out", client=client, retries=1)
    assert len(caught.value.report.written) == 6
    assert not (tmp_path / "out" / "part_9.parquet").exists()


def test_scheduler_address_and_image_detector_checks(tmp_path, client):
    address = client.scheduler.address
    report = score_shards(precomputed_detector(), _shards(tmp_path / "in"), tmp_path / "out",
                          client=address)
    assert report.n_rows == 29
    write_images(tmp_path / "pics", 2, bad=False)
    with pytest.raises(ValueError, match="image inputs need an encoder"):
        score_shards(precomputed_detector(), tmp_path / "pics", tmp_path / "o2", client=address)
    report = score_shards(hashing_detector(), tmp_path / "pics", tmp_path / "o3", client=address)
    assert report.n_rows == 2


def test_unreachable_scheduler_is_a_clear_error(tmp_path, det):
    import dask

    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ValueError, match=r"cannot reach a Dask scheduler at 'tcp://127\.0\.0\.1:9'"),
    ):
        score_shards(det, _shards(tmp_path / "in"), tmp_path / "out", client="tcp://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"client must be a distributed\.Client or a scheduler"):
        score_shards(det, tmp_path / "in", tmp_path / "out", client=42)


def test_decoding_processes_cannot_start_inside_dask_workers(tmp_path, client):
    write_images(tmp_path / "pics", 2, bad=False)
    with pytest.raises(ScoringError, match="num_workers=1 needs child processes"):
        score_shards(hashing_detector(), tmp_path / "pics", tmp_path / "out", client=client,
                     num_workers=1, retries=0)
