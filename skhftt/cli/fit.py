"""``skhftt fit``: fit a detector for a job (what to keep, or what to remove) and save it."""

from __future__ import annotations

import argparse
from typing import Any

from skhftt.cli._common import (
    add_world_options,
    check_device,
    check_inputs_exist,
    check_output_file,
    command_parser,
    encoder_errors,
    encoder_spec,
    non_negative_float,
    positive,
    positive_float,
    read_world,
)

SUMMARY = "fit a detector for a job and save it"
EXAMPLES = """\
  skhftt fit -o imagenet.safetensors --imagenet
  skhftt fit -o pets.safetensors --keep 'a photo of a dog' 'a photo of a cat'
  skhftt fit -o hateful.safetensors --remove 'a hateful symbol' 'a swastika'
  skhftt fit -o weapons.safetensors --remove-file weapons.txt --templates imagenet
  skhftt fit -o paper.safetensors --keep 'a dog' --detector hftt --world-words 20000
  skhftt fit -o offline.safetensors --keep flower --encoder /path/to/clip-dir
  skhftt fit -o emb.joblib --encoder precomputed --detector hftt \\
      --keep-file task.npy --world world.npy
"""
DETECTORS = ("csp", "hftt", "ensemble", "neglabel", "mcm", "maxlogit", "energy")
# The default detector of each job (docs/user_guide.md, "Which detector for which job").
DEFAULT_DETECTOR = {"mismatch": "csp", "match": "hftt"}
# What each detector takes beyond the task, the encoder and --threshold.
OPTIONS = {
    "hftt": {"n_embeddings", "temperature", "gamma", "world", "seed", "select"},
    "ensemble": {"n_embeddings", "temperature", "gamma", "mcm_weight", "world", "seed",
                 "select"},
    "csp": {"n_negatives", "temperature", "seed"},
    "neglabel": {"n_negatives", "temperature", "world", "seed"},
    "mcm": {"temperature"},
    "maxlogit": {"temperature"},
    "energy": {"temperature"},
}
FLAGS = {"n_embeddings": "--n-embeddings", "temperature": "--temperature", "gamma": "--gamma",
         "mcm_weight": "--mcm-weight", "n_negatives": "--n-negatives",
         "world": "--world/--world-words", "seed": "--seed", "select": "--select"}
# CSP's reference pool: 55,967 nouns x 8 prompts + 11,047 adjectives x 4 (csp_pool()).
CSP_POOL_PROMPTS = 491_924
# CLIP ViT-B/16's text tower on 2 CPU cores (benchmarks/RESULTS.md, bench_corpus_encode).
CPU_TEXTS_PER_SECOND = 70


