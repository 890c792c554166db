"""Regenerate the bundled English word list from wordfreq.

The package ships ``data/world_words_en.txt.gz``, made by this module from the
English "large" list of wordfreq 3.1.1. wordfreq is needed only to rebuild the
file, never to use skhftt::

    pip install "wordfreq==3.1.1"
    python -m skhftt.corpora._build

The file holds one word per line, in wordfreq's order: descending frequency,
alphabetical within a frequency band. Only tokens of two or more lower-case
Latin letters (ASCII and Latin-1 accented letters) are kept; wordfreq's number
placeholders, abbreviations with dots, possessives, emoji and other scripts are
dropped.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from importlib import metadata, resources
from pathlib import Path

from skhftt.corpora._world import WORDS_FILE

WORD_PATTERN = re.compile(r"[a-zà-öø-ÿ]{2,}")
WORDFREQ_VERSION = "3.1.1"


def filter_words(tokens: Iterable[str]) -> Iterator[str]:
    """Yield the tokens that are words of two or more lower-case Latin letters."""
    seen: set[str] = set()
    for token in tokens:
        if WORD_PATTERN.fullmatch(token) and token not in seen:
            seen.add(token)
            yield token


def wordfreq_words() -> list[str]:
    """Return the filtered English words of wordfreq, most frequent first."""
    import wordfreq

    return list(filter_words(wordfreq.iter_wordlist("en", wordlist="large")))


def write_words(words: Iterable[str], path: str | Path) -> None:
    """Write ``words`` one per line to a reproducible gzip file at ``path``."""
    payload = "".join(f"{word}\n" for word in words).encode("utf-8")
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
    ):
        gz.write(payload)


def main() -> None:
    """Rewrite the bundled word list in place."""
    installed = metadata.version("wordfreq")
    if installed != WORDFREQ_VERSION:
        raise RuntimeError(
            f"wordfreq {installed} is installed; the bundled list is built from "
            f"wordfreq {WORDFREQ_VERSION}: pip install 'wordfreq=={WORDFREQ_VERSION}'."
        )
    target = Path(str(resources.files("skhftt.corpora") / "data" / WORDS_FILE))
    words = wordfreq_words()
    write_words(words, target)
    print(f"wrote {len(words)} words to {target}")


if __name__ == "__main__":
    main()
