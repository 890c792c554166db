"""Detector files are validated whole at load: one clean error naming the field, or a
faithful load.

Every hostile or damaged file found by hand (issue 19, items 2 and 3) gets one
``ValueError`` that names the file and the field, which the command line turns
into one line and exit 2; a property-based test mutates saved files of several
kinds and checks that nothing else can happen.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _detectors import data as detector_data
from _detectors import fitted as fitted_kind
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save_file

from skhftt.cli import main
from skhftt.detectors import HFTTDetector, load_detector
from skhftt.detectors.persistence import _split_state, json_params

# A few kinds that hold every sort of field: a head, a calibration, negative labels with
# their texts, classes given as strings, reference images.
KINDS = ["HFTTDetector", "HFTTEnsembleDetector", "NegLabelDetector", "MSPDetector",
         "KNNDetector"]


def _read(path):
    with safe_open(str(path), framework="numpy") as handle:
        config = json.loads(handle.metadata()["skhftt"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    return config, tensors


def _write(path, config, tensors, *, raw=None):
    """A detector file with this header and these arrays (``raw``: the header text as is)."""
    save_file(tensors, str(path), metadata={"skhftt": raw if raw is not None else
                                            json.dumps(config)})
    return path


@pytest.fixture(scope="module")
def values():
    return detector_data()


@pytest.fixture(scope="module")
def saved(values, tmp_path_factory):
    """One saved file of each kind of ``KINDS``, and its detector's scores of the test rows."""
    root = tmp_path_factory.mktemp("saved")
    files = {}
    for kind in KINDS:
        detector = fitted_kind(kind, values)
        detector.save(root / f"{kind}.safetensors")
        files[kind] = (root / f"{kind}.safetensors", detector.score_samples(values["test"]),
                       detector.decision_function(values["test"]))
    return files


def _edited(saved, tmp_path, kind, edit, *, arrays=False):
    """A copy of the saved ``kind`` with ``edit(config, tensors)`` applied.

    ``arrays=True`` drops the arrays' digest, as a file written before format 3 has none,
    so that the arrays themselves are checked.
    """
    config, tensors = _read(saved[kind][0])
    edit(config, tensors)
    if arrays:
        del config["tensor_digest"]
    return _write(tmp_path / f"edited-{kind}.safetensors", config, tensors)


def _one_line_error(path, match):
    with pytest.raises(ValueError) as caught:
        load_detector(path)
    message = str(caught.value)
    assert "\n" not in message and repr(str(path)) in message
    assert match in message, message
    return message


# ------------------------------------------------------------------- header


@pytest.mark.parametrize("key", ["kind", "params", "fitted", "skhftt_version"])
def test_a_header_missing_an_entry_is_named(saved, tmp_path, key):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c.pop(key))
    _one_line_error(path, f"is not a complete skhftt detector: its header has no {key!r}")


@pytest.mark.parametrize(("key", "value", "words"), [
    ("kind", 3, "3, not a string"), ("params", [], "[], not an object"),
    ("fitted", "x", "'x', not an object"),
])
def test_a_header_entry_of_the_wrong_type_is_named(saved, tmp_path, key, value, words):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c.update({key: value}))
    _one_line_error(path, f"its header's {key!r} is {words}")


@pytest.mark.parametrize("value", ["3", None, 99, 0, True, 2.5])
def test_a_format_version_that_is_no_known_version_gets_one_message(saved, tmp_path, value):
    path = _edited(saved, tmp_path, "HFTTDetector",
                   lambda c, t: c.update(format_version=value))
    _one_line_error(path, f"is in format version {value!r} (written by skhftt")


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "12", "null"])
def test_metadata_that_is_no_json_object_is_refused(saved, tmp_path, raw):
    config, tensors = _read(saved["HFTTDetector"][0])
    path = _write(tmp_path / "list.safetensors", config, tensors, raw=raw)
    _one_line_error(path, "its header is not a JSON object")


def test_deeply_nested_json_is_refused_without_a_recursion_error(saved, tmp_path):
    config, tensors = _read(saved["HFTTDetector"][0])
    raw = json.dumps(config).replace('"templates": null', '"templates": ' + "[" * 100_000
                                     + "]" * 100_000)
    path = _write(tmp_path / "deep.safetensors", config, tensors, raw=raw)
    _one_line_error(path, "its header is not JSON (RecursionError)")


def test_an_unknown_header_entry_is_refused(saved, tmp_path):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c.update(extra=1))
    _one_line_error(path, "its header has 'extra', which that format does not have")


