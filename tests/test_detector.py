from __future__ import annotations

import warnings

import joblib
import numpy as np
import pytest
from _synthetic import make_task_world
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from skhftt import HFTTDetector
from skhftt.embedding.embedder import spec_kind
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.embedding.inputs import Texts

WORDS = (
    "apple banana car dog house tree river mountain computer phone chair table "
    "window door city road bread cheese guitar piano cloud snow train boat"
).split()
WORLD_TEXTS = [f"This is a photo of a {word}." for word in WORDS] + [
    f"a {a} next to a {b}" for a in WORDS for b in WORDS if a != b
]


@pytest.fixture(scope="module")
def data():
    return make_task_world(seed=0)


def _precomputed(**params):
    return HFTTDetector(encoder="precomputed", random_state=0, **params)


def test_precomputed_fit_separates_task_from_world(data):
    det = _precomputed().fit(data["world"], data["prompts"])
    y = np.r_[np.ones(50), np.zeros(50)]
    scores = det.decision_function(np.vstack([data["in_test"], data["out_test"]]))
    assert roc_auc_score(y, scores) > 0.95
    assert det.task_columns_.shape == (12, 32)
    assert det.trainable_columns_.shape == (10, 32)
    assert det.n_features_in_ == 32 and det.embedding_dim_ == 32
    assert det.encoder_identity_ is None


def test_score_chain_relations(data):
    det = _precomputed(threshold=0.8).fit(data["world"], data["prompts"])
    X = np.vstack([data["in_test"], data["out_test"]])
    scores = det.score_samples(X)
    assert scores.dtype == np.float64 and np.isfinite(scores).all()
    assert det.offset_ == pytest.approx(np.log(0.8 / 0.2))
    np.testing.assert_allclose(det.decision_function(X), scores - det.offset_)
    proba = det.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    predicted = det.predict(X)
    assert set(np.unique(predicted)) == {-1, 1}
    np.testing.assert_array_equal(predicted == 1, proba[:, 1] >= 0.8)
    np.testing.assert_array_equal(predicted == 1, det.decision_function(X) >= 0)


def test_mapping_of_prompt_arrays_gives_averaged_columns(data):
    classes = {f"class {c}": data["prompts"][3 * c : 3 * c + 3] for c in range(4)}
    det = _precomputed().fit(data["world"], classes)
    assert det.task_names_ == list(classes)
    means = data["prompts"].reshape(4, 3, -1).mean(axis=1)
    expected = means / np.linalg.norm(means, axis=1, keepdims=True)
    np.testing.assert_allclose(det.task_columns_, expected, rtol=1e-5, atol=1e-6)


def test_precomputed_pu_labels_equal_explicit_form(data):
    X = np.vstack([data["world"], data["prompts"]])
    y = np.r_[np.zeros(len(data["world"])), np.ones(len(data["prompts"]))].astype(int)
    pu = _precomputed().fit(X, y)
    explicit = _precomputed().fit(data["world"], data["prompts"])
    np.testing.assert_array_equal(pu.trainable_columns_, explicit.trainable_columns_)


def test_text_forms_list_mapping_templates():
    encoder = HashingEncoder(dim=48)
    det = HFTTDetector(encoder=encoder, random_state=0)
    det.fit(WORLD_TEXTS, ["a ripe apple", "a ripe banana"])
    assert det.task_names_ == ["a ripe apple", "a ripe banana"]
    assert det.encoder_identity_ == "hashing:48"
    scores = det.score_samples(Texts(["a ripe apple", "a fast train"]))
    assert scores[0] > scores[1]

    templates = ["a photo of a {}.", "a drawing of a {}."]
    by_template = HFTTDetector(encoder=encoder, templates=templates, random_state=0)
    by_template.fit(WORLD_TEXTS, ["apple", "banana"])
    by_mapping = HFTTDetector(encoder=encoder, random_state=0).fit(
        WORLD_TEXTS, {name: [t.format(name) for t in templates] for name in ["apple", "banana"]}
    )
    np.testing.assert_array_equal(by_template.task_columns_, by_mapping.task_columns_)
    np.testing.assert_array_equal(by_template.trainable_columns_, by_mapping.trainable_columns_)