def add_parser(commands: Any) -> None:
    """Add ``skhftt fit`` to the subcommands."""
    from skhftt.embedding.encoders.registry import DEFAULT_ENCODER

    parser = command_parser(
        commands, "fit", SUMMARY,
        "Fit a detector from texts alone, for one of two jobs. --keep: the texts list what "
        "the dataset should contain (e.g. --imagenet), and images that do not match them "
        "are removed. --remove: the texts describe what must go (e.g. hateful symbols), "
        "and images that match them are removed. The job is stored in the detector; "
        "'skhftt info' shows it, and 'score' and 'filter' follow it. The detector is "
        "written as safetensors (for a name ending in .safetensors) or with joblib (other "
        "names). A local model folder given to --encoder is stored as an absolute path.",
        EXAMPLES,
    )
    parser.add_argument("-o", "--output", required=True, metavar="DETECTOR",
                        help="file to write (.safetensors, or anything else for joblib); "
                             "its folder must exist")
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--keep", nargs="+", metavar="TEXT",
                      help="the job is to keep what these texts describe: images that do not "
                           "match them are removed")
    task.add_argument("--keep-file", metavar="FILE",
                      help="--keep's texts from a file, one a line (or .csv/.tsv/.parquet, "
                           "first column), or a .npy of task embeddings with --encoder "
                           "precomputed")
    task.add_argument("--remove", nargs="+", metavar="TEXT",
                      help="the job is to remove what these texts describe: images that "
                           "match them are removed")
    task.add_argument("--remove-file", metavar="FILE", help="--remove's texts from a file")
    task.add_argument("--imagenet", action="store_true",
                      help="keep the 1000 ImageNet classes (a keep job)")
    task.add_argument("--task", nargs="+", metavar="TEXT", help=argparse.SUPPRESS)
    task.add_argument("--task-file", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--templates", metavar="imagenet|FILE",
                        help="prompt templates with one {} filled by each task text: the 80 "
                             "CLIP ImageNet templates, or a file of templates, one a line "
                             "(default: the texts as they are; all 80 with --imagenet, and "
                             "for --remove when the temperature is chosen from the texts)")
    parser.add_argument("--detector", choices=DETECTORS,
                        help="csp: CSP, negative labels from a conjugated WordNet pool, the "
                             "best published detector for keep jobs (default for --keep); "
                             "hftt: the paper's method, best published for remove jobs "
                             "(default for --remove); ensemble: HFTT blended with MCM; "
                             "neglabel, mcm, maxlogit, energy: zero-shot baselines")
    add_world_options(parser, default="hftt, ensemble; default: all of it")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER,
                        help="Hugging Face model id, local model folder (e.g. one saved on "
                             "another machine, for offline use), open_clip:ARCH/TAG, or "
                             "precomputed (default: %(default)s)")
    parser.add_argument("--select", action=argparse.BooleanOptionalAction, default=None,
                        help="hftt, ensemble: choose the temperature (and the ensemble's MCM "
                             "weight) from the texts alone, on held-out phrasings, task "
                             "items and world texts; fits a few detectors more (default: on "
                             "for --remove, off for --keep)")
    parser.add_argument("--temperature", type=positive_float,
                        help="softmax temperature (default: the detector's: 0.01 for hftt, "
                             "ensemble, csp and neglabel, 1 for mcm, maxlogit, energy)")
    parser.add_argument("--n-embeddings", type=positive, metavar="K",
                        help="hftt, ensemble: learned columns (default: 10)")
    parser.add_argument("--gamma", type=non_negative_float,
                        help="hftt, ensemble: focal exponent of the world texts' weights: 0 "
                             "weighs every world text equally, larger values focus training "
                             "on world texts that still look like the task (default: 1)")
    parser.add_argument("--mcm-weight", type=non_negative_float,
                        help="ensemble: weight of MCM's score in [0, 1] (default: 0.5)")
    parser.add_argument("--n-negatives", type=positive_float,
                        help="csp, neglabel: negative labels, a fraction of each part of the "
                             "pool below 1 or a count (default: 0.15)")
    parser.add_argument("--threshold", type=float,
                        help="operating point of predict, in the detector's units: for "
                             "hftt, csp and neglabel the probability of the task above which "
                             "an input matches (default 0.5); for ensemble a cut on its "
                             "standardised score (default 0, a median world text); for mcm, "
                             "maxlogit and energy a cut on the score (default: set at fit, "
                             "the equal-error cut between the task prompts and 5,000 world "
                             "texts). Not calibrated on images: prefer the rules of "
                             "'skhftt filter'")
    parser.add_argument("--seed", type=int, help="random seed (default: 0)")
    parser.add_argument("--device", default="auto", help="encoder device (default: auto)")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show progress bars")
    parser.set_defaults(handler=run)


def _templates(spec: str | None) -> list[str] | None:
    from skhftt.corpora import imagenet_templates, read_texts

    if spec is None:
        return None
    if spec == "imagenet":
        return imagenet_templates()
    check_inputs_exist([spec], "--templates")
    return read_texts(spec)


def _job(args: argparse.Namespace) -> str:
    """``unwanted`` of the job the task options give."""
    if args.task is not None or args.task_file is not None:
        flag = "--task" if args.task is not None else "--task-file"
        raise ValueError(
            f"{flag} does not say which side to remove: use --keep{flag[6:]} to remove the "
            f"images that do not match the texts, or --remove{flag[6:]} to remove the images "
            "that match them.")
    return "match" if args.remove is not None or args.remove_file is not None else "mismatch"