# --------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kind", "name", "value"),
    [("HFTTDetector", "unwanted", "keep"), ("NegLabelDetector", "temperature", 0.0),
     ("NegLabelDetector", "temperature", float("nan")), ("HFTTDetector", "n_embeddings", "3"),
     ("MSPDetector", "threshold", 0.5), ("KNNDetector", "n_neighbors", 0)],
)
def test_an_impossible_parameter_is_named(saved, tmp_path, kind, name, value):
    path = _edited(saved, tmp_path, kind, lambda c, t: c["params"].update({name: value}))
    _one_line_error(path, f"The {name!r} parameter of {kind} must be")


def test_a_parameter_missing_or_unknown_is_named(saved, tmp_path):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c["params"].pop("gamma"))
    _one_line_error(path, "its params lack 'gamma'")
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c["params"].update(alpha=1))
    _one_line_error(path, "it has parameters this skhftt's HFTTDetector does not have (['alpha']")


def test_parameters_that_contradict_the_fitted_state_are_named(saved, tmp_path):
    path = _edited(saved, tmp_path, "KNNDetector", lambda c, t: c["params"].update(n_neighbors=61))
    _one_line_error(path, "n_neighbors=61 exceeds the 60 rows of reference_embeddings_")
    path = _edited(saved, tmp_path, "NegLabelDetector", lambda c, t: c["params"].update(
        n_groups=41))
    _one_line_error(path, "n_groups=41 is larger than the 40 rows of negative_columns_")


# ------------------------------------------------------------ fitted values


@pytest.mark.parametrize(
    ("kind", "name", "value", "match"),
    [("HFTTDetector", "encoder_spec_", 5, "encoder_spec_ must be a str or null; got 5"),
     ("HFTTDetector", "offset_", float("nan"), "offset_ must be a finite number; got nan"),
     ("HFTTDetector", "head_.temperature", 0, "head_.temperature must be a finite number of at "
                                              "least 1.17549e-38; got 0"),
     ("HFTTDetector", "head_.temperature", -1, "head_.temperature must be a finite number of"),
     ("HFTTDetector", "head_.temperature", float("nan"), "head_.temperature must be a finite"),
     ("HFTTDetector", "head_.temperature", 1e-300, "head_.temperature must be a finite number"),
     ("HFTTDetector", "task_names_", ["only one"], "head_.task_columns has shape (6, 16), "
                                                   "but task_names_ gives C = 1"),
     ("HFTTDetector", "embedding_dim_", True, "embedding_dim_ must be a positive int"),
     ("HFTTEnsembleDetector", "calibration_", [0.0, 1.0, 0.5],
      "calibration_ must be a list of 4 finite numbers"),
     ("HFTTEnsembleDetector", "calibration_", [0.0, 0.0, 0.0, 0.0],
      "its inter-quartile ranges (second and fourth entries) must be above 0"),
     ("HFTTDetector", "training_digests_", ["sha256:0"], "training_digests_ must be null or"),
     ("MSPDetector", "classes_", {"ndarray": ["a", "b"], "dtype": "object"},
      "classes_ must be a list of str with a string dtype")],
)
def test_an_impossible_fitted_value_is_named(saved, tmp_path, kind, name, value, match):
    path = _edited(saved, tmp_path, kind, lambda c, t: c["fitted"].update({name: value}))
    _one_line_error(path, match)


def test_a_fitted_value_missing_is_named(saved, tmp_path):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c["fitted"].pop("n_iter_"))
    _one_line_error(path, "its fitted state lacks n_iter_")


@pytest.mark.parametrize(
    ("name", "array", "match"),
    [("head_.task_columns", np.zeros((3, 16, 2), np.float32),
      "head_.task_columns has shape (3, 16, 2); expected (C, dim)"),
     ("head_.trainable_columns", np.zeros((0, 16), np.float32), "no size 0"),
     ("head_.trainable_columns", np.array(1.0, np.float32), "has shape (); expected (K, dim)"),
     ("head_.task_columns", np.eye(3, 16, dtype=np.int64), "must be an array of floats; got "
                                                           "dtype int64"),
     ("head_.task_columns", np.eye(3, 16, dtype=bool), "must be an array of floats; got "
                                                       "dtype bool"),
     ("head_.trainable_columns", np.full((3, 16), np.nan, np.float32),
      "head_.trainable_columns holds NaN or infinite values"),
     ("head_.trainable_columns", np.full((3, 16), 2.0, np.float32),
      "head_.trainable_columns must have rows of unit length; a row has norm 8")],
)
def test_an_impossible_array_is_named(saved, tmp_path, name, array, match):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: t.update({name: array}),
                   arrays=True)
    _one_line_error(path, match)


