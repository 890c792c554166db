"""``skhftt fit``: fit a detector from texts and save it."""

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

SUMMARY = "fit a detector on texts and save it"
EXAMPLES = """\
  skhftt fit -o dogs.safetensors --task 'a dog' 'a puppy' --world-words 20000
  skhftt fit -o weapons.safetensors --task-file weapons.txt --templates imagenet --select concept
  skhftt fit -o paper.safetensors --task 'a dog' --detector hftt
  skhftt fit -o imagenet.safetensors --imagenet --encoder open_clip:ViT-B-16/openai
  skhftt fit -o birds.joblib --task-file birds.txt --templates imagenet -v
  skhftt fit -o offline.safetensors --task flower --encoder /path/to/clip-dir
  skhftt fit -o emb.joblib --encoder precomputed --task-file task.npy --world world.npy
"""


def add_parser(commands: Any) -> None:
    """Add ``skhftt fit`` to the subcommands."""
    from skhftt.embedding.encoders.registry import DEFAULT_ENCODER

    parser = command_parser(
        commands, "fit", SUMMARY,
        "Fit a detector from texts alone: the task texts describe the images that match "
        "(the in-distribution), the world corpus everything else. The detector is written "
        "as safetensors (for a name ending in .safetensors) or with joblib (other names). "
        "A local model folder given to --encoder is stored as an absolute path.",
        EXAMPLES,
    )
    parser.add_argument("-o", "--output", required=True, metavar="DETECTOR",
                        help="file to write (.safetensors, or anything else for joblib); "
                             "its folder must exist")
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--task", nargs="+", metavar="TEXT", help="task texts")
    task.add_argument("--task-file", metavar="FILE",
                      help="task texts, one a line (or .csv/.tsv/.parquet, first column), or "
                           "a .npy of task embeddings with --encoder precomputed")
    task.add_argument("--imagenet", action="store_true",
                      help="the 1000 ImageNet classes as the task")
    parser.add_argument("--templates", metavar="imagenet|FILE",
                        help="prompt templates with one {} filled by each task text: the 80 "
                             "CLIP ImageNet templates, or a file of templates, one a line "
                             "(default: the texts as they are; all 80 with --imagenet)")
    add_world_options(parser, default="default: all of it")
    parser.add_argument("--encoder", default=DEFAULT_ENCODER,
                        help="Hugging Face model id, local model folder (e.g. one saved on "
                             "another machine, for offline use), open_clip:ARCH/TAG, or "
                             "precomputed (default: %(default)s)")
    parser.add_argument("--detector", choices=("ensemble", "hftt"), default="ensemble",
                        help="ensemble: HFTT blended with MCM's zero-shot score, calibrated "
                             "on the world texts, the detector that led on both kinds of job "
                             "in benchmarks/RESULTS.md; hftt: the paper's method as published "
                             "(default: %(default)s)")
    parser.add_argument("--select", choices=("ood", "concept"),
                        help="choose the ensemble's --temperature and MCM weight from the "
                             "texts alone (held-out prompts, task items and world texts), "
                             "for a task of classes to keep (ood) or an unwanted concept "
                             "(concept); fits 19 detectors")
    parser.add_argument("--n-embeddings", type=positive, default=10, metavar="K",
                        help="learned columns (default: %(default)s)")
    parser.add_argument("--temperature", type=positive_float, default=0.01,
                        help="softmax temperature (default: %(default)s)")
    parser.add_argument("--gamma", type=non_negative_float, default=1.0,
                        help="focal exponent of the world texts' weights: 0 weighs every "
                             "world text equally, larger values focus training on world texts "
                             "that still look like the task (default: %(default)s)")
    parser.add_argument("--threshold", type=float,
                        help="operating point: for hftt the probability of the task above "
                             "which an input matches (default 0.5), for ensemble a cut-off "
                             "on its calibrated score (default 0); neither is a calibrated "
                             "probability, so prefer the rules of 'skhftt filter' to decide "
                             "what to remove")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
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


def _task(args: argparse.Namespace) -> Any:
    from skhftt.corpora import imagenet_task, read_texts

    if args.imagenet:
        return imagenet_task(_templates(args.templates) or "all")
    if args.task is not None:
        return args.task
    check_inputs_exist([args.task_file], "--task-file")
    if args.task_file.endswith(".npy"):
        import numpy as np

        return np.load(args.task_file)
    return read_texts(args.task_file)


def _check_precomputed(args: argparse.Namespace) -> None:
    """A precomputed detector is fitted on embeddings: both sides must be .npy files."""
    from skhftt.embedding.encoders.registry import PRECOMPUTED

    if args.encoder != PRECOMPUTED:
        return
    if args.task_file is None or not args.task_file.endswith(".npy"):
        raise ValueError("--encoder precomputed embeds nothing: give the task texts' "
                         "embeddings with --task-file FILE.npy.")
    if args.world is None or not args.world.endswith(".npy"):
        raise ValueError("--encoder precomputed embeds nothing: give the world texts' "
                         "embeddings with --world FILE.npy.")


def _check_detector_options(args: argparse.Namespace) -> None:
    if args.select is not None and args.detector != "ensemble":
        raise ValueError("--select chooses the ensemble's settings; use it with "
                         "--detector ensemble.")
    if args.detector == "hftt" and args.threshold is not None and not 0 < args.threshold < 1:
        raise ValueError(f"--threshold with --detector hftt is a probability, strictly "
                         f"between 0 and 1; got {args.threshold}.")


def _detector(args: argparse.Namespace) -> Any:
    """The unfitted detector the options describe."""
    from skhftt.detectors import HFTTDetector, HFTTEnsembleDetector

    kind = HFTTEnsembleDetector if args.detector == "ensemble" else HFTTDetector
    options = {} if args.threshold is None else {"threshold": args.threshold}
    return kind(
        encoder=encoder_spec(args.encoder),
        n_embeddings=args.n_embeddings,
        temperature=args.temperature,
        gamma=args.gamma,
        templates=None if args.imagenet else _templates(args.templates),
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
        **options,
    )


def _fit(detector: Any, world: Any, task: Any, job: str | None) -> Any:
    """``detector`` fitted, or, with a ``job``, the grid candidate chosen from texts."""
    if job is None:
        return detector.fit(world, task)
    from skhftt.evaluation import ensemble_grid, select_detector

    result = select_detector(ensemble_grid(detector), world, task, job=job,
                             templates=detector.templates)
    for name in result.ranking():
        print(f"  {name}: held-out FPR95 {result.criteria[name]['fpr95']:.4f}, "
              f"AUROC {result.criteria[name]['auroc']:.4f}")
    print(f"selected {result.best_name} from the texts alone")
    return result.best_estimator


def _save(detector: Any, path: str) -> None:
    if path.endswith(".safetensors"):
        from skhftt.detectors import save_detector

        save_detector(detector, path)
    else:
        import joblib

        joblib.dump(detector, path)


def run(args: argparse.Namespace) -> int:
    """Fit and save a detector; see ``skhftt fit --help``."""
    check_output_file(args.output, "-o/--output")
    check_device(args.device)
    _check_precomputed(args)
    _check_detector_options(args)
    task = _task(args)
    world = read_world(args)
    detector = _detector(args)
    with encoder_errors(detector.encoder):
        detector = _fit(detector, world, task, args.select)
    _save(detector, args.output)
    print(f"wrote {args.output!r}: {type(detector).__name__}, "
          f"{len(detector.task_names_)} task column(s), {args.n_embeddings} learned, "
          f"width {detector.embedding_dim_}")
    return 0
