"""WordNet 3.0 noun and adjective lemmas: the candidate labels of NegLabel and CSP."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Literal, NamedTuple

WORDNET_FILE = "wordnet_lemmas.tsv.gz"
WORDNET_POS = ("noun", "adj")


class WordNetLemmas(NamedTuple):
    """Lemmas of one part of speech and the lexicographer category of each.

    Attributes
    ----------
    lemmas : list of str
        Head lemmas (the first word of each synset), lower case, spaces for
        underscores, each once, in WordNet's synset order.
    categories : list of str
        ``categories[i]`` is the lexicographer file of ``lemmas[i]``'s synset,
        e.g. ``"noun.plant"``, ``"adj.all"``, ``"adj.pert"``.
    """

    lemmas: list[str]
    categories: list[str]


@lru_cache(maxsize=1)
def _bundled() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    data = resources.files("skhftt.corpora") / "data" / WORDNET_FILE
    rows: dict[str, tuple[list[str], list[str]]] = {pos: ([], []) for pos in WORDNET_POS}
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        for line in lines:
            pos, category, lemma = line.rstrip("\n").split("\t")
            rows[pos][0].append(lemma)
            rows[pos][1].append(category)
    return {pos: (tuple(lemmas), tuple(cats)) for pos, (lemmas, cats) in rows.items()}


def wordnet_lemmas(
    pos: Literal["noun", "adj"], *, exclude_categories: Iterable[str] = ()
) -> WordNetLemmas:
    """Return the bundled WordNet 3.0 head lemmas of nouns or adjectives.

    The candidate pools of NegLabel (Jiang et al., ICLR 2024) and CSP (Chen
    et al., NeurIPS 2024): the first lemma of every WordNet 3.0 synset,
    deduplicated per part of speech: 67,186 nouns and 14,006 adjectives.
    Lemma names only; WordNet's glosses are not bundled.

    Parameters
    ----------
    pos : {"noun", "adj"}
        Part of speech.
    exclude_categories : iterable of str, default=()
        Lexicographer categories to leave out, e.g. ``("noun.person",)``;
        each must be a category of ``pos``.

    Returns
    -------
    WordNetLemmas
        A named tuple ``(lemmas, categories)`` of two equally long lists.

    Raises
    ------
    ValueError
        ``pos`` is not ``"noun"`` or ``"adj"``, or a category of
        ``exclude_categories`` does not exist for ``pos``.

    Examples
    --------
    >>> nouns = wordnet_lemmas("noun")
    >>> len(nouns.lemmas), nouns.lemmas[0], nouns.categories[0]
    (67186, 'entity', 'noun.Tops')
    >>> people = wordnet_lemmas("noun", exclude_categories=["noun.person"])
    >>> "noun.person" in people.categories
    False
    """
    if pos not in WORDNET_POS:
        raise ValueError(f"pos must be one of {list(WORDNET_POS)}; got {pos!r}.")
    lemmas, categories = _bundled()[pos]
    excluded = set(exclude_categories)
    unknown = sorted(excluded - set(categories))
    if unknown:
        raise ValueError(
            f"exclude_categories has {unknown}, which are not {pos} categories; "
            f"the {pos} categories are {sorted(set(categories))}."
        )
    kept = [i for i, category in enumerate(categories) if category not in excluded]
    return WordNetLemmas([lemmas[i] for i in kept], [categories[i] for i in kept])
