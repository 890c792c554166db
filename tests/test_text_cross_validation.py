"""Text-only model selection: GridSearchCV splits Texts into Texts, and scorers embed them."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

from skhftt import HFTTDetector
from skhftt.embedding import Texts
from skhftt.embedding.encoders.hashing import HashingEncoder

FRUIT = ["apple", "pear", "plum", "cherry", "grape", "mango", "melon", "lemon"]
OTHER = ["engine", "bridge", "tower", "laptop", "river", "cloud", "street", "guitar",
         "pencil", "window", "ladder", "bottle", "garden", "rocket", "carpet", "wallet"]


def _pu_texts():
    task = [f"a ripe {word} fruit" for word in FRUIT]
    world = [f"a photo of a {word}" for word in OTHER] + [f"a {w} on a table" for w in OTHER]
    texts = Texts(task + world)
    y = np.array([1] * len(task) + [0] * len(world))
    return texts, y


def test_texts_index_by_positions_and_masks_into_texts():
    texts = Texts(["a", "b", "c", "d"])
    assert texts.shape == (4,)
    assert texts[np.array([3, 0])] == ["d", "a"] and isinstance(texts[np.array([3, 0])], Texts)
    assert texts[np.array([True, False, True, False])] == ["a", "c"]
    assert isinstance(texts[1:3], Texts) and texts[1] == "b"
    assert texts[(np.array([2]), Ellipsis)] == ["c"]
    with pytest.raises(IndexError, match="boolean mask"):
        texts[np.array([True, False])]


def test_cross_validation_folds_stay_texts():
    texts, y = _pu_texts()
    det = HFTTDetector(encoder=HashingEncoder(dim=32), n_embeddings=2, cache_dir=False,
                       random_state=0)
    scores = cross_val_score(det, texts, y, scoring="roc_auc",
                             cv=StratifiedKFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,)
    # Fruit prompts share the word "fruit" and differ from every world text.
    assert scores.mean() > 0.9


def test_grid_search_on_plain_texts_selects_and_refits():
    texts, y = _pu_texts()
    search = GridSearchCV(
        HFTTDetector(encoder=HashingEncoder(dim=32), cache_dir=False, random_state=0),
        {"n_embeddings": [1, 4]},
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(texts, y)
    assert search.best_params_["n_embeddings"] in (1, 4)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.predict(Texts(["a ripe plum fruit"]))[0] == 1
