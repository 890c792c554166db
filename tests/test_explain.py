from __future__ import annotations

import numpy as np
import pytest
from _synthetic import make_task_world

from skhftt import HFTTDetector
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
