"""The candidate pools of NegLabel and CSP: WordNet lemmas in their reference prompts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from skhftt.corpora._wordnet import wordnet_lemmas
from skhftt.corpora._world import apply_template

__all__ = [
    "CSP_ADJECTIVE_TEMPLATES",
    "CSP_EXCLUDED_CATEGORIES",
    "CSP_NOUN_TEMPLATES",
    "CSP_SUPERCLASSES",
    "NEGLABEL_ADJECTIVE_TEMPLATE",
    "NEGLABEL_NOUN_TEMPLATE",
    "csp_pool",
    "neglabel_pool",
]

NEGLABEL_NOUN_TEMPLATE = "the nice {}"
"""NegLabel's noun prompt (its reference config, ``prompt_idx_neg=85``)."""
NEGLABEL_ADJECTIVE_TEMPLATE = "This is a {} photo"
"""NegLabel's adjective prompt."""
CSP_NOUN_TEMPLATES = (
    "a close-up photo of the nice {}.",
    "a photo with the nice {}.",
    "a good photo with the nice {}.",
    "a photo of the nice {}.",
    "{}",
    "the {}",
    "the good {}",
    "the nice {}",
)
"""CSP's 8 noun prompts; a noun's column is the unit mean of the 8."""
CSP_ADJECTIVE_TEMPLATES = (
    "{}", "a nice photo of {}", "a good photo of {}", "a close-up photo of {}",
)
"""CSP's 4 prompts of a conjugated adjective ("striped pattern")."""
CSP_SUPERCLASSES = (
    "environment", "space", "object", "scene", "place", "item", "area", "view", "thing",
    "pattern", "structure", "landscape", "vista", "creature",
)
"""The words CSP joins its adjectives to."""
CSP_EXCLUDED_CATEGORIES = ("noun.person", "noun.quantity", "noun.group", "adj.pert")
"""The WordNet lexicographer categories CSP leaves out (its config's ``txt_exclude``)."""


def neglabel_pool() -> dict[str, list[str]]:
    """NegLabel's candidate labels: WordNet nouns and adjectives in the reference prompts.

    Returns
    -------
    dict
        ``{"noun": ["the nice entity", ...], "adj": ["This is a able photo", ...]}``:
        67,186 and 14,006 texts, in :func:`skhftt.corpora.wordnet_lemmas` order.

    See Also
    --------
    skhftt.detectors.NegLabelDetector : Mines its negative labels from this pool.

    Examples
    --------
    >>> from skhftt.corpora import neglabel_pool
    >>> pool = neglabel_pool()
    >>> len(pool["noun"]), pool["adj"][0]
    (67186, 'This is a able photo')
    """
    return {
        "noun": apply_template(wordnet_lemmas("noun").lemmas, NEGLABEL_NOUN_TEMPLATE),
        "adj": apply_template(wordnet_lemmas("adj").lemmas, NEGLABEL_ADJECTIVE_TEMPLATE),
    }


def csp_pool(
    *,
    noun_templates: Sequence[str] | None = None,
    adjective_templates: Sequence[str] | None = None,
    superclasses: Sequence[str] | None = None,
    exclude_categories: Sequence[str] | None = None,
) -> dict[str, tuple[list[str], list[str]]]:
    """CSP's candidate labels and the templates each is prompted with.

    Each adjective is joined to a superclass word drawn by a generator seeded
    with 0 over the whole adjective list (so the pairing does not depend on
    the exclusions); the excluded categories are dropped afterwards.

    Parameters
    ----------
    noun_templates : list of str, default=None
        Templates of the nouns, one ``{}`` each; None is
        :data:`CSP_NOUN_TEMPLATES`.
    adjective_templates : list of str, default=None
        Templates of the conjugated adjectives; None is
        :data:`CSP_ADJECTIVE_TEMPLATES`.
    superclasses : list of str, default=None
        Words the adjectives are joined to; None is :data:`CSP_SUPERCLASSES`.
    exclude_categories : list of str, default=None
        WordNet lexicographer categories left out; None is
        :data:`CSP_EXCLUDED_CATEGORIES`, ``[]`` keeps every category.

    Returns
    -------
    dict
        ``{"noun": (labels, templates), "adj": (labels, templates)}``; a
        candidate's column is the unit mean of ``template.format(label)``
        over its part's templates. With the defaults, 55,967 nouns and
        11,047 adjectives: 491,924 prompts.

    Raises
    ------
    ValueError
        An empty template or superclass list, a template without exactly
        one ``{}``, or a category that is not a WordNet noun or adjective
        category.

    See Also
    --------
    skhftt.detectors.CSPDetector : Mines its negative labels from this pool.

    Examples
    --------
    >>> from skhftt.corpora import csp_pool
    >>> labels, templates = csp_pool()["adj"]
    >>> len(labels), labels[0], templates[1]
    (11047, 'able landscape', 'a nice photo of {}')
    """
    nouns = _templates(noun_templates, CSP_NOUN_TEMPLATES, "noun_templates")
    adjectives = _templates(adjective_templates, CSP_ADJECTIVE_TEMPLATES, "adjective_templates")
    words = list(CSP_SUPERCLASSES if superclasses is None else superclasses)
    if not words:
        raise ValueError("superclasses is empty; give at least one word, or None.")
    excluded = list(CSP_EXCLUDED_CATEGORIES if exclude_categories is None else exclude_categories)
    foreign = [c for c in excluded if not str(c).startswith(("noun.", "adj."))]
    if foreign:
        raise ValueError(
            f"exclude_categories has {foreign}; WordNet noun and adjective categories "
            "start with 'noun.' or 'adj.' (e.g. 'noun.person', 'adj.pert')."
        )
    pool = {}
    for pos, templates in (("noun", nouns), ("adj", adjectives)):
        every = wordnet_lemmas(pos)
        kept = set(wordnet_lemmas(pos, exclude_categories=[
            c for c in excluded if c.startswith(f"{pos}.")]).lemmas)
        labels = every.lemmas
        if pos == "adj":
            drawn = np.random.default_rng(0).integers(len(words), size=len(labels))
            labels = [f"{lemma} {words[i]}" for lemma, i in zip(labels, drawn, strict=True)]
        pool[pos] = ([label for label, lemma in zip(labels, every.lemmas, strict=True)
                      if lemma in kept], templates)
    return pool


def _templates(given: Sequence[str] | None, default: Sequence[str], name: str) -> list[str]:
    templates = list(default if given is None else given)
    if not templates:
        raise ValueError(f"{name} is empty; give at least one template, or None.")
    for template in templates:
        apply_template([], template)  # exactly one '{}' slot, or a clear error
    return templates