def test_an_array_saved_as_json_too_is_refused(saved, tmp_path):
    path = _edited(saved, tmp_path, "HFTTDetector",
                   lambda c, t: c["fitted"].update({"head_.task_columns": [[1.0]]}))
    _one_line_error(path, "head_.task_columns is both an array and a JSON value")


def test_the_ensemble_calibration_must_be_a_list(saved, tmp_path):
    path = _edited(saved, tmp_path, "HFTTEnsembleDetector",
                   lambda c, t: c["fitted"].update(calibration_="1, 2, 3, 4"))
    _one_line_error(path, "calibration_ must be a list of 4 finite numbers")


def test_changed_arrays_are_caught_by_the_digest(saved, tmp_path):
    def flip(config, tensors):
        tensors["head_.trainable_columns"] = -tensors["head_.trainable_columns"]  # still unit

    path = _edited(saved, tmp_path, "HFTTDetector", flip)
    _one_line_error(path, "was changed after skhftt wrote it: its arrays do not match the digest")


# ------------------------------------------------------------ older formats


def test_a_file_of_0_1_without_a_temperature_is_named(saved, tmp_path):
    config, tensors = _read(saved["HFTTDetector"][0])
    old = {"format": "skhftt.HFTTDetector", "format_version": 1, "skhftt_version": "0.1.0",
           "params": {k: v for k, v in config["params"].items() if k != "unwanted"},
           "fitted": {k: v for k, v in config["fitted"].items()
                      if not k.startswith("head_.") and k != "training_digests_"}}
    renamed = {"task_columns": tensors["head_.task_columns"],
               "trainable_columns": tensors["head_.trainable_columns"]}
    path = _write(tmp_path / "old.safetensors", old, renamed)
    _one_line_error(path, "is not a complete skhftt 0.1 detector: its header needs 'params', "
                          "'fitted' and 'temperature'")
    old["temperature"] = config["fitted"]["head_.temperature"]
    _write(path, old, renamed)
    assert isinstance(load_detector(path), HFTTDetector)


@pytest.mark.parametrize("kind", KINDS)
def test_files_of_0_2_still_load(saved, tmp_path, values, kind):
    """Format 2: no ``unwanted``, no ``training_digests_``, no digest of the arrays."""
    def as_0_2(config, tensors):
        config.update(format_version=2, skhftt_version="0.2.0")
        del config["params"]["unwanted"], config["fitted"]["training_digests_"]

    loaded = load_detector(_edited(saved, tmp_path, kind, as_0_2, arrays=True))
    assert loaded.unwanted == "mismatch" and loaded.training_digests_ is None
    np.testing.assert_array_equal(loaded.score_samples(values["test"]), saved[kind][1])


def test_a_format_3_file_without_digests_is_refused(saved, tmp_path):
    path = _edited(saved, tmp_path, "HFTTDetector", lambda c, t: c["fitted"].pop(
        "training_digests_"))
    _one_line_error(path, "its fitted state lacks training_digests_")


# ---------------------------------------------------------- command line


def _bad_files(saved, tmp_path):
    config, tensors = _read(saved["HFTTDetector"][0])
    nested = json.dumps(config).replace('"templates": null',
                                        '"templates": ' + "[" * 100_000 + "]" * 100_000)
    no_kind = {k: v for k, v in config.items() if k != "kind"}
    bad_temperature = {**config, "fitted": {**config["fitted"], "head_.temperature": -1}}
    return {
        "nested": _write(tmp_path / "nested.safetensors", config, tensors, raw=nested),
        "no_kind": _write(tmp_path / "no_kind.safetensors", no_kind, tensors),
        "version": _write(tmp_path / "version.safetensors", {**config, "format_version": "3"},
                          tensors),
        "temperature": _write(tmp_path / "temperature.safetensors", bad_temperature, tensors),
    }


def _cli(command, capsys):
    status = main([str(part) for part in command])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("name", ["nested", "no_kind", "version", "temperature"])
def test_the_command_line_says_one_line_and_exits_2(saved, values, tmp_path, capsys, name):
    path = _bad_files(saved, tmp_path)[name]
    np.save(tmp_path / "inputs.npy", values["test"])
    status, err = _cli(["score", path, tmp_path / "inputs.npy", "-o", tmp_path / "out"], capsys)
    assert status == 2 and err.startswith("skhftt score: error: ") and err.count("\n") == 1, err
    # info summarises the header without loading the detector: a summary, or one error.
    status, err = _cli(["info", path], capsys)
    assert (status == 0 and not err) or (
        status == 2 and err.startswith("skhftt info: error: ") and err.count("\n") == 1), err


