"""The text-embedding cache: in process, on disk, across processes, bounded."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CountingTextEncoder
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skhftt.corpora import load_world_corpus
from skhftt.embedding import cache
from skhftt.embedding.cache import (
    CACHE_DIR_ENV,
    cache_info,
    clear_embedding_cache,
    default_cache_dir,
    encode_texts,
    get_cache_limits,
    known_encoder,
    reset_cache_limits,
    set_cache_limits,
)
from skhftt.embedding.inputs import Texts


def direct(encoder: CountingTextEncoder, texts: list[str]) -> np.ndarray:
    return np.stack([encoder.vector(text, encoder.dim) for text in texts])


def disk_texts(root: Path) -> int:
    """How many texts the cache folder ``root`` holds."""
    return cache_info(root)["disk"]["texts"]


class StableEncoder(CountingTextEncoder):
    """A counting encoder whose identity pins its embeddings (persistable)."""

    stable_identity = True


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


def test_results_are_the_callers_to_modify(counting_encoder):
    first = encode_texts(counting_encoder, ["a", "b"])
    first[:] = 0.0
    again = encode_texts(counting_encoder, ["a", "b"])
    np.testing.assert_array_equal(again, direct(counting_encoder, ["a", "b"]))
    assert counting_encoder.counts() == {"a": 1, "b": 1}


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
    encoder = CountingTextEncoder(dim=1024)
    block = 100 * 1024 * 4
    clear_embedding_cache()
    set_cache_limits(memory=int(2.5 * block))
    first = [f"first {i}" for i in range(100)]
    second = [f"second {i}" for i in range(100)]
    third = [f"third {i}" for i in range(100)]
    encode_texts(encoder, first)
    encode_texts(encoder, second)
    encode_texts(encoder, first)  # first is now more recent than second
    encode_texts(encoder, third)  # evicts second
    assert cache_info(False)["memory"]["bytes"] <= 2.5 * block
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


def test_reset_limits_gives_the_environment_back(restore_cache_limits, monkeypatch):
    monkeypatch.setenv(cache.MEMORY_ENV, "12345")
    set_cache_limits(memory="1GiB")
    assert get_cache_limits()["memory"] == 1024**3
    reset_cache_limits()
    assert get_cache_limits()["memory"] == 12345
    monkeypatch.delenv(cache.MEMORY_ENV)
    assert get_cache_limits() == {
        "memory": cache.DEFAULT_MEMORY_BYTES, "disk": cache.DEFAULT_DISK_BYTES
    }


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
    [("one text", "not a single string"), (["ok", 3], "item 1 is int"), ([None], "item 0")],
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
    clear_embedding_cache(False)
    again = encode_texts(counting_encoder, texts[::-1], cache_dir=tmp_path)
    assert set(counting_encoder.counts().values()) == {1}
    np.testing.assert_array_equal(again, first[::-1])
    assert (tmp_path / cache.FILE_NAME).is_file() and disk_texts(tmp_path) == 40


def test_identities_share_one_file_and_nothing_else(tmp_path):
    one = CountingTextEncoder(tag="model@rev1")
    two = CountingTextEncoder(tag="model@rev2")
    encode_texts(one, ["x"], cache_dir=tmp_path)
    encode_texts(two, ["x"], cache_dir=tmp_path)
    assert one.counts() == two.counts() == {"x": 1}
    assert cache_info(tmp_path)["disk"]["encoders"] == 2


def test_disk_width_mismatch_is_an_error(tmp_path):
    narrow, wide = CountingTextEncoder(8), CountingTextEncoder(16)
    wide.identity = narrow.identity
    encode_texts(narrow, ["x"], cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"embeddings.sqlite.* width 8 .* now has dim 16"):
        encode_texts(wide, ["x"], cache_dir=tmp_path)


def test_disk_limit_deletes_least_recently_used_blocks(
    tmp_path, counting_encoder, restore_cache_limits, monkeypatch
):
    encoder = CountingTextEncoder(dim=1024)
    groups = [[f"group {g} text {i}" for i in range(100)] for g in range(4)]
    block = 100 * 1024 * 4
    set_cache_limits(disk=int(2.5 * block))
    clock = iter(range(0, 10**6, 10_000))  # each call an hour or more after the last
    monkeypatch.setattr(cache.time, "time", lambda: float(next(clock)))
    encode_texts(encoder, groups[0], cache_dir=tmp_path)
    encode_texts(encoder, groups[1], cache_dir=tmp_path)
    encode_texts(encoder, groups[0], cache_dir=tmp_path)  # touch group 0
    encode_texts(encoder, groups[2], cache_dir=tmp_path)  # evicts group 1
    assert cache_info(tmp_path)["disk"]["bytes"] <= 2.5 * block
    assert os.path.getsize(tmp_path / cache.FILE_NAME) <= 2.5 * block
    monkeypatch.undo()
    encode_texts(encoder, groups[0] + groups[1], cache_dir=tmp_path)
    counts = encoder.counts()
    assert {counts[text] for text in groups[0]} == {1}
    assert {counts[text] for text in groups[1]} == {2}


def test_a_batch_larger_than_the_disk_limit_is_returned_not_kept(
    tmp_path, counting_encoder, restore_cache_limits
):
    set_cache_limits(disk=100)
    texts = [f"big {i}" for i in range(20)]
    result = encode_texts(counting_encoder, texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(result, direct(counting_encoder, texts))
    assert disk_texts(tmp_path) == 0


@pytest.mark.parametrize("damage", ["zeroed", "truncated", "garbage"])
def test_a_damaged_cache_file_is_replaced_with_a_warning(tmp_path, damage):
    encoder = StableEncoder()
    texts = [f"text {i}" for i in range(3000)]
    encode_texts(encoder, texts, cache_dir=tmp_path)
    path = tmp_path / cache.FILE_NAME
    size = path.stat().st_size
    content = {"zeroed": bytes(size), "truncated": path.read_bytes()[: size // 2],
               "garbage": b"not a database " * 100}[damage]
    path.write_bytes(content)
    with pytest.warns(RuntimeWarning, match=r"embeddings\.sqlite.*damaged.*encoded again"):
        result = encode_texts(encoder, texts, cache_dir=tmp_path)
    np.testing.assert_array_equal(result, direct(encoder, texts))
    assert set(encoder.counts().values()) == {2}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_texts(encoder, texts, cache_dir=tmp_path)
    assert set(encoder.counts().values()) == {2}


def test_a_damaged_file_that_cannot_be_deleted_is_one_error_naming_it(tmp_path, monkeypatch):
    (tmp_path / cache.FILE_NAME).write_bytes(b"not a database " * 100)
    monkeypatch.setattr(cache.os, "access", lambda path, mode, **kwargs: mode != os.W_OK)
    with pytest.raises(OSError, match=r"cache '.*embeddings\.sqlite' cannot be used .*delete"):
        encode_texts(StableEncoder(), ["a"], cache_dir=tmp_path)
    assert (tmp_path / cache.FILE_NAME).exists()


def test_clear_cache_deletes_a_cache_folder(tmp_path, counting_encoder):
    (tmp_path / "mine.txt").write_text("kept")
    encode_texts(counting_encoder, ["a"], cache_dir=tmp_path)
    clear_embedding_cache(tmp_path)
    assert disk_texts(tmp_path) == 0 and (tmp_path / "mine.txt").exists()
    encode_texts(counting_encoder, ["a"], cache_dir=tmp_path)
    assert counting_encoder.counts() == {"a": 2}


def test_clear_cache_deletes_a_damaged_file(tmp_path):
    (tmp_path / cache.FILE_NAME).write_bytes(b"not a database " * 100)
    clear_embedding_cache(tmp_path)
    assert not (tmp_path / cache.FILE_NAME).exists()


def test_cache_dir_expands_the_home_folder(tmp_path, monkeypatch, counting_encoder):
    monkeypatch.setenv("HOME", str(tmp_path))
    encode_texts(counting_encoder, ["a"], cache_dir="~/embeddings")
    assert disk_texts(tmp_path / "embeddings") == 1
    clear_embedding_cache("~/embeddings")
    assert disk_texts(tmp_path / "embeddings") == 0


def test_cache_dir_must_be_a_directory(tmp_path, counting_encoder):
    path = tmp_path / "a-file"
    path.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        encode_texts(counting_encoder, ["a"], cache_dir=path)


def test_a_read_only_folder_is_read_and_never_written(tmp_path, monkeypatch, recwarn):
    encoder = StableEncoder()
    texts = [f"shared {i}" for i in range(50)]
    first = encode_texts(encoder, texts, cache_dir=tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    monkeypatch.setattr(cache.os, "access", lambda path, mode, **kwargs: mode != os.W_OK)
    np.testing.assert_array_equal(encode_texts(encoder, texts, cache_dir=tmp_path), first)
    assert not recwarn and set(encoder.counts().values()) == {1}
    with pytest.warns(RuntimeWarning, match="read-only and lacks 1 of these texts"):
        mixed = encode_texts(encoder, ["new text", *texts], cache_dir=tmp_path)
    np.testing.assert_array_equal(mixed, direct(encoder, ["new text", *texts]))
    encode_texts(encoder, ["new text"], cache_dir=tmp_path)  # now in process
    assert encoder.counts()["new text"] == 1
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


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


def _auroc_on_texts(estimator, X, y) -> float:
    # Methods that take images read plain strings as paths: texts go in Texts.
    return roc_auc_score(y, estimator.decision_function(Texts(X)))


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
        scoring=_auroc_on_texts,
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


# ------------------------------------------------- the persistent user cache


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(CACHE_DIR_ENV, "~/embeddings")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "embeddings"
    for off in ("off", "OFF", "0", "false"):
        monkeypatch.setenv(CACHE_DIR_ENV, off)
        assert default_cache_dir() is None
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "skhftt"
    monkeypatch.delenv(CACHE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert default_cache_dir() == tmp_path / ".cache" / "skhftt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / ".cache" / "skhftt"


def test_the_default_persists_encoders_with_a_stable_identity(user_cache_dir):
    encoder = StableEncoder()
    texts = [f"kept {i}" for i in range(30)]
    first = encode_texts(encoder, texts)
    assert disk_texts(user_cache_dir) >= 30
    clear_embedding_cache(False)
    again = encode_texts(encoder, texts)
    assert set(encoder.counts().values()) == {1}
    np.testing.assert_array_equal(again, first)


def test_the_default_keeps_other_encoders_in_process(user_cache_dir, counting_encoder):
    before = cache_info()["disk"]["texts"]
    encode_texts(counting_encoder, ["in process only"])
    assert cache_info()["disk"]["texts"] == before
    encode_texts(counting_encoder, ["in process only"])
    assert counting_encoder.counts() == {"in process only": 1}


def test_cache_dir_false_stays_in_process(user_cache_dir):
    encoder = StableEncoder()
    encode_texts(encoder, ["never on disk"], cache_dir=False)
    assert known_encoder(encoder.identity) is None
    encode_texts(encoder, ["never on disk"], cache_dir=False)
    assert encoder.counts() == {"never on disk": 1}


def test_cache_dir_off_in_the_environment_stays_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, "off")
    encoder = StableEncoder()
    encode_texts(encoder, ["a"])
    assert cache_info()["disk"]["path"] is None
    assert encoder.counts() == {"a": 1}


def test_an_unusable_default_folder_falls_back_with_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_DIR_ENV, str(blocker))
    encoder = StableEncoder()
    with pytest.warns(RuntimeWarning, match=r"a-file.*cannot be used.*this process only"):
        result = encode_texts(encoder, ["a", "b"])
    np.testing.assert_array_equal(result, direct(encoder, ["a", "b"]))


@pytest.mark.parametrize("cache_dir", [True, 3, ["dir"]])
def test_cache_dir_must_be_none_false_or_a_folder(counting_encoder, cache_dir):
    with pytest.raises(TypeError, match="cache_dir must be None"):
        encode_texts(counting_encoder, ["a"], cache_dir=cache_dir)


def test_cache_info_counts_each_store(tmp_path, counting_encoder):
    clear_embedding_cache(False)
    empty = cache_info(tmp_path)
    assert empty["memory"]["texts"] == 0 and empty["memory"]["encoders"] == 0
    assert empty["disk"] == {
        "path": str(tmp_path), "encoders": 0, "texts": 0, "bytes": 0,
        "limit": get_cache_limits()["disk"],
    }  # fmt: skip
    encode_texts(counting_encoder, ["a", "b", "c"])
    encode_texts(StableEncoder(dim=8), ["x", "y"], cache_dir=tmp_path)
    encode_texts(StableEncoder(dim=8), ["z"], cache_dir=tmp_path)
    info = cache_info(tmp_path)
    assert info["memory"]["encoders"] == 1 and info["memory"]["texts"] == 3
    assert info["memory"]["bytes"] >= 3 * counting_encoder.dim * 4
    assert info["disk"]["encoders"] == 2 and info["disk"]["texts"] == 3
    assert info["disk"]["bytes"] >= 3 * 8 * 4
    clear_embedding_cache(tmp_path)
    cleared = cache_info(tmp_path)
    assert cleared["memory"]["texts"] == 0 and cleared["disk"]["texts"] == 0


def test_known_encoder_reports_what_the_cache_recorded(tmp_path):
    class TextOnly(StableEncoder):
        modalities = ("text",)

    encoder = TextOnly(dim=8)
    assert known_encoder(encoder.identity, cache_dir=tmp_path) is None
    encode_texts(encoder, ["a"], cache_dir=tmp_path)
    assert known_encoder(encoder.identity, cache_dir=tmp_path) == (8, ("text",))
    encode_texts(StableEncoder(dim=8), ["a"], cache_dir=tmp_path)  # declares no modalities
    assert cache_info(tmp_path)["disk"]["encoders"] == 2


def test_clear_none_deletes_the_default_folder(user_cache_dir):
    encoder = StableEncoder()
    encode_texts(encoder, ["to be cleared"])
    assert cache_info()["disk"]["texts"] >= 1
    clear_embedding_cache()
    assert cache_info()["disk"]["texts"] == 0
    encode_texts(encoder, ["to be cleared"])
    assert encoder.counts() == {"to be cleared": 2}


_FIT_SCRIPT = textwrap.dedent(
    """
    from skhftt.detectors.hftt import HFTTDetector
    from skhftt.embedding.encoders.hashing import HashingEncoder

    encoder = HashingEncoder(dim=24)
    world = [f"a photo of thing number {i}" for i in range(300)]
    HFTTDetector(encoder=encoder, random_state=0).fit(world, ["a red apple", "a green pear"])
    print(encoder.n_texts_encoded)
    """
)


def _fit_in_a_new_process(cache_dir: str) -> int:
    env = {**os.environ, CACHE_DIR_ENV: cache_dir}
    done = subprocess.run(
        [sys.executable, "-c", _FIT_SCRIPT],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split()[-1])


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from conftest import CountingTextEncoder
    from skhftt.embedding.cache import encode_texts

    class Stalls(CountingTextEncoder):
        def encode_text(self, texts, **kwargs):
            if len(self.calls) == 5:  # five batches committed: wait to be killed
                Path(sys.argv[2]).touch()
                threading.Event().wait()
            return super().encode_text(texts, **kwargs)

    texts = [f"text {i}" for i in range(1000)]
    encode_texts(Stalls(tag="killed"), texts, batch_size=100, cache_dir=sys.argv[1])
    """
)


