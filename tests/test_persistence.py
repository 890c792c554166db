from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pytest
from _detectors import KINDS, data, make
from _detectors import fitted as fitted_kind
from _synthetic import make_task_world, unit
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from skhftt import HFTTDetector
from skhftt.detectors import MCMDetector
from skhftt.detectors.persistence import load_detector, registered_kinds
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.embedding.inputs import Texts


@pytest.fixture(scope="module")
def fitted():
    data = make_task_world(seed=4)
    det = HFTTDetector(encoder="precomputed", random_state=0, threshold=0.3)
    return det.fit(data["world"], data["prompts"]), data


def _imagenet_scale_detector(rng):
    """C = 1000, K = 10, d = 768: the size the docs promise stays small."""
    task = unit(rng.normal(size=(1000, 768)))
    world = unit(rng.normal(size=(512, 768)))
    return HFTTDetector(encoder="precomputed", random_state=0).fit(world, task)


def test_joblib_file_is_small_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    det = _imagenet_scale_detector(rng)
    path = tmp_path / "det.joblib"
    joblib.dump(det, path)
    size_mb = path.stat().st_size / 2**20
    assert size_mb < 4, f"{size_mb:.2f} MB"  # 1010 x 768 float32 = 3.0 MB of columns
    loaded = joblib.load(path)
    X = unit(rng.normal(size=(20, 768)))
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


def test_pickle_round_trip_with_encoder_object():
    encoder = HashingEncoder(dim=16)
    det = HFTTDetector(encoder=encoder, random_state=0).fit(
        [f"a photo of a {w}" for w in "dog car tree road bus lamp".split()], ["a ripe apple"]
    )
    loaded = pickle.loads(pickle.dumps(det))
    texts = Texts(["a ripe apple", "a dog"])
    np.testing.assert_array_equal(loaded.score_samples(texts), det.score_samples(texts))