def test_text_pu_labels():
    encoder = HashingEncoder(dim=48)
    texts = [*WORLD_TEXTS, "a ripe apple", "a ripe banana"]
    y = [0] * len(WORLD_TEXTS) + [1, 1]
    pu = HFTTDetector(encoder=encoder, random_state=0).fit(texts, y)
    explicit = HFTTDetector(encoder=encoder, random_state=0).fit(
        WORLD_TEXTS, ["a ripe apple", "a ripe banana"]
    )
    np.testing.assert_array_equal(pu.trainable_columns_, explicit.trainable_columns_)


def test_same_random_state_same_fitted_state(data):
    first = _precomputed().fit(data["world"], data["prompts"])
    second = _precomputed().fit(data["world"], data["prompts"])
    np.testing.assert_array_equal(first.trainable_columns_, second.trainable_columns_)
    other = HFTTDetector(encoder="precomputed", random_state=1).fit(data["world"], data["prompts"])
    assert not np.array_equal(first.trainable_columns_, other.trainable_columns_)


def test_fit_predict_is_hidden():
    det = HFTTDetector()
    assert not hasattr(det, "fit_predict")
    with pytest.raises(AttributeError) as info:
        det.fit_predict(["a"])
    assert "fitted on texts and predicts on images" in str(info.value.__cause__)


def test_embeddings_are_normalised_before_scoring(data):
    det = _precomputed().fit(data["world"] * 3.0, data["prompts"] * 7.0)
    reference = _precomputed().fit(data["world"], data["prompts"])
    np.testing.assert_allclose(
        det.score_samples(data["in_test"] * 5), reference.score_samples(data["in_test"]),
        rtol=1e-4,
    )


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("method", ["score_samples", "decision_function", "predict",
                                    "predict_proba", "embed"])
def test_unfitted_use_raises_not_fitted(method, data):
    with pytest.raises(NotFittedError):
        getattr(_precomputed(), method)(data["in_test"])


def test_missing_task_is_an_error(data):
    with pytest.raises(ValueError, match="needs the task"):
        _precomputed().fit(data["world"])


@pytest.mark.parametrize(
    ("in_texts", "error", "match"),
    [
        ([], ValueError, "in_texts is empty"),
        ({}, ValueError, "empty mapping"),
        (np.empty((0, 32)), ValueError, "empty"),
        ({"cat": []}, TypeError, "class 'cat' must map to a non-empty"),
    ],
)
def test_empty_task_is_an_error(in_texts, error, match, data):
    with pytest.raises(error, match=match):
        _precomputed().fit(data["world"], in_texts)


def test_empty_corpus_is_an_error(data):
    with pytest.raises(ValueError, match="world corpus X is empty"):
        HFTTDetector(encoder=HashingEncoder()).fit([], ["a cat"])
    with pytest.raises(ValueError, match="world corpus X is empty"):
        _precomputed().fit(np.empty((0, 32)), data["prompts"])


def test_non_string_texts_are_an_error():
    with pytest.raises(TypeError, match=r"item 1 is int \(3\)"):
        HFTTDetector(encoder=HashingEncoder()).fit(["a dog", 3, "a car"], ["a cat"])
    with pytest.raises(TypeError, match="item 1 is NoneType"):
        HFTTDetector(encoder=HashingEncoder()).fit(["a dog"], ["a cat", None])
    with pytest.raises(TypeError, match="not a single string"):
        HFTTDetector(encoder=HashingEncoder()).fit(["a dog"], "a cat")