def test_the_command_line_in_a_process_of_its_own(saved, values, tmp_path):
    bad = _bad_files(saved, tmp_path)
    np.save(tmp_path / "inputs.npy", values["test"])
    for command in (["score", bad["nested"], tmp_path / "inputs.npy", "-o", tmp_path / "out"],
                    ["info", bad["nested"]], ["info", bad["no_kind"]]):
        done = subprocess.run([sys.executable, "-m", "skhftt", *map(str, command)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2, (command, done.stderr)
        assert done.stderr.startswith(f"skhftt {command[0]}: error: "), done.stderr
        assert done.stderr.count("\n") == 1, done.stderr


# ------------------------------------------------------------ property test

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([10**30, -(10**30)]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
    st.lists(st.integers(0, 2), max_size=3), st.dictionaries(st.text(max_size=3), st.none(),
                                                             max_size=2),
    st.just("nested"),
)


def _content(path):
    """The header and arrays of a file, or None when it has no readable skhftt header."""
    try:
        config, tensors = _read(path)
    except Exception:  # any damage: not the same content
        return None
    return config, tensors


def _floats(value):
    """``value`` with every int a float, as a detector holds numbers read from a file."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _same(a, b):
    if a is None or b is None:
        return False
    (config_a, tensors_a), (config_b, tensors_b) = a, b
    return config_a == config_b and tensors_a.keys() == tensors_b.keys() and all(
        np.array_equal(tensors_a[k], tensors_b[k]) and tensors_a[k].dtype == tensors_b[k].dtype
        for k in tensors_a)


def _mutate_header(data, config):
    """Drop, retype or replace one entry of the header, its parameters or fitted values."""
    where = data.draw(st.sampled_from(["top", "params", "fitted"]))
    mapping = config if where == "top" else config[where]
    key = data.draw(st.sampled_from(sorted(mapping)))
    if data.draw(st.booleans()):
        del mapping[key]
        return None
    value = data.draw(_VALUES)
    if value == "nested":  # deeper than any JSON parser's recursion limit
        return json.dumps({**config, "_": 0}).replace('"_": 0', '"_": ' + "[" * 50_000
                                                      + "]" * 50_000)
    mapping[key] = value
    return None


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


@settings(max_examples=150, deadline=10_000, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_mutated_file_loads_faithfully_or_fails_with_one_clean_error(saved, values, scratch,
                                                                      data):
    kind = data.draw(st.sampled_from(KINDS))
    source, scores, decisions = saved[kind]
    original = source.read_bytes()
    path = scratch / "mutated.safetensors"
    mutation = data.draw(st.sampled_from(["header", "flip", "truncate"]))
    if mutation == "header":
        config, tensors = _read(source)
        raw = _mutate_header(data, config)
        _write(path, config, tensors, raw=raw)
    elif mutation == "flip":
        position = data.draw(st.integers(0, len(original) - 1))
        mask = data.draw(st.integers(1, 255))
        path.write_bytes(original[:position] + bytes([original[position] ^ mask])
                         + original[position + 1:])
    else:
        path.write_bytes(original[:data.draw(st.integers(0, len(original) - 1))])

    try:
        detector = load_detector(path)
    except (ValueError, FileNotFoundError) as exc:
        event(f"{mutation}: refused")
        assert str(exc) and "\n" not in str(exc)
        with contextlib.redirect_stderr(io.StringIO()) as stderr:
            assert main(["info", str(path)]) in (0, 2)  # a summary or one error, no traceback
        assert stderr.getvalue().count("\n") <= 1
        return
    X = values["test"]
    if _same(_content(path), _content(source)):
        event(f"{mutation}: unchanged")
        np.testing.assert_array_equal(detector.score_samples(X), scores)
        np.testing.assert_array_equal(detector.decision_function(X), decisions)
        return
    # A valid change: the detector holds exactly what the file says, and scores finite values.
    event(f"{mutation}: loaded as changed")
    config, tensors = _read(path)
    assert json_params(detector) == config["params"]
    saved_tensors, saved_values = _split_state(detector._fitted_state())
    assert _floats(saved_values) == _floats(config["fitted"])
    assert saved_tensors.keys() == tensors.keys()
    assert all(np.array_equal(saved_tensors[k], tensors[k]) for k in tensors)
    # Scored without its encoder: the file may now name another one.
    assert np.isfinite(detector._score_embeddings(X)).all()
