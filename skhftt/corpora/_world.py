"""The bundled default world corpus: English words by descending frequency."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from numbers import Integral

WORLD_TEMPLATE = "This is a photo of a {}."
WORDS_FILE = "world_words_en.txt.gz"


def apply_template(texts: Iterable[str], template: str) -> list[str]:
    """Put every text into the single ``{}`` slot of ``template``.

    Parameters
    ----------
    texts : iterable of str
        The texts to format.
    template : str
        A string with exactly one ``{}``, e.g. ``"This is a photo of a {}."``.
        Other braces are kept literally.

    Returns
    -------
    list of str
        ``template`` with ``{}`` replaced by each text, in order.

    Examples
    --------
    >>> apply_template(["cat", "dog"], "a photo of a {}.")
    ['a photo of a cat.', 'a photo of a dog.']
    """
    prefix, suffix = _split_template(template)
    return [f"{prefix}{text}{suffix}" for text in texts]


def _split_template(template: object) -> tuple[str, str]:
    if not isinstance(template, str):
        raise TypeError(
            f"template must be a str with one '{{}}' slot; got "
            f"{type(template).__name__} ({template!r})."
        )
    parts = template.split("{}")
    if len(parts) != 2:
        raise ValueError(
            f"template must contain exactly one '{{}}' slot; {template!r} has {len(parts) - 1}."
        )
    return parts[0], parts[1]


@lru_cache(maxsize=1)
def _bundled_words() -> tuple[str, ...]:
    data = resources.files("skhftt.corpora") / "data" / WORDS_FILE
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return tuple(line.rstrip("\n") for line in lines)


def world_words(n_words: int | None = None) -> list[str]:
    """Return the bundled English words, most frequent first.

    Parameters
    ----------
    n_words : int, optional
        Keep only the ``n_words`` most frequent words. ``None`` (default)
        returns all of them (292,073).

    Returns
    -------
    list of str
        Lower-case words of two or more letters, in descending frequency.

    See Also
    --------
    load_world_corpus : The same words in a prompt template.

    Examples
    --------
    >>> world_words(5)
    ['the', 'to', 'and', 'of', 'in']
    """
    words = _bundled_words()
    if n_words is None:
        return list(words)
    if isinstance(n_words, bool) or not isinstance(n_words, Integral):
        raise TypeError(
            f"n_words must be an int or None; got {type(n_words).__name__} ({n_words!r})."
        )
    if not 1 <= n_words <= len(words):
        raise ValueError(
            f"n_words must be between 1 and {len(words)} (the size of the bundled "
            f"word list); got {n_words}."
        )
    return list(words[: int(n_words)])


def load_world_corpus(n_words: int | None = None, *, template: str = WORLD_TEMPLATE) -> list[str]:
    """Return the default world corpus: English words in a prompt template.

    The world corpus is the "out" side of HFTT training: a broad, unlabelled
    sample of what images may show. skhftt bundles 292,073 English words
    ranked by frequency (from wordfreq 3.1.1; data under CC BY-SA 4.0), so the
    corpus is available offline and identical on every machine.

    Parameters
    ----------
    n_words : int, optional
        Use only the ``n_words`` most frequent words. ``None`` (default) uses
        all of them.
    template : str, default="This is a photo of a {}."
        Prompt with one ``{}`` slot that each word fills. The default is the
        template of the HFTT reference implementation.

    Returns
    -------
    list of str
        One prompt per word, most frequent word first. The words are distinct,
        so the prompts are too.

    Notes
    -----
    The list is an unfiltered sample of written English: it contains names,
    brands, rare words, misspellings and offensive words. That is intended,
    since the world corpus must cover everything a dataset may contain; the
    HFTT loss down-weights world texts that resemble the task.

    Examples
    --------
    >>> load_world_corpus(2)
    ['This is a photo of a the.', 'This is a photo of a to.']
    >>> load_world_corpus(2, template="a photo of a {}.")
    ['a photo of a the.', 'a photo of a to.']
    >>> len(load_world_corpus()) >= 200_000
    True
    """
    return apply_template(world_words(n_words), template)
