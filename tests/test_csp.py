"""CSPDetector and NegLabel's WordNet pool: formulas against direct numpy, plumbing, state."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from _synthetic import make_task_world, unit
from scipy.special import expit

from skhftt.corpora import CSP_SUPERCLASSES, WordNetLemmas, _pools
from skhftt.detectors import CSPDetector, NegLabelDetector, load_detector
from skhftt.detectors.negative_labels import negative_counts
from skhftt.embedding.encoders.hashing import HashingEncoder


@pytest.fixture(scope="module")
def data():
    task = make_task_world(n_classes=4, prompts_per_class=3, dim=16, seed=3)
    rng = np.random.default_rng(7)
    # A pool in two parts; the adjectives come as blocks of 4 prompts each.
    task["noun"] = unit(rng.normal(size=(120, 16)))
    task["adj"] = rng.normal(size=(50, 4, 16))
    # Two nouns that are near-copies of task columns: CSP passes over them.
    columns = unit(task["prompts"].reshape(4, 3, -1).mean(axis=1))
    task["noun"][:2] = unit(columns[:2] + 0.01)
    task["columns"] = columns
    task["test"] = np.vstack([task["in_test"][:30], task["out_test"][:30]])
    return task


def _classes(data):
    return {f"c{c}": data["prompts"][3 * c : 3 * c + 3] for c in range(4)}


def _by_hand(data, frac, percentile, max_similarity, n_groups, temperature, negatives_order):
    """Mining and grouped score written out in float64."""
    columns = data["columns"].astype(np.float64)
    parts = [data["noun"].astype(np.float64), unit(data["adj"].mean(axis=1)).astype(np.float64)]
    chosen = []
    for part in parts:
        cos = part @ columns.T
        close = np.percentile(cos, percentile, axis=1)
        if max_similarity is not None:
            close[cos.max(axis=1) > max_similarity] = np.inf
        chosen.append(part[np.argsort(close, kind="stable")[: int(frac * len(part))]])
    x = unit(data["test"]).astype(np.float64)
    positive = np.exp(x @ columns.T / temperature).sum(axis=1)
    negative = np.exp(x @ negatives_order.astype(np.float64).T / temperature)
    groups = np.array_split(np.arange(len(negatives_order)), n_groups)
    score = np.mean([positive / (positive + negative[:, g].sum(axis=1)) for g in groups], axis=0)
    return chosen, score


@pytest.mark.parametrize("n_groups", [1, 4])
def test_csp_matches_its_formula(data, n_groups):
    pool = {"noun": data["noun"], "adj": data["adj"]}
    det = CSPDetector(encoder="precomputed", candidates=pool, n_negatives=0.2, n_groups=n_groups,
                      temperature=0.2, random_state=0).fit(None, _classes(data))
    chosen, expected = _by_hand(data, 0.2, 95, 0.95, n_groups, 0.2, det.negative_columns_)
    # Each part gives 20 % of itself; the near-copies of task columns are never chosen.
    assert det.negative_parts_.count("noun") == 24 and det.negative_parts_.count("adj") == 10
    assert not {0, 1} & {i for i, p in zip(det.negative_indices_, det.negative_parts_,
                                          strict=True) if p == "noun"}
    got = {p: det.negative_columns_[np.array(det.negative_parts_) == p] for p in ("noun", "adj")}
    for part, rows in zip(("noun", "adj"), chosen, strict=True):
        np.testing.assert_allclose(np.sort(got[part], axis=0), np.sort(rows, axis=0), atol=1e-6)
    np.testing.assert_allclose(expit(det.score_samples(data["test"])), expected, rtol=1e-5)


def test_neglabel_on_a_pool_mines_each_part_and_keeps_synonyms(data):
    pool = {"noun": data["noun"], "adj": data["adj"]}
    det = NegLabelDetector(encoder="precomputed", candidates=pool, n_negatives=0.2, n_groups=1,
                           temperature=0.2).fit(None, _classes(data))
    chosen, expected = _by_hand(data, 0.2, 95, None, 1, 0.2, det.negative_columns_)
    np.testing.assert_allclose(det.negative_columns_, np.vstack(chosen), atol=1e-6)
    np.testing.assert_allclose(expit(det.score_samples(data["test"])), expected, rtol=1e-5)


def test_negative_counts():
    assert negative_counts(0.15, [67186, 14006], source="pool") == [10077, 2100]
    assert negative_counts(10, [70, 30], source="pool") == [7, 3]
    assert sum(negative_counts(7, [5, 5, 5], source="pool")) == 7
    with pytest.raises(ValueError, match="n_negatives=200 exceeds the 100 texts of the pool"):
        negative_counts(200, [70, 30], source="pool")


NOUNS = WordNetLemmas(["dog", "oak", "teacher", "violin", "granite", "meadow"],
                      ["noun.animal", "noun.plant", "noun.person", "noun.artifact",
                       "noun.substance", "noun.object"])
ADJECTIVES = WordNetLemmas(["red", "wooden", "solar", "furry"],
                           ["adj.all", "adj.all", "adj.pert", "adj.all"])


class CountingEncoder(HashingEncoder):
    """The hashing encoder, remembering every text it embedded."""

    def __init__(self):
        super().__init__(dim=32)
        self.seen = []

    def encode_text(self, texts, **kwargs):
        self.seen.extend(texts)
        return super().encode_text(texts, **kwargs)


@pytest.fixture
def small_wordnet(monkeypatch):
    def lemmas(pos, *, exclude_categories=()):
        found = NOUNS if pos == "noun" else ADJECTIVES
        kept = [i for i, c in enumerate(found.categories) if c not in set(exclude_categories)]
        return WordNetLemmas([found.lemmas[i] for i in kept],
                             [found.categories[i] for i in kept])

    monkeypatch.setattr(_pools, "wordnet_lemmas", lemmas)


def test_neglabel_default_is_the_reference_wordnet_pool(small_wordnet):
    encoder = CountingEncoder()
    det = NegLabelDetector(encoder=encoder, n_groups=1, n_negatives=0.5, cache_dir=False)
    det.fit(None, ["cat", "bird"])
    assert "the nice violin" in encoder.seen and "This is a wooden photo" in encoder.seen
    assert det.negative_parts_.count("noun") == 3 and det.negative_parts_.count("adj") == 2
    assert all(label.startswith(("the nice ", "This is a ")) for label in det.negative_labels_)


def test_neglabel_world_candidates_keep_the_old_behaviour(data):
    old = NegLabelDetector(encoder="precomputed", n_negatives=60, n_groups=1)
    new = NegLabelDetector(encoder="precomputed", n_negatives=60, n_groups=1,
                           candidates="world")
    a, b = old.fit(data["world"], _classes(data)), new.fit(data["world"], _classes(data))
    np.testing.assert_array_equal(a.negative_indices_, b.negative_indices_)
    assert set(a.negative_parts_) == {"world"}


def test_csp_pool_conjugates_adjectives_and_drops_categories(small_wordnet):
    encoder = CountingEncoder()
    det = CSPDetector(encoder=encoder, n_groups=1, n_negatives=0.5, cache_dir=False,
                      noun_templates=["a photo of a {}.", "{}"],
                      adjective_templates=["{}", "a nice photo of {}"])
    det.fit(None, ["cat", "bird"])
    # Persons and pertainyms are left out; each noun gets both templates.
    assert "a photo of a teacher." not in encoder.seen and "teacher" not in encoder.seen
    assert {"a photo of a violin.", "violin"} <= set(encoder.seen)
    conjugated = [t for t in encoder.seen if t.split()[0] in {"red", "wooden", "furry"}]
    assert len(conjugated) == 3 and not any(t.startswith("solar") for t in encoder.seen)
    assert all(t.split()[1] in CSP_SUPERCLASSES for t in conjugated)
    assert {f"a nice photo of {t}" for t in conjugated} <= set(encoder.seen)
    assert det.negative_parts_.count("noun") == 2 and det.negative_parts_.count("adj") == 1


def test_wordnet_pool_needs_an_encoder(data):
    for det in (CSPDetector(encoder="precomputed"), NegLabelDetector(encoder="precomputed")):
        with pytest.raises(ValueError, match="cannot embed the WordNet lemmas"):
            det.fit(None, _classes(data))


def test_bad_csp_parameters(data):
    pool = {"noun": data["noun"]}
    with pytest.raises(ValueError, match="exclude_categories"):
        CSPDetector(encoder=HashingEncoder(), exclude_categories=["verb.motion"]).fit(
            None, ["cat"])
    with pytest.raises(ValueError, match="max_similarity"):
        CSPDetector(encoder="precomputed", candidates=pool, max_similarity=2.0).fit(
            None, _classes(data))
    with pytest.raises(ValueError, match="width"):
        CSPDetector(encoder="precomputed", candidates={"noun": np.eye(8)}).fit(
            None, _classes(data))


def test_csp_is_deterministic_and_round_trips(data, tmp_path):
    pool = {"noun": data["noun"], "adj": data["adj"]}

    def fit(seed):
        return CSPDetector(encoder="precomputed", candidates=pool, n_negatives=0.2, n_groups=4,
                           random_state=seed).fit(None, _classes(data))

    first, again, other = fit(0), fit(0), fit(1)
    np.testing.assert_array_equal(first.negative_columns_, again.negative_columns_)
    assert not np.array_equal(first.negative_columns_, other.negative_columns_)
    X = data["test"]
    joblib.dump(first, tmp_path / "csp.joblib")
    # A pool of arrays is a parameter without a plain value: joblib only.
    with pytest.raises(TypeError, match="candidates"):
        first.save(tmp_path / "csp.safetensors")
    np.testing.assert_array_equal(joblib.load(tmp_path / "csp.joblib").score_samples(X),
                                  first.score_samples(X))


def test_wordnet_neglabel_saves_without_pickle(small_wordnet, tmp_path):
    det = NegLabelDetector(encoder=HashingEncoder(dim=32), n_groups=2, n_negatives=0.5,
                           random_state=0, cache_dir=False)
    det.fit(None, ["cat", "bird"])
    det.save(tmp_path / "nl.safetensors")
    loaded = load_detector(tmp_path / "nl.safetensors", encoder=HashingEncoder(dim=32))
    assert loaded.negative_labels_ == det.negative_labels_
    assert loaded.negative_parts_ == det.negative_parts_
    X = unit(np.random.default_rng(0).normal(size=(5, 32)))
    np.testing.assert_array_equal(loaded.score_samples(X), det.score_samples(X))


def test_the_pool_is_embedded_in_chunks_with_one_progress_report(small_wordnet, monkeypatch,
                                                                 capsys):
    """491,924 prompts in chunks of 4,096 candidates gave 17 progress lines, each with its own
    time left; now one report covers the pool while memory stays bounded by the chunks."""
    from skhftt.detectors import negative_labels

    monkeypatch.setattr(negative_labels, "_CANDIDATE_CHUNK", 2)
    encoder = CountingEncoder()
    calls = []
    encode_text = encoder.encode_text
    monkeypatch.setattr(encoder, "encode_text",
                        lambda texts, **kwargs: calls.append(len(texts)) or encode_text(texts,
                                                                                   **kwargs))
    # Prompts of their own: the in-process cache holds those of the other tests.
    CSPDetector(encoder=encoder, n_groups=1, n_negatives=0.5, cache_dir=False, verbose=1,
                noun_templates=["chunked {}", "a chunked {}"],
                adjective_templates=["chunked {}", "a chunked {}", "the chunked {}", "{} chunk"],
                ).fit(None, ["a chunked cat", "a chunked bird"])
    # 5 nouns (no person) x 2 prompts and 3 adjectives (no pertainym) x 4, two candidates a
    # chunk; the task first.
    assert calls == [2, 4, 4, 2, 8, 4]
    err = capsys.readouterr().err
    assert err.count("Encoding texts:   0%") == 1  # the task's
    assert err.count("Encoding CSP pool prompts:   0%") == 1 and "/22 " in err
