"""``skhftt explain``: what HFTT or the ensemble learned, and why inputs scored as they did."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skhftt.cli._common import (
    add_world_options,
    check_inputs_exist,
    command_parser,
    encoder_errors,
    load_detector_file,
    positive,
    read_world,
)

SUMMARY = "show what a detector learned and why it scored inputs so"
EXAMPLES = """\
  skhftt explain dogs.safetensors --world-words 20000 -k 5
  skhftt explain dogs.safetensors photos/ one.jpg
  skhftt explain emb.joblib embeddings.npy --world texts.txt --world-embeddings texts.npy
"""
WORLD_WORDS = 10_000


def add_parser(commands: Any) -> None:
    """Add ``skhftt explain`` to the subcommands."""
    parser = command_parser(
        commands, "explain", SUMMARY,
        "For each learned column of an HFTT or ensemble detector, print the world texts "
        "nearest to it; "
        "for each input given, print its score and the column (a task item or a learned "
        "one) that dominated it. Give the inputs right after the detector. Unreadable "
        "images are reported and skipped, as 'skhftt score' does.",
        EXAMPLES,
    )
    parser.add_argument("paths", metavar="PATH", nargs="+",
                        help="fitted detector file, then any inputs to explain: image files, "
                             "image folders, or .npy files of embeddings")
    add_world_options(parser, default=f"default: {WORLD_WORDS}")
    parser.add_argument("--world-embeddings", metavar="NPY",
                        help="embeddings of the world texts, one row per text (needed for a "
                             "precomputed detector)")
    parser.add_argument("-k", type=positive, default=10, help="texts per column (default: 10)")
    parser.add_argument("--encoder", help="encoder spec or model folder replacing the saved one")
    parser.set_defaults(handler=run)


def _image_files(folder: Path) -> list[str]:
    """The image files below ``folder``, by the package's one list of image extensions."""
    from skhftt.embedding.images import has_image_extension

    return sorted(str(path) for path in folder.rglob("*")
                  if path.is_file() and has_image_extension(path))


def _inputs(paths: Sequence[str]) -> tuple[list[str], Any]:
    """Names and values (image paths or stacked embeddings) of the inputs."""
    import numpy as np

    check_inputs_exist(paths, "input")
    names: list[str] = []
    images: list[str] = []
    arrays = []
    for path in map(Path, paths):
        if path.suffix == ".npy":
            array = np.atleast_2d(np.load(path))
            names += [f"{path}:{row}" for row in range(array.shape[0])]
            arrays.append(array)
        else:
            found = _image_files(path) if path.is_dir() else [str(path)]
            names += found
            images += found
    if arrays and images:
        raise ValueError("explain takes images or .npy embeddings, not both at once.")
    return names, np.vstack(arrays) if arrays else images


def _world_embeddings(args: argparse.Namespace, world: Sequence[str], dim: int,
                      precomputed: bool) -> Any:
    """``--world-embeddings``, checked against the world texts and the detector's width."""
    import numpy as np

    texts = "--world" if args.world else f"--world-words {args.world_words or WORLD_WORDS}"
    if args.world_embeddings is None:
        if precomputed:
            raise ValueError("a precomputed detector cannot embed the world texts: give their "
                             f"embeddings with --world-embeddings NPY (one row per text of "
                             f"{texts}).")
        return None
    check_inputs_exist([args.world_embeddings], "--world-embeddings")
    embeddings = np.load(args.world_embeddings)
    if embeddings.ndim != 2 or embeddings.shape[1] != dim:
        raise ValueError(f"--world-embeddings {args.world_embeddings!r} has shape "
                         f"{embeddings.shape}; the detector works in width {dim}.")
    if embeddings.shape[0] != len(world):
        raise ValueError(f"--world-embeddings {args.world_embeddings!r} has "
                         f"{embeddings.shape[0]:,} rows for the {len(world):,} texts of {texts}; "
                         "give the texts they embed with --world FILE.")
    return embeddings


def run(args: argparse.Namespace) -> int:
    """Print nearest texts and per-input explanations; see ``skhftt explain --help``."""
    from skhftt.corpora import load_world_corpus
    from skhftt.embedding.encoders.registry import PRECOMPUTED
    from skhftt.removal.explain import EXPLAINABLE, explain_scores, nearest_texts

    detector = load_detector_file(args.paths[0], encoder=args.encoder)
    if not isinstance(detector, EXPLAINABLE):
        raise ValueError(f"explain shows the learned columns of an HFTT or ensemble detector; "
                         f"{args.paths[0]!r} holds a {type(detector).__name__} (score, "
                         "filter, evaluate and info work with it).")
    names, values = _inputs(args.paths[1:])
    world = read_world(args, texts_only=True) or load_world_corpus(WORLD_WORDS)
    precomputed = detector.encoder == PRECOMPUTED
    embeddings = _world_embeddings(args, world, detector.embedding_dim_, precomputed)
    if precomputed and isinstance(values, list) and values:
        raise ValueError("a precomputed detector cannot embed images: give .npy files of "
                         "their embeddings, or the model with --encoder.")
    with encoder_errors(detector.encoder):
        nearest = nearest_texts(detector, world, embeddings=embeddings, k=args.k)
        explained = explain_scores(detector, values, on_error="record") if names else None
    for column, texts in nearest.items():
        print(f"{column}: " + "; ".join(f"{text} ({cosine:.2f})" for text, cosine in texts))
    if explained is None:
        return 0
    from skhftt.detectors.base import job_words

    # The job decides which side goes: a remove job removes what matches its task.
    removes_matches = detector.unwanted == "match"
    print(f"\njob: {job_words(detector.unwanted)} (at its threshold, score offset "
          f"{detector.offset_:.4f})")
    print(f"{'score':>8}  {'share':>5}  {'removed':>7}  column  input")
    for row, name in enumerate(names):
        if explained.errors[row] is None:
            matches = explained.scores[row] >= detector.offset_
            removed = "yes" if matches == removes_matches else "no"
            print(f"{explained.scores[row]:8.3f}  {explained.share[row]:5.2f}  {removed:>7}  "
                  f"{explained.column[row]}  {name}")
        else:
            print(f"{'-':>8}  {'-':>5}  {'-':>7}  unreadable  {name}: {explained.errors[row]}")
    failed = sum(error is not None for error in explained.errors)
    if failed:
        print(f"\n{failed:,} of {len(names):,} input(s) could not be read and were skipped.")
    return 0