def test_texts_with_precomputed_encoder_are_an_error(data):
    with pytest.raises(TypeError, match="precomputed"):
        _precomputed().fit(["a dog", "a car"], data["prompts"])
    det = _precomputed().fit(data["world"], data["prompts"])
    with pytest.raises(TypeError, match="precomputed"):
        det.score_samples(Texts(["a dog"]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embeddings_are_an_error(bad, data):
    world = data["world"].copy()
    world[7, 3] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values in 1 row.*row 7"):
        _precomputed().fit(world, data["prompts"])
    det = _precomputed().fit(data["world"], data["prompts"])
    X = data["in_test"].copy()
    X[2, 0] = bad
    with pytest.raises(ValueError, match="row 2"):
        det.score_samples(X)


def test_wrong_width_embeddings_are_an_error(data):
    with pytest.raises(ValueError, match="width 16 but the task embeddings have width 32"):
        _precomputed().fit(data["world"][:, :16], data["prompts"])
    det = _precomputed().fit(data["world"], data["prompts"])
    with pytest.raises(ValueError, match="width 31, but the detector works in a space of width 32"):
        det.score_samples(data["in_test"][:, :31])


def test_zero_embedding_is_an_error(data):
    det = _precomputed().fit(data["world"], data["prompts"])
    X = data["in_test"].copy()
    X[4] = 0
    with pytest.raises(ValueError, match=r"all-zero row.*row 4"):
        det.score_samples(X)


@pytest.mark.parametrize("y", [[0, 1, 2], [0.5, 1, 0], [-1, 1, 1]])
def test_labels_that_are_not_zero_one_are_an_error(y, data):
    with pytest.raises(ValueError, match=r"neither 0/1 PU labels \(one per text of X: 0 for "
                                         "a world text, 1 for a task text"):
        _precomputed().fit(data["world"][:3], y)


def test_a_one_dimensional_task_embedding_is_told_what_was_expected(data):
    with pytest.raises(ValueError, match=r"y is a 1-D array of 32 numbers.*nor task embeddings, "
                                         r"which are a 2-D array \(n_task_items, dim\): pass one "
                                         r"task embedding as y.reshape\(1, -1\)"):
        _precomputed().fit(data["world"], data["prompts"][0])


def test_pu_labels_must_match_and_contain_both_classes(data):
    with pytest.raises(ValueError, match="X has 3 samples but the PU labels y have 2"):
        _precomputed().fit(data["world"][:3], [0, 1])
    with pytest.raises(ValueError, match="mark no task text"):
        _precomputed().fit(data["world"][:3], [0, 0, 0])
    with pytest.raises(ValueError, match="mark no world text"):
        _precomputed().fit(data["world"][:3], [1, 1, 1])


def test_precomputed_has_no_default_corpus(data):
    with pytest.raises(ValueError, match="no bundled world corpus"):
        _precomputed().fit(None, data["prompts"])


def test_bad_device_is_named(data):
    with pytest.raises(ValueError, match="device='tpu7'"):
        _precomputed(device="tpu7").fit(data["world"], data["prompts"])


def test_bad_templates_are_named():
    with pytest.raises(ValueError, match=r"exactly one '\{\}' placeholder"):
        HFTTDetector(encoder=HashingEncoder(), templates=["a photo"]).fit(WORLD_TEXTS, ["cat"])


def test_diverging_training_is_an_error_and_fits_nothing(data):
    det = _precomputed(learning_rate_init=float("inf"))
    with pytest.raises(ValueError, match=r"training diverged.*lower learning_rate_init"):
        det.fit(data["world"], data["prompts"])
    assert not hasattr(det, "head_") and not hasattr(det, "task_names_")


# ------------------------------------------------------------- threshold


def test_set_threshold_equals_fitting_with_that_threshold(data):
    det = _precomputed().fit(data["world"], data["prompts"])
    X = np.vstack([data["in_test"], data["out_test"]])
    before = det.predict(X)
    assert det.set_threshold(0.99) is det
    assert det.threshold == 0.99 and det.offset_ == pytest.approx(np.log(99))
    refit = _precomputed(threshold=0.99).fit(data["world"], data["prompts"])
    np.testing.assert_array_equal(det.decision_function(X), refit.decision_function(X))
    np.testing.assert_array_equal(det.predict(X) == 1, det.predict_proba(X)[:, 1] >= 0.99)
    assert (det.predict(X) != before).any()
    assert clone(det).threshold == 0.99


@pytest.mark.parametrize("threshold", [0.0, 1.0, 2.0, float("nan"), True])
def test_set_threshold_refuses_what_the_parameter_refuses(threshold, data):
    det = _precomputed().fit(data["world"], data["prompts"])
    with pytest.raises(ValueError, match="'threshold' parameter of HFTTDetector"):
        det.set_threshold(threshold)
    assert det.threshold == 0.5 and det.offset_ == 0.0


def test_set_threshold_needs_a_fitted_detector():
    with pytest.raises(NotFittedError):
        _precomputed().set_threshold(0.7)


# --------------------------------------------------------------- encoders


class TextOnlyEncoder(HashingEncoder):
    """A text model: it declares that it has no image tower."""

    modalities = ("text",)


def test_a_text_only_encoder_warns_at_fit_and_refuses_images():
    encoder = TextOnlyEncoder(dim=48)
    with pytest.warns(UserWarning, match=r"encoder 'hashing:48' embeds texts only"):
        det = HFTTDetector(encoder=encoder, random_state=0).fit(
            WORLD_TEXTS, ["a ripe apple", "a ripe banana"])
    scores = det.score_samples(Texts(["a ripe apple", "a fast train"]))
    assert scores[0] > scores[1]
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"'hashing:48' embeds texts only .*cannot embed"):
        det.score_samples([image])


def test_an_encoder_with_an_image_tower_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        det = HFTTDetector(encoder=HashingEncoder(dim=16), random_state=0).fit(
            WORLD_TEXTS, ["a ripe apple"])
    assert det.score_samples([np.zeros((8, 8, 3), dtype=np.uint8)]).shape == (1,)


def test_cache_dir_is_used_as_given(tmp_path, user_cache_dir):
    folder = tmp_path / "embeddings"
    HFTTDetector(encoder=HashingEncoder(dim=16), cache_dir=folder, random_state=0).fit(
        WORLD_TEXTS, ["a ripe apple"])
    assert any(path.is_file() for path in folder.rglob("*"))


def test_cache_dir_false_keeps_the_cache_in_this_process(user_cache_dir):
    encoder = HashingEncoder(dim=24)
    before = sorted(user_cache_dir.rglob("*"))
    HFTTDetector(encoder=encoder, cache_dir=False, random_state=0).fit(
        WORLD_TEXTS, ["a ripe apple"])
    assert sorted(user_cache_dir.rglob("*")) == before
    encoded = encoder.n_texts_encoded
    HFTTDetector(encoder=encoder, cache_dir=False, random_state=0).fit(
        WORLD_TEXTS, ["a ripe apple"])
    assert encoder.n_texts_encoded == encoded  # the in-process cache answered


def test_cache_dir_true_is_refused_by_name(data):
    with pytest.raises(ValueError, match=r"cache_dir=True names no cache.*False"):
        HFTTDetector(encoder=HashingEncoder(), cache_dir=True).fit(WORLD_TEXTS, ["a cat"])


def test_a_relative_model_directory_is_found_from_any_working_directory(
        tiny_clip_dir, sample_arrays, tmp_path, monkeypatch):
    monkeypatch.chdir(tiny_clip_dir.parent)
    det = HFTTDetector(encoder=tiny_clip_dir.name, device="cpu", n_embeddings=2,
                       random_state=0).fit(WORLD_TEXTS[:60], ["a photo of a flower"])
    assert det.encoder == tiny_clip_dir.name  # the parameter is untouched
    assert det.encoder_spec_ == str(tiny_clip_dir.resolve())
    assert spec_kind(det.encoder_spec_) == "local"
    image = sample_arrays["coffee"]
    expected = det.score_samples([image])
    joblib.dump(det, tmp_path / "det.joblib")
    det.save(tmp_path / "det.safetensors")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for loaded in (joblib.load(tmp_path / "det.joblib"),
                   HFTTDetector.load(tmp_path / "det.safetensors")):
        assert loaded.encoder == tiny_clip_dir.name
        np.testing.assert_array_equal(loaded.score_samples([image]), expected)
