from __future__ import annotations

import numpy as np
import pytest
from _synthetic import make_task_world

from skhftt import HFTTDetector, HFTTEnsembleDetector
from skhftt.detectors import MCMDetector
from skhftt.embedding import Texts
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.removal.explain import explain_scores, nearest_texts

WORDS = "apple banana cherry car bus train dog cat horse river lake sea".split()
WORLD = [f"This is a photo of a {w}." for w in WORDS] + [f"a {a} and a {b}" for a in WORDS
                                                         for b in WORDS if a != b]


@pytest.fixture(scope="module")
def text_detector():
    return HFTTDetector(encoder=HashingEncoder(dim=64), random_state=0, n_embeddings=3).fit(
        WORLD, {"fruit": ["a photo of an apple", "a photo of a banana"]}
    )


def test_nearest_texts_are_sorted_and_match_direct_cosines(text_detector):
    result = nearest_texts(text_detector, WORLD, k=4)
    assert list(result) == ["learned_0", "learned_1", "learned_2"]
    embeddings = HashingEncoder(dim=64).encode_text(WORLD)
    for index, pairs in enumerate(result.values()):
        cosines = embeddings @ text_detector.trainable_columns_[index]
        np.testing.assert_allclose([c for _, c in pairs], np.sort(cosines)[::-1][:4], rtol=1e-5)
        for text, cosine in pairs:
            assert cosines[WORLD.index(text)] == pytest.approx(cosine, rel=1e-5)


def test_explain_scores_names_the_dominant_column(text_detector):
    texts = Texts(["a photo of an apple", "a bus and a train"])
    explanation = explain_scores(text_detector, texts)
    assert explanation.column[0] == "fruit" and explanation.is_task_column[0]
    assert explanation.column[1].startswith("learned_") and not explanation.is_task_column[1]
    assert ((explanation.share > 0) & (explanation.share <= 1)).all()
    np.testing.assert_allclose(
        explanation.scores,
        text_detector.score_samples(texts),
    )


def test_an_ensemble_is_explained_by_its_hftt_columns_and_scored_by_its_blend():
    det = HFTTEnsembleDetector(encoder=HashingEncoder(dim=64), random_state=0, n_embeddings=3,
                               calibration_size=100).fit(
        WORLD, {"fruit": ["a photo of an apple", "a photo of a banana"],
                "animal": ["a photo of a dog", "a photo of a horse"]})
    texts = Texts(["a photo of an apple", "a bus and a train"])
    explanation = explain_scores(det, texts)
    np.testing.assert_allclose(explanation.scores, det.score_samples(texts))
    assert explanation.column[0] == "fruit"
    embeddings = HashingEncoder(dim=64).encode_text(list(texts))
    logits = embeddings @ np.concatenate([det.task_columns_, det.trainable_columns_]).T
    names = ["fruit", "animal", "learned_0", "learned_1", "learned_2"]
    assert explanation.column == [names[i] for i in logits.argmax(1)]
    assert list(nearest_texts(det, WORLD, k=2)) == ["learned_0", "learned_1", "learned_2"]


def test_a_detector_without_learned_columns_is_refused():
    det = MCMDetector(encoder=HashingEncoder(dim=64)).fit(None, ["a photo of an apple"])
    with pytest.raises(TypeError, match="got a MCMDetector, which has no learned columns"):
        explain_scores(det, Texts(["a bus"]))


def test_precomputed_detector_needs_embeddings():
    data = make_task_world(seed=5)
    det = HFTTDetector(encoder="precomputed", random_state=0).fit(data["world"], data["prompts"])
    texts = [f"text {i}" for i in range(len(data["world"]))]
    with pytest.raises(ValueError, match="pass the texts' embeddings"):
        nearest_texts(det, texts)
    result = nearest_texts(det, texts, embeddings=data["world"], k=2)
    assert all(len(pairs) == 2 for pairs in result.values())
    with pytest.raises(ValueError, match="k must be a positive integer"):
        nearest_texts(det, texts, embeddings=data["world"], k=0)
