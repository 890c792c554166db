"""The text-embedding cache: in process, on disk, across processes, bounded."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CountingTextEncoder
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skhftt.corpora import load_world_corpus
from skhftt.embedding import cache
from skhftt.embedding.cache import (
    clear_embedding_cache,
    encode_texts,
    get_cache_limits,
    set_cache_limits,
)


def direct(encoder: CountingTextEncoder, texts: list[str]) -> np.ndarray:
    return np.stack([encoder.vector(text, encoder.dim) for text in texts])


def shard_files(root: Path) -> list[Path]:
    return [
        path
        for path in root.glob("*/*.json")
        if path.name != "identity.json" and not path.name.startswith("tmp-")
    ]


def forget_disk_state() -> None:
    """Make this process look at a cache folder as a new process would."""
    with cache._DISK_LOCK:
        cache._DISK_SPACES.clear()


# ----------------------------------------------------------------- in process


def test_each_distinct_text_reaches_the_encoder_once(counting_encoder):
    first = encode_texts(counting_encoder, ["a", "b", "a", "c"])
    second = encode_texts(counting_encoder, ["c", "d", "b", "d"])
    assert counting_encoder.counts() == {"a": 1, "b": 1, "c": 1, "d": 1}
    np.testing.assert_array_equal(first, direct(counting_encoder, ["a", "b", "a", "c"]))
    np.testing.assert_array_equal(second, direct(counting_encoder, ["c", "d", "b", "d"]))
    assert first.dtype == np.float32 and first.shape == (4, counting_encoder.dim)


def test_texts_stream_to_the_encoder_in_batches(counting_encoder):
    texts = [f"text {i}" for i in range(1000)]
    encode_texts(counting_encoder, texts, batch_size=128)
    assert max(len(call) for call in counting_encoder.calls) == 128
    assert sum(len(call) for call in counting_encoder.calls) == 1000


def test_a_fresh_block_is_returned_without_a_copy(counting_encoder):
    texts = [f"word {i}" for i in range(50)]
    first = encode_texts(counting_encoder, texts)
    again = encode_texts(counting_encoder, texts)
    assert np.shares_memory(first, again)
    assert not again.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        again[0, 0] = 1.0
    subset = encode_texts(counting_encoder, texts[::2])
    assert subset.flags.writeable
    np.testing.assert_array_equal(subset, first[::2])


def test_encoders_with_different_identities_share_nothing():
    one, two = CountingTextEncoder(), CountingTextEncoder()
    encode_texts(one, ["x", "y"])
    encode_texts(two, ["x", "y"])
    assert one.counts() == two.counts() == {"x": 1, "y": 1}


def test_a_changed_width_under_the_same_identity_is_an_error():
    narrow, wide = CountingTextEncoder(8), CountingTextEncoder(16)
    wide.identity = narrow.identity
    encode_texts(narrow, ["x"])
    with pytest.raises(ValueError, match=r"width 8 .* now has dim 16"):
        encode_texts(wide, ["x"])
    clear_embedding_cache()


def test_memory_limit_evicts_least_recently_used_blocks(restore_cache_limits):
    encoder = CountingTextEncoder(dim=16)
    block = 100 * 16 * 4
    clear_embedding_cache()
    set_cache_limits(memory=2 * block)
    first = [f"first {i}" for i in range(100)]
    second = [f"second {i}" for i in range(100)]
    third = [f"third {i}" for i in range(100)]
    encode_texts(encoder, first)
    encode_texts(encoder, second)
    encode_texts(encoder, first)  # first is now more recent than second
    encode_texts(encoder, third)  # evicts second
    assert cache._MEMORY.nbytes <= 2 * block
    encode_texts(encoder, first + second)
    counts = encoder.counts()
    assert {counts[text] for text in first} == {1}
    assert {counts[text] for text in second} == {2}


def test_memory_limit_zero_disables_the_store(restore_cache_limits, counting_encoder):
    set_cache_limits(memory=0)
    result = encode_texts(counting_encoder, ["a", "b"])
    encode_texts(counting_encoder, ["a", "b"])
    assert counting_encoder.counts() == {"a": 2, "b": 2}
    np.testing.assert_array_equal(result, direct(counting_encoder, ["a", "b"]))


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1024, 1024), ("2GiB", 2 * 1024**3), ("500MB", 500 * 1000**2), ("1.5 kib", 1536)],
)
def test_limits_accept_bytes_and_units(restore_cache_limits, value, expected):
    set_cache_limits(disk=value)
    assert get_cache_limits()["disk"] == expected


@pytest.mark.parametrize("value", ["lots", "-5MB", "2 parsecs"])
def test_limits_reject_non_sizes(restore_cache_limits, value):
    with pytest.raises(ValueError, match="not a size"):
        set_cache_limits(memory=value)


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(cache.DISK_ENV, "3GB")
    monkeypatch.setenv(cache.MEMORY_ENV, "12345")
    assert get_cache_limits() == {"disk": 3 * 1000**3, "memory": 12345}
    monkeypatch.setenv(cache.MEMORY_ENV, "many")
    with pytest.raises(ValueError, match=cache.MEMORY_ENV):
        get_cache_limits()


def test_threads_encode_each_text_once(counting_encoder):
    texts = [f"shared {i}" for i in range(300)]
    results = {}

    def work(index: int) -> None:
        results[index] = encode_texts(counting_encoder, texts[index * 50 :] + texts)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(counting_encoder.counts().values()) == {1}
    for index, result in results.items():
        np.testing.assert_array_equal(result, direct(counting_encoder, texts[index * 50 :] + texts))


# -------------------------------------------------------------- bad arguments


def test_empty_input_gives_an_empty_matrix(counting_encoder):
    assert encode_texts(counting_encoder, []).shape == (0, counting_encoder.dim)
    assert counting_encoder.calls == []


@pytest.mark.parametrize(
    ("texts", "message"),
    [("one text", "not one str"), (["ok", 3], "item 1 is int"), ([None], "item 0")],
)
def test_bad_texts_are_rejected(counting_encoder, texts, message):
    with pytest.raises(TypeError, match=message):
        encode_texts(counting_encoder, texts)


def test_an_encoder_without_identity_is_rejected():
    class NoIdentity:
        dim = 4

        def encode_text(self, texts, *, batch_size=256, show_progress=False):
            return np.ones((len(texts), 4), np.float32)

    with pytest.raises(TypeError, match="identity"):
        encode_texts(NoIdentity(), ["a"])


def test_a_wrong_output_shape_names_the_encoder(counting_encoder):
    declared = CountingTextEncoder(dim=15)
    declared.encode_text = counting_encoder.encode_text
    with pytest.raises(ValueError, match=r"returned an array of shape \(1, 16\)"):
        encode_texts(declared, ["a"])


@pytest.mark.parametrize("batch_size", [0, -3])
def test_batch_size_must_be_positive(counting_encoder, batch_size):
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        encode_texts(counting_encoder, ["a"], batch_size=batch_size)


# -------------------------------------------------------------------- on disk


def test_disk_cache_survives_the_process(tmp_path, counting_encoder):
    texts = [f"photo {i}" for i in range(40)]
    first = encode_texts(counting_encoder, texts, cache_dir=tmp_path)
    forget_disk_state()
    clear_embedding_cache()
    again = encode_texts(counting_encoder, texts[::-1], cache_dir=tmp_path)
    assert set(counting_encoder.counts().values()) == {1}
    np.testing.assert_array_equal(again, first[::-1])
    (space,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    marker = json.loads((space / "identity.json").read_text())
    assert marker == {"identity": counting_encoder.identity, "dim": 16}
    (shard,) = shard_files(tmp_path)
    stored = np.load(shard.with_suffix(".npy"), mmap_mode="r")
    np.testing.assert_array_equal(stored, first)


def test_disk_cache_returns_a_read_only_map_of_a_whole_shard(tmp_path, counting_encoder):
    texts = [f"photo {i}" for i in range(40)]
    first = encode_texts(counting_encoder, texts, cache_dir=tmp_path)
    assert not first.flags.writeable
    assert isinstance(first.base, np.memmap) or isinstance(first.base.base, np.memmap)


def test_a_new_encoder_identity_gets_its_own_folder(tmp_path):
    one = CountingTextEncoder(tag="model@rev1")
    two = CountingTextEncoder(tag="model@rev2")
    encode_texts(one, ["x"], cache_dir=tmp_path)
    encode_texts(two, ["x"], cache_dir=tmp_path)
    assert one.counts() == two.counts() == {"x": 1}
    names = sorted(path.name for path in tmp_path.iterdir() if path.is_dir())
    assert len(names) == 2 and all("model_rev" in name for name in names)


def test_disk_width_mismatch_is_an_error(tmp_path):
    narrow, wide = CountingTextEncoder(8), CountingTextEncoder(16)
    wide.identity = narrow.identity
    encode_texts(narrow, ["x"], cache_dir=tmp_path)
    forget_disk_state()
    with pytest.raises(ValueError, match=r"width 8 .* now has dim 16"):
        encode_texts(wide, ["x"], cache_dir=tmp_path)


def test_disk_limit_deletes_least_recently_used_shards(
    tmp_path, counting_encoder, restore_cache_limits
):
    groups = [[f"group {g} text {i}" for i in range(100)] for g in range(4)]
    shard_bytes = 100 * 16 * 4 + 128 + len(json.dumps(groups[0]))
    set_cache_limits(disk=int(2.5 * shard_bytes))
    encode_texts(counting_encoder, groups[0], cache_dir=tmp_path)
    time.sleep(0.02)
    encode_texts(counting_encoder, groups[1], cache_dir=tmp_path)
    time.sleep(0.02)
    encode_texts(counting_encoder, groups[0], cache_dir=tmp_path)  # touch group 0
    time.sleep(0.02)
    encode_texts(counting_encoder, groups[2], cache_dir=tmp_path)  # evicts group 1
    sizes = sum(
        path.stat().st_size + path.with_suffix(".npy").stat().st_size
        for path in shard_files(tmp_path)
    )
    assert sizes <= 2.5 * shard_bytes
    forget_disk_state()
    encode_texts(counting_encoder, groups[0] + groups[1], cache_dir=tmp_path)
    counts = counting_encoder.counts()
    assert {counts[text] for text in groups[0]} == {1}
    assert {counts[text] for text in groups[1]} == {2}


def test_a_batch_larger_than_the_disk_limit_stays_in_memory(
    tmp_path, counting_encoder, restore_cache_limits
):
    set_cache_limits(disk=100)
    texts = [f"big {i}" for i in range(20)]
    result = encode_texts(counting_encoder, texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(result, direct(counting_encoder, texts))
    assert shard_files(tmp_path) == []
    assert not list(tmp_path.glob("*/tmp-*"))


def test_many_small_shards_are_compacted(tmp_path, counting_encoder):
    for index in range(cache._MAX_SHARDS + 6):
        encode_texts(counting_encoder, [f"single {index}"], cache_dir=tmp_path)
    assert len(shard_files(tmp_path)) <= cache._MAX_SHARDS
    forget_disk_state()
    texts = [f"single {index}" for index in range(cache._MAX_SHARDS + 6)]
    result = encode_texts(counting_encoder, texts, cache_dir=tmp_path)
    assert set(counting_encoder.counts().values()) == {1}
    np.testing.assert_array_equal(result, direct(counting_encoder, texts))


def test_an_unreadable_shard_is_skipped_and_reencoded(tmp_path, counting_encoder):
    encode_texts(counting_encoder, ["a", "b"], cache_dir=tmp_path)
    (shard,) = shard_files(tmp_path)
    shard.with_suffix(".npy").write_bytes(b"not an array")
    forget_disk_state()
    with pytest.warns(RuntimeWarning, match="unreadable cache shard"):
        result = encode_texts(counting_encoder, ["a", "b"], cache_dir=tmp_path)
    np.testing.assert_array_equal(result, direct(counting_encoder, ["a", "b"]))
    assert counting_encoder.counts() == {"a": 2, "b": 2}


def test_stale_temporary_files_are_removed(tmp_path, counting_encoder):
    encode_texts(counting_encoder, ["a"], cache_dir=tmp_path)
    (space,) = [path for path in tmp_path.iterdir() if path.is_dir()]
    stale = space / "tmp-crashed.npy"
    stale.write_bytes(b"partial")
    fresh = space / "tmp-in-flight.npy"
    fresh.write_bytes(b"partial")
    old = time.time() - 2 * cache._STALE_SECONDS
    os.utime(stale, (old, old))
    encode_texts(counting_encoder, ["b"], cache_dir=tmp_path)
    assert not stale.exists() and fresh.exists()


def test_clear_cache_deletes_a_cache_folder(tmp_path, counting_encoder):
    (tmp_path / "mine.txt").write_text("kept")
    encode_texts(counting_encoder, ["a"], cache_dir=tmp_path)
    clear_embedding_cache(tmp_path)
    assert shard_files(tmp_path) == [] and (tmp_path / "mine.txt").exists()
    encode_texts(counting_encoder, ["a"], cache_dir=tmp_path)
    assert counting_encoder.counts() == {"a": 2}


def test_cache_dir_expands_the_home_folder(tmp_path, monkeypatch, counting_encoder):
    monkeypatch.setenv("HOME", str(tmp_path))
    encode_texts(counting_encoder, ["a"], cache_dir="~/embeddings")
    assert len(shard_files(tmp_path / "embeddings")) == 1
    clear_embedding_cache("~/embeddings")
    assert shard_files(tmp_path / "embeddings") == []


def test_cache_dir_must_be_a_directory(tmp_path, counting_encoder):
    path = tmp_path / "a-file"
    path.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        encode_texts(counting_encoder, ["a"], cache_dir=path)


def _encode_in_child(args: tuple[str, str, str, list[str], str]) -> None:
    log_dir, tag, cache_dir, texts, out = args
    encoder = CountingTextEncoder(log_dir=log_dir, tag=tag, delay=0.02)
    np.save(out, encode_texts(encoder, texts, batch_size=16, cache_dir=cache_dir))


def test_concurrent_processes_encode_each_text_once(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    texts = [f"concurrent {i}" for i in range(120)]
    jobs = [
        (str(log_dir), "shared", str(tmp_path / "cache"), texts[i * 20 :] + texts[:10],
         str(tmp_path / f"out{i}.npy"))
        for i in range(3)
    ]  # fmt: skip
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        pool.map(_encode_in_child, jobs)
    encoder = CountingTextEncoder(log_dir=log_dir, tag="shared")
    assert set(encoder.counts()) == set(texts)
    assert set(encoder.counts().values()) == {1}
    for _, _, _, job_texts, out in jobs:
        np.testing.assert_array_equal(np.load(out), direct(encoder, job_texts))


# --------------------------------------------------------------- grid search


def _grid_data() -> tuple[list[str], np.ndarray]:
    task = [f"a photo of a {animal}" for animal in (
        "cat", "dog", "horse", "cow", "sheep", "goat", "pig", "duck", "goose",
        "hen", "rabbit", "mouse",
    )]  # fmt: skip
    world = load_world_corpus(240)
    texts = task + world
    return texts, np.r_[np.ones(len(task), int), np.zeros(len(world), int)]


def _grid_search(encoder: CountingTextEncoder, n_jobs: int, cache_dir) -> GridSearchCV:
    from skhftt.detectors.hftt import HFTTDetector

    detector = HFTTDetector(encoder=encoder, cache_dir=cache_dir, random_state=0)
    grid = {
        "n_embeddings": [2, 5],
        "temperature": [0.01, 0.05],
        "gamma": [0.0, 1.0],
    }
    search = GridSearchCV(
        detector,
        grid,
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
        n_jobs=n_jobs,
        error_score="raise",
    )
    texts, y = _grid_data()
    return search.fit(texts, y)


def test_grid_search_in_process_encodes_each_text_once(counting_encoder):
    search = _grid_search(counting_encoder, n_jobs=1, cache_dir=None)
    assert len(search.cv_results_["params"]) == 8
    counts = counting_encoder.counts()
    texts, _ = _grid_data()
    assert set(counts) == set(texts)
    assert set(counts.values()) == {1}


def test_grid_search_in_two_processes_encodes_each_text_once(tmp_path):
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    encoder = CountingTextEncoder(log_dir=log_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        search = _grid_search(encoder, n_jobs=2, cache_dir=tmp_path / "cache")
    assert len(search.cv_results_["params"]) == 8
    counts = encoder.counts()
    texts, _ = _grid_data()
    assert set(counts) == set(texts)
    assert set(counts.values()) == {1}
    pids = {path.name.split("-")[0] for path in log_dir.glob("*.json")}
    assert len(pids) >= 1