def test_fresh_cpu_only_process_scores_without_any_model(tmp_path, fitted):
    det, data = fitted
    joblib.dump(det, tmp_path / "det.joblib")
    np.save(tmp_path / "X.npy", data["in_test"])
    np.save(tmp_path / "expected.npy", det.decision_function(data["in_test"]))
    script = textwrap.dedent(
        """
        import sys, joblib, numpy as np
        det = joblib.load(sys.argv[1] + "/det.joblib")
        scores = det.decision_function(np.load(sys.argv[1] + "/X.npy"))
        np.testing.assert_array_equal(scores, np.load(sys.argv[1] + "/expected.npy"))
        heavy = [m for m in ("transformers", "sentence_transformers", "open_clip")
                 if m in sys.modules]
        assert not heavy, heavy
        print("ok", det.head_.trainable_columns.shape)
        """
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")


def test_save_load_round_trip(tmp_path, fitted):
    det, data = fitted
    path = tmp_path / "det.safetensors"
    det.save(path)
    loaded = HFTTDetector.load(path)
    assert loaded.get_params() == det.get_params()
    for name in ("task_names_", "embedding_dim_", "encoder_identity_", "offset_", "n_iter_",
                 "loss_curve_", "n_features_in_"):
        assert getattr(loaded, name) == getattr(det, name), name
    np.testing.assert_array_equal(loaded.trainable_columns_, det.trainable_columns_)
    np.testing.assert_array_equal(loaded.predict_proba(data["out_test"]),
                                  det.predict_proba(data["out_test"]))
    assert not list(tmp_path.glob("*.partial-*"))


def test_saved_file_holds_no_pickle(tmp_path, fitted):
    det, _ = fitted
    path = tmp_path / "det.safetensors"
    det.save(path)
    assert b"\x80\x04\x95" not in path.read_bytes()[:200]  # no pickle protocol header
    assert set(load_file(path)) == {"head_.task_columns", "head_.trainable_columns"}


def test_encoder_object_must_be_given_again_at_load(tmp_path):
    encoder = HashingEncoder(dim=16)
    det = HFTTDetector(encoder=encoder, random_state=0).fit(["a dog", "a car", "a tree"],
                                                           ["an apple"])
    det.save(tmp_path / "d.safetensors")
    with pytest.raises(ValueError, match=r"fitted with an encoder object .*hashing:16"):
        load_detector(tmp_path / "d.safetensors")
    loaded = load_detector(tmp_path / "d.safetensors", encoder=encoder)
    np.testing.assert_array_equal(loaded.score_samples(Texts(["an apple"])),
                                  det.score_samples(Texts(["an apple"])))


def test_mismatched_encoder_at_load_is_refused(tmp_path):
    det = HFTTDetector(encoder=HashingEncoder(dim=16), random_state=0).fit(
        ["a dog", "a car", "a tree"], ["an apple"]
    )
    det.save(tmp_path / "d.safetensors")
    other_space = load_detector(tmp_path / "d.safetensors", encoder=HashingEncoder(dim=32))
    with pytest.raises(ValueError, match=r"fitted in the space of 'hashing:16'.*'hashing:32'"):
        other_space.score_samples(Texts(["an apple"]))


def test_wrong_width_encoder_is_refused(fitted):
    det, _ = fitted
    det = pickle.loads(pickle.dumps(det)).set_params(encoder=HashingEncoder(dim=8))
    with pytest.raises(ValueError, match="embeds into width 8, but the detector works in width 32"):
        det.score_samples(Texts(["a dog"]))


def _config(path):
    with safe_open(path, framework="numpy") as handle:
        return json.loads(handle.metadata()["skhftt"])


def test_corrupt_or_foreign_files_are_named(tmp_path, fitted):
    det, _ = fitted
    path = tmp_path / "det.safetensors"
    det.save(path)
    arrays, meta = load_file(path), _config(path)
    meta["format_version"] = 99
    save_file(arrays, tmp_path / "future.safetensors", metadata={"skhftt": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"format version 99.*Upgrade skhftt"):
        load_detector(tmp_path / "future.safetensors")

    meta["format_version"], meta["kind"] = 2, "FutureDetector"
    save_file(arrays, tmp_path / "unknown.safetensors", metadata={"skhftt": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"holds a FutureDetector, which this skhftt does not"):
        load_detector(tmp_path / "unknown.safetensors")

    meta["kind"] = "HFTTDetector"
    arrays["head_.trainable_columns"] = arrays["head_.trainable_columns"][:, :5].copy()
    save_file(arrays, tmp_path / "edited.safetensors", metadata={"skhftt": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"edited.safetensors' was changed after skhftt wrote "
                                         "it: its arrays do not match the digest"):
        load_detector(tmp_path / "edited.safetensors")

    del meta["tensor_digest"]  # as before format 3 had one: the arrays are checked one by one
    save_file(arrays, tmp_path / "narrow.safetensors", metadata={"skhftt": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"head_.trainable_columns has shape \(10, 5\), but "
                                         "embedding_dim_ gives dim = 32"):
        load_detector(tmp_path / "narrow.safetensors")

    del arrays["head_.trainable_columns"]
    save_file(arrays, tmp_path / "partial.safetensors", metadata={"skhftt": json.dumps(meta)})
    with pytest.raises(ValueError, match=r"partial\.safetensors' is not a valid saved "
                                         "HFTTDetector: its fitted state lacks "
                                         "head_.trainable_columns"):
        load_detector(tmp_path / "partial.safetensors")

    save_file({"x": np.zeros(2, np.float32)}, tmp_path / "other.safetensors")
    with pytest.raises(ValueError, match="not a saved skhftt detector"):
        load_detector(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file format")
    with pytest.raises(ValueError, match=r"junk.safetensors.*not a saved skhftt detector"):
        load_detector(tmp_path / "junk.safetensors")
    with pytest.raises(FileNotFoundError, match=r"missing\.safetensors"):
        load_detector(tmp_path / "missing.safetensors")


# ----------------------------------------------------------- every kind


@pytest.fixture(scope="module")
def values():
    return data()


def test_every_detector_kind_is_registered():
    assert set(KINDS) <= set(registered_kinds())


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_round_trips_exactly_without_pickle_and_with_joblib(kind, values, tmp_path):
    det = fitted_kind(kind, values)
    det.save(tmp_path / "det.safetensors")
    joblib.dump(det, tmp_path / "det.joblib")
    X = values["test"]
    for loaded in (load_detector(tmp_path / "det.safetensors"),
                   type(det).load(tmp_path / "det.safetensors"),
                   joblib.load(tmp_path / "det.joblib")):
        assert type(loaded) is type(det)
        assert loaded.get_params() == det.get_params()
        for method in ("score_samples", "decision_function", "predict"):
            np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(det, method)(X))
        assert hasattr(loaded, "predict_proba") == hasattr(det, "predict_proba")
        assert loaded.n_features_in_ == det.n_features_in_
        fitted_names = {name for name in vars(det) if name.endswith("_")}
        assert {name for name in vars(loaded) if name.endswith("_")} == fitted_names
    assert b"\x80\x04\x95" not in (tmp_path / "det.safetensors").read_bytes()


@pytest.mark.parametrize("kind", ["HFTTDetector", "KNNDetector"])
def test_a_moved_threshold_is_saved(kind, values, tmp_path):
    det = fitted_kind(kind, values)
    det.set_threshold(0.9 if kind == "HFTTDetector" else -0.05)
    det.save(tmp_path / "det.safetensors")
    loaded = load_detector(tmp_path / "det.safetensors")
    assert loaded.threshold == det.threshold and loaded.offset_ == det.offset_
    np.testing.assert_array_equal(loaded.predict(values["test"]), det.predict(values["test"]))


def test_loading_through_another_class_is_refused(values, tmp_path):
    fitted_kind("MCMDetector", values).save(tmp_path / "mcm.safetensors")
    with pytest.raises(ValueError, match=r"holds a MCMDetector, not a HFTTDetector.*"
                                         "MCMDetector.load"):
        HFTTDetector.load(tmp_path / "mcm.safetensors")
    assert isinstance(MCMDetector.load(tmp_path / "mcm.safetensors"), MCMDetector)


@pytest.mark.parametrize("name", ["det.joblib", "det.pkl", "det.safetensors"])
def test_a_joblib_file_is_named_as_such(name, tmp_path, fitted):
    det, _ = fitted
    joblib.dump(det, tmp_path / name)
    with pytest.raises(ValueError, match=r"joblib/pickle file.*joblib.load.*runs code"):
        HFTTDetector.load(tmp_path / name)


def test_saved_files_get_the_permissions_of_any_new_file(tmp_path, fitted):
    det, _ = fitted
    previous = os.umask(0o027)
    try:
        det.save(tmp_path / "det.safetensors")
        joblib.dump(det, tmp_path / "det.joblib")
    finally:
        os.umask(previous)
    mode = (tmp_path / "det.safetensors").stat().st_mode & 0o777
    assert mode == 0o640 == (tmp_path / "det.joblib").stat().st_mode & 0o777
    assert not list(tmp_path.glob("*.partial-*"))


def test_a_file_written_by_skhftt_0_1_loads(tmp_path, fitted):
    """The format of skhftt 0.1: HFTT only, two tensors, the temperature in the metadata."""
    det, data_ = fitted
    config = {
        "format": "skhftt.HFTTDetector", "format_version": 1, "skhftt_version": "0.1.0",
        "params": det.get_params(), "temperature": det.head_.temperature,
        "precomputed_n_features_in": True,
        "fitted": {name: getattr(det, name) for name in (
            "task_names_", "embedding_dim_", "encoder_identity_", "offset_", "n_iter_",
            "loss_curve_", "history_", "device_")},
    }
    save_file({"task_columns": det.head_.task_columns,
               "trainable_columns": det.head_.trainable_columns},
              tmp_path / "old.safetensors", metadata={"skhftt": json.dumps(config)})
    loaded = HFTTDetector.load(tmp_path / "old.safetensors")
    np.testing.assert_array_equal(loaded.decision_function(data_["in_test"]),
                                  det.decision_function(data_["in_test"]))
    assert loaded.encoder_spec_ == "precomputed" and loaded.n_features_in_ == 32


def test_parameters_without_a_plain_value_are_named(tmp_path, values):
    det = make("MCMDetector", templates=("a {}",)).fit(None, values["prompts"])
    det.save(tmp_path / "tuple.safetensors")  # a tuple is saved as a list
    assert load_detector(tmp_path / "tuple.safetensors").templates == ["a {}"]
    det.set_params(templates=[object()])
    with pytest.raises(TypeError, match="'templates' parameter"):
        det.save(tmp_path / "object.safetensors")
    assert not list(tmp_path.glob("object.safetensors*"))
