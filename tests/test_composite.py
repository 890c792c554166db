from __future__ import annotations

import joblib
import numpy as np
import pytest
from _synthetic import make_task_world

from skhftt import HFTTDetector
from skhftt.detectors import MCMDetector
from skhftt.detectors.composite import Concept, MultiConceptDetector
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.embedding.inputs import Texts

WORDS = "apple banana cherry car bus train dog cat horse river lake sea knife sword".split()
WORLD = [f"This is a photo of a {w}." for w in WORDS] + [f"a {a} and a {b}" for a in WORDS
                                                         for b in WORDS if a != b]


@pytest.fixture(scope="module")
def precomputed_concepts():
    data = make_task_world(seed=7, n_classes=4)
    keep = HFTTDetector(encoder="precomputed", random_state=0).fit(data["world"],
                                                                   data["prompts"][:6])
    harm = HFTTDetector(encoder="precomputed", random_state=1, threshold=0.9).fit(
        data["world"], data["prompts"][6:]
    )
    return keep, harm, data


def test_scores_equal_each_detector_and_decisions_follow_orientation(precomputed_concepts):
    keep, harm, data = precomputed_concepts
    multi = MultiConceptDetector({"ood": Concept(keep, "mismatch"),
                                  "harm": Concept(harm, "match")})
    X = np.vstack([data["in_test"], data["out_test"]])
    report = multi.score(X)
    np.testing.assert_allclose(report.scores[:, 0], keep.score_samples(X), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(report.scores[:, 1], harm.score_samples(X), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(report.unwanted[:, 0], keep.predict(X) == -1)
    np.testing.assert_array_equal(report.unwanted[:, 1], harm.predict(X) == 1)
    np.testing.assert_array_equal(report.remove, report.unwanted.any(axis=1))
    for row, names in enumerate(report.triggered):
        assert names == [n for j, n in enumerate(report.names) if report.unwanted[row, j]]


@pytest.mark.parametrize("threshold", [0.999999, 1e-6, 0.3])
@pytest.mark.parametrize("unwanted", ["mismatch", "match"])
def test_threshold_override_is_the_probability_applied(precomputed_concepts, threshold,
                                                       unwanted):
    keep, _, data = precomputed_concepts
    X = np.vstack([data["in_test"], data["out_test"]])
    report = MultiConceptDetector({"c": Concept(keep, unwanted, threshold=threshold)}).score(X)
    cut = np.log(threshold / (1 - threshold))
    matches = report.scores[:, 0] >= cut
    np.testing.assert_array_equal(report.unwanted[:, 0], matches if unwanted == "match"
                                  else ~matches)
    own = keep.predict(X) == (1 if unwanted == "match" else -1)
    assert (report.unwanted[:, 0] != own).any()  # the override is not the detector's own


def test_an_input_exactly_at_the_threshold_matches(precomputed_concepts):
    keep, _, data = precomputed_concepts
    X = data["out_test"]
    scores = MultiConceptDetector({"c": keep}).score(X).scores[:, 0]
    for unwanted, flagged in (("match", True), ("mismatch", False)):
        at = Concept(keep, unwanted, log_odds_threshold=float(scores[3]))
        report = MultiConceptDetector({"c": at}).score(X)
        assert report.unwanted[3, 0] == flagged
        np.testing.assert_array_equal(report.unwanted[:, 0],
                                      (scores >= scores[3]) == (unwanted == "match"))


def test_inputs_are_encoded_once_for_all_concepts():
    encoder = HashingEncoder(dim=64)
    fruit = HFTTDetector(encoder=encoder, random_state=0).fit(WORLD, ["an apple", "a cherry"])
    weapons = HFTTDetector(encoder=encoder, random_state=0).fit(WORLD, ["a knife", "a sword"])
    multi = MultiConceptDetector({"fruit": fruit, "weapons": Concept(weapons, "match")})
    before = encoder.n_texts_encoded
    report = multi.score(Texts(["a red apple", "a sharp knife", "a river"]))
    assert encoder.n_texts_encoded - before == 3
    assert "weapons" in report.triggered[1]


def test_log_odds_offset_beyond_float_probabilities(precomputed_concepts):
    keep, _, data = precomputed_concepts
    X = np.vstack([data["in_test"], data["out_test"]])
    scores = keep.score_samples(X)
    cut = float(np.median(scores))
    concept = Concept(keep, "mismatch", log_odds_threshold=cut)
    report = MultiConceptDetector({"ood": concept}).score(X)
    np.testing.assert_array_equal(report.remove, report.scores[:, 0] < cut)
    np.testing.assert_allclose(report.scores[:, 0], scores, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="threshold or its log_odds_threshold, not both"):
        Concept(keep, threshold=0.5, log_odds_threshold=1.0)


def test_detectors_from_different_spaces_are_refused(precomputed_concepts):
    keep, _, _ = precomputed_concepts
    texts = HFTTDetector(encoder=HashingEncoder(dim=32), random_state=0).fit(WORLD, ["a dog"])
    with pytest.raises(ValueError, match=r"different embedding spaces.*'hashing:32'"):
        MultiConceptDetector({"a": keep, "b": texts})
    other = HFTTDetector(encoder=HashingEncoder(dim=16), random_state=0).fit(WORLD, ["a dog"])
    with pytest.raises(ValueError, match="width 32 vs 'hashing:16', width 16"):
        MultiConceptDetector({"a": texts, "b": other})


def test_bad_concepts_are_named(precomputed_concepts):
    keep, _, _ = precomputed_concepts
    with pytest.raises(ValueError, match="concepts is empty"):
        MultiConceptDetector({})
    with pytest.raises(ValueError, match="unwanted must be 'match' or 'mismatch'; got 'in'"):
        MultiConceptDetector({"a": Concept(keep, "in")})
    zero_shot = MCMDetector(encoder="precomputed").fit(None, np.eye(2, 32))
    with pytest.raises(TypeError, match="concept 'z': a MCMDetector has no HFTT head"):
        MultiConceptDetector({"a": keep, "z": zero_shot})


def test_save_load_and_joblib_round_trip(tmp_path, precomputed_concepts):
    keep, harm, data = precomputed_concepts
    multi = MultiConceptDetector({"ood": Concept(keep, "mismatch", threshold=0.3),
                                  "harm": Concept(harm, "match", log_odds_threshold=2.5)})
    multi.save(tmp_path / "multi")
    loaded = MultiConceptDetector.load(tmp_path / "multi")
    X = data["out_test"]
    np.testing.assert_array_equal(loaded.score(X).scores, multi.score(X).scores)
    np.testing.assert_array_equal(loaded.score(X).unwanted, multi.score(X).unwanted)
    joblib.dump(multi, tmp_path / "multi.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "multi.joblib").score(X).scores,
                                  multi.score(X).scores)
    with pytest.raises(ValueError, match="not a saved multi-concept detector"):
        MultiConceptDetector.load(tmp_path)