def _task(args: argparse.Namespace) -> Any:
    from skhftt.corpora import imagenet_task, read_texts

    if args.imagenet:
        return imagenet_task(_templates(args.templates) or "all")
    texts = args.keep if args.keep is not None else args.remove
    if texts is not None:
        return texts
    path, flag = ((args.keep_file, "--keep-file") if args.keep_file is not None
                  else (args.remove_file, "--remove-file"))
    check_inputs_exist([path], flag)
    if path.endswith(".npy"):
        import numpy as np

        return np.load(path)
    return read_texts(path)


def _check_options(args: argparse.Namespace, kind: str) -> None:
    """Refuse options the chosen detector does not take, naming them."""
    from skhftt.embedding.encoders.registry import PRECOMPUTED

    given = {name for name in FLAGS if getattr(args, name) is not None}
    if args.world_words is not None:
        given.add("world")
    extra = sorted(given - OPTIONS[kind])
    if extra:
        raise ValueError(f"{', '.join(FLAGS[name] for name in extra)} do(es) not apply to "
                         f"--detector {kind}.")
    if args.select and args.temperature is not None:
        raise ValueError("--select chooses the temperature from the texts; drop --temperature, "
                         "or drop --select to fit at that temperature.")
    if kind in ("hftt", "csp", "neglabel") and args.threshold is not None \
            and not 0 < args.threshold < 1:
        raise ValueError(f"--threshold with --detector {kind} is a probability, strictly "
                         f"between 0 and 1; got {args.threshold}.")
    if args.encoder != PRECOMPUTED:
        return
    task_file = args.keep_file or args.remove_file
    if task_file is None or not task_file.endswith(".npy"):
        raise ValueError("--encoder precomputed embeds nothing: give the task texts' "
                         "embeddings with --keep-file or --remove-file FILE.npy.")
    if kind in ("csp", "neglabel") and args.world is None:
        raise ValueError(f"--detector {kind} embeds its WordNet pool, which --encoder "
                         "precomputed cannot; fit it in Python with candidates= embeddings, or "
                         "choose another detector.")
    if "world" in OPTIONS[kind] and kind != "neglabel" and (
            args.world is None or not args.world.endswith(".npy")):
        raise ValueError("--encoder precomputed embeds nothing: give the world texts' "
                         "embeddings with --world FILE.npy.")


def _detector(args: argparse.Namespace, kind: str, unwanted: str) -> Any:
    """The unfitted detector the options describe."""
    from skhftt import detectors

    classes = {"hftt": detectors.HFTTDetector, "ensemble": detectors.HFTTEnsembleDetector,
               "csp": detectors.CSPDetector, "neglabel": detectors.NegLabelDetector,
               "mcm": detectors.MCMDetector, "maxlogit": detectors.MaxLogitDetector,
               "energy": detectors.EnergyDetector}
    given = {"n_embeddings": args.n_embeddings, "temperature": args.temperature,
             "gamma": args.gamma, "mcm_weight": args.mcm_weight,
             "n_negatives": _count_or_fraction(args.n_negatives),
             "threshold": args.threshold}
    options = {name: value for name, value in given.items() if value is not None}
    if "seed" in OPTIONS[kind]:
        options["random_state"] = 0 if args.seed is None else args.seed
    return classes[kind](
        encoder=encoder_spec(args.encoder),
        unwanted=unwanted,
        templates=None if args.imagenet else _templates(args.templates),
        device=args.device,
        verbose=args.verbose,
        **options,
    )


def _count_or_fraction(value: float | None) -> int | float | None:
    """``--n-negatives``: a fraction below 1, else a whole count."""
    if value is None or value < 1:
        return value
    if not value.is_integer():
        raise ValueError(f"--n-negatives is a fraction below 1 or a whole count; got {value}.")
    return int(value)