def test_a_writer_killed_mid_encode_loses_only_its_current_batch(tmp_path):
    cache_dir, ready = tmp_path / "cache", tmp_path / "ready"
    tests = str(Path(__file__).parent)
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(cache_dir),
                               str(ready), tests])
    try:
        while not ready.exists():
            assert writer.poll() is None, "the writer died before it was killed"
            threading.Event().wait(0.05)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    encoder = CountingTextEncoder(tag="killed")
    texts = [f"text {i}" for i in range(1000)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = encode_texts(encoder, texts, batch_size=100, cache_dir=cache_dir)
    np.testing.assert_array_equal(result, direct(encoder, texts))
    assert sorted(encoder.counts()) == sorted(texts[500:])
    with sqlite3.connect(cache_dir / cache.FILE_NAME) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def _read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def test_a_copied_or_read_only_cache_serves_a_fit_that_encodes_nothing(tmp_path):
    origin = str(tmp_path / "origin")
    assert _fit_in_a_new_process(origin) == 302
    assert _fit_in_a_new_process(origin) == 0
    copy = shutil.copytree(origin, tmp_path / "copy")
    assert _fit_in_a_new_process(str(copy)) == 0
    mounted = shutil.copytree(origin, tmp_path / "mounted")
    before = {path.name: path.read_bytes() for path in mounted.iterdir()}
    _read_only(mounted)
    try:
        assert _fit_in_a_new_process(str(mounted)) == 0
        assert {path.name: path.read_bytes() for path in mounted.iterdir()} == before
    finally:
        for path in [mounted, *mounted.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_an_emptied_cache_folder_does_not_stop_later_fits(tmp_path):
    folder = tmp_path / "user-cache"
    assert _fit_in_a_new_process(str(folder)) == 302
    for path in folder.rglob("*"):
        if path.is_file():
            path.write_bytes(b"")
    assert _fit_in_a_new_process(str(folder)) == 302
    assert _fit_in_a_new_process(str(folder)) == 0


_LAZY_FIT = textwrap.dedent(
    """
    import json, sys
    from skhftt.detectors.hftt import HFTTDetector
    from skhftt.embedding.encoders import loaded_models

    model, images = sys.argv[1], sys.argv[2:]
    world = [f"a photo of thing number {i}" for i in range(200)]
    detector = HFTTDetector(encoder=model, device="cpu", random_state=0).fit(world, ["an apple"])
    facts = {"loaded": len(loaded_models()), "identity": detector.encoder_identity_,
             "st": "sentence_transformers" in sys.modules}
    if images:  # images need the model
        facts.update(scores=detector.score_samples(images).tolist(), loaded=len(loaded_models()))
    print(json.dumps(facts))
    """
)


def _lazy_fit(model: Path, images: list[str], cache_dir: Path) -> dict:
    env = {**os.environ, CACHE_DIR_ENV: str(cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", _LAZY_FIT, str(model), *images],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fit_on_cached_texts_loads_no_model(tmp_path, tiny_clip_dir, image_files):
    images = [str(image_files["astronaut.png"]), str(image_files["coffee.png"])]
    cold = _lazy_fit(tiny_clip_dir, images, tmp_path / "cache")
    assert cold["loaded"] == 1
    warm = _lazy_fit(tiny_clip_dir, [], tmp_path / "cache")
    assert warm == {"loaded": 0, "identity": cold["identity"], "st": False}
    scored = _lazy_fit(tiny_clip_dir, images, tmp_path / "cache")
    assert scored["loaded"] == 1 and scored["identity"] == cold["identity"]
    np.testing.assert_allclose(scored["scores"], cold["scores"], rtol=1e-5)
