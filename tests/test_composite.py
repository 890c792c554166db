from __future__ import annotations

import copy
import json

import joblib
import numpy as np
import pytest
from _synthetic import make_task_world

from skhftt import HFTTDetector
from skhftt.detectors import CSPDetector, HFTTEnsembleDetector, MCMDetector
from skhftt.detectors.composite import Concept, MultiConceptDetector
from skhftt.embedding.encoders.hashing import HashingEncoder
from skhftt.embedding.inputs import Texts

WORDS = "apple banana cherry car bus train dog cat horse river lake sea knife sword".split()


def job(detector, unwanted):
    """A copy of a fitted detector made for the job ``unwanted`` (same scores)."""
    return copy.deepcopy(detector).set_params(unwanted=unwanted)


WORLD = [f"This is a photo of a {w}." for w in WORDS] + [f"a {a} and a {b}" for a in WORDS
                                                         for b in WORDS if a != b]


@pytest.fixture(scope="module")
def precomputed_concepts():
    data = make_task_world(seed=7, n_classes=4)
    keep = HFTTDetector(encoder="precomputed", random_state=0).fit(data["world"],
                                                                   data["prompts"][:6])
    harm = HFTTDetector(encoder="precomputed", random_state=1, threshold=0.9,
                        unwanted="match").fit(
        data["world"], data["prompts"][6:]
    )
    return keep, harm, data


def test_scores_equal_each_detector_and_decisions_follow_orientation(precomputed_concepts):
    keep, harm, data = precomputed_concepts
    multi = MultiConceptDetector({"ood": keep, "harm": harm})
    assert [c.unwanted for c in multi.concepts.values()] == ["mismatch", "match"]
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
    report = MultiConceptDetector({"c": Concept(job(keep, unwanted),
                                                threshold=threshold)}).score(X)
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
        at = Concept(job(keep, unwanted), score_threshold=float(scores[3]))
        report = MultiConceptDetector({"c": at}).score(X)
        assert report.unwanted[3, 0] == flagged
        np.testing.assert_array_equal(report.unwanted[:, 0],
                                      (scores >= scores[3]) == (unwanted == "match"))


def test_inputs_are_encoded_once_for_all_concepts():
    encoder = HashingEncoder(dim=64)
    fruit = HFTTDetector(encoder=encoder, random_state=0).fit(WORLD, ["an apple", "a cherry"])
    weapons = HFTTDetector(encoder=encoder, unwanted="match", random_state=0).fit(
        WORLD, ["a knife", "a sword"])
    multi = MultiConceptDetector({"fruit": fruit, "weapons": weapons})
    before = encoder.n_texts_encoded
    report = multi.score(Texts(["a red apple", "a sharp knife", "a river"]))
    assert encoder.n_texts_encoded - before == 3
    assert "weapons" in report.triggered[1]


def test_score_threshold_beyond_float_probabilities(precomputed_concepts):
    keep, _, data = precomputed_concepts
    X = np.vstack([data["in_test"], data["out_test"]])
    scores = keep.score_samples(X)
    cut = float(np.median(scores))
    concept = Concept(keep, "mismatch", score_threshold=cut)
    report = MultiConceptDetector({"ood": concept}).score(X)
    np.testing.assert_array_equal(report.remove, report.scores[:, 0] < cut)
    np.testing.assert_allclose(report.scores[:, 0], scores, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="threshold or its score_threshold, not both"):
        Concept(keep, threshold=0.5, score_threshold=1.0)


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
    with pytest.raises(ValueError, match="unwanted must be 'mismatch' or 'match'; got 'in'"):
        MultiConceptDetector({"a": Concept(keep, "in")})
    with pytest.raises(ValueError, match=r"unwanted='match' contradicts .*unwanted='mismatch'"):
        MultiConceptDetector({"a": Concept(keep, "match")})


def test_save_load_and_joblib_round_trip(tmp_path, precomputed_concepts):
    keep, harm, data = precomputed_concepts
    multi = MultiConceptDetector({"ood": Concept(keep, threshold=0.3),
                                  "harm": Concept(harm, score_threshold=2.5)})
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


def test_any_detector_kinds_combine_each_with_its_job(precomputed_concepts):
    _, harm, data = precomputed_concepts
    world, prompts = data["world"], data["prompts"]
    pool = {"noun": world[:200], "adj": world[200:300]}
    csp = CSPDetector(encoder="precomputed", candidates=pool, n_negatives=0.2, n_groups=2,
                      random_state=0).fit(None, prompts[:6])
    ensemble = HFTTEnsembleDetector(encoder="precomputed", unwanted="match", n_embeddings=3,
                                    random_state=0).fit(world, prompts[6:])
    mcm = MCMDetector(encoder="precomputed").fit(None, prompts[:6])
    X = np.vstack([data["in_test"], data["out_test"]])
    mcm.set_threshold(float(np.median(mcm.score_samples(X))))
    members = {"csp": csp, "ensemble": ensemble, "hftt": harm, "mcm": mcm}
    multi = MultiConceptDetector(members)
    report = multi.score(X)
    for j, (name, detector) in enumerate(members.items()):
        np.testing.assert_allclose(report.scores[:, j], detector.score_samples(X), rtol=1e-6,
                                   err_msg=name)
        side = 1 if detector.unwanted == "match" else -1
        np.testing.assert_array_equal(report.unwanted[:, j], detector.predict(X) == side,
                                      err_msg=name)
    assert report.unwanted.any(axis=0).all() and not report.unwanted.all(axis=0).any()


def test_a_concept_directory_of_0_2_keeps_the_side_its_manifest_gave(tmp_path,
                                                                    precomputed_concepts):
    keep, _, data = precomputed_concepts
    MultiConceptDetector({"ood": keep}).save(tmp_path)
    manifest = json.loads((tmp_path / "concepts.json").read_text())
    entry = manifest["concepts"][0]
    # What skhftt 0.2 wrote: the side in the manifest, none in the (keep) detector file.
    entry["unwanted"] = "match"
    entry["log_odds_threshold"] = entry.pop("score_threshold")
    (tmp_path / "concepts.json").write_text(json.dumps(manifest))
    loaded = MultiConceptDetector.load(tmp_path)
    assert loaded.concepts["ood"].unwanted == "match"
    np.testing.assert_array_equal(loaded.score(data["in_test"]).unwanted[:, 0],
                                  keep.predict(data["in_test"]) == 1)