def _say_cost(kind: str, encoder: str) -> None:
    """What fitting costs before it starts, where it can take long."""
    from skhftt.embedding.encoders.registry import PRECOMPUTED

    if kind == "csp" and encoder != PRECOMPUTED:
        hours = CSP_POOL_PROMPTS / CPU_TEXTS_PER_SECOND / 3600
        print(f"CSP embeds its reference pool once: {CSP_POOL_PROMPTS:,} short prompts, "
              f"about {hours:.1f} h on two CPU cores with CLIP ViT-B/16's text tower (on a "
              "GPU, by estimate, minutes); they are cached, so later fits with this encoder take "
              "seconds. The progress line shows the rate and the time left.", flush=True)


def _fit(detector: Any, world: Any, task: Any, kind: str, select: bool) -> Any:
    """``detector`` fitted, or the candidate of its grid chosen from the texts alone."""
    if not select:
        return detector.fit(world, task)
    from skhftt.evaluation import ensemble_grid, select_detector, temperature_grid

    grid = ensemble_grid(detector) if kind == "ensemble" else temperature_grid(detector)
    result = select_detector(grid, world, task, templates=detector.templates)
    for name in result.ranking():
        print(f"  {name}: held-out FPR95 {result.criteria[name]['fpr95']:.4f}, "
              f"AUROC {result.criteria[name]['auroc']:.4f}")
    print(f"selected {result.best_name} from the texts alone")
    return result.best_estimator


def _selectable(task: Any, templates: list[str] | None) -> str | None:
    """Why the temperature cannot be chosen from this task, or None if it can.

    Choosing holds out some task items and some prompts of each item.
    """
    if isinstance(task, dict):
        return None if len(task) >= 2 else "it needs at least 2 task items, to hold some out"
    if not isinstance(task, (list, tuple)):
        return "the task embeddings have one prompt per item, and it holds prompts out"
    if len(task) < 2:
        return "it needs at least 2 task texts, to hold some out"
    if templates is not None and len(templates) < 2:
        return "it needs at least 2 templates, to hold phrasings out"
    return None


def _save(detector: Any, path: str) -> None:
    if path.endswith(".safetensors"):
        from skhftt.detectors import save_detector

        save_detector(detector, path)
    else:
        import joblib

        joblib.dump(detector, path)


def run(args: argparse.Namespace) -> int:
    """Fit and save a detector; see ``skhftt fit --help``."""
    unwanted = _job(args)
    kind = args.detector or DEFAULT_DETECTOR[unwanted]
    select = args.select
    if select is None:
        select = unwanted == "match" and kind in ("hftt", "ensemble") \
            and args.temperature is None
    if select and kind not in ("hftt", "ensemble"):
        raise ValueError(f"--select chooses the temperature of hftt or ensemble; --detector "
                         f"{kind} has nothing to choose.")
    check_output_file(args.output, "-o/--output")
    check_device(args.device)
    _check_options(args, kind)
    task = _task(args)
    world = read_world(args)
    detector = _detector(args, kind, unwanted)
    why = _selectable(task, detector.templates) if select else None
    if why is None and select and isinstance(task, list) and detector.templates is None:
        from skhftt.corpora import imagenet_templates

        detector.set_params(templates=imagenet_templates())
        print("each task text is prompted with the 80 CLIP templates, so that the "
              "temperature can be chosen on held-out phrasings (--templates FILE, or "
              "--no-select, to do otherwise)")
    if why is not None:
        if args.select:
            raise ValueError(f"--select cannot choose the temperature: {why}.")
        print(f"fitting at the paper's temperature, 0.01, since choosing it from the texts "
              f"is not possible: {why}")
        select = False
    _say_cost(kind, args.encoder)
    with encoder_errors(detector.encoder):
        detector = _fit(detector, world, task, kind, select)
    _save(detector, args.output)
    from skhftt.detectors.base import job_words

    print(f"wrote {args.output!r}: {type(detector).__name__}, {len(detector.task_names_)} "
          f"task column(s), width {detector.embedding_dim_}; {job_words(unwanted)}")
    return 0
