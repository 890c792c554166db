"""``skhftt score``: score images or embeddings into parquet files, one per input shard."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skhftt.cli._common import (
    add_input_options,
    check_device,
    check_inputs_exist,
    check_output_dir,
    load_detector_file,
    score_inputs,
)

SUMMARY = "score images or embeddings into parquet files"
EXAMPLES = """\
examples:
  skhftt score detector.safetensors images/ more.txt -o scores/
  skhftt score detector.safetensors laion/ -o scores/ --scheduler tcp://10.0.0.1:8786
  skhftt score -d keep.safetensors -d hateful.safetensors images/ -o scores/

With one detector, the first path is the detector and the others are inputs.
With -d (repeatable), every path is an input and the detectors form one
composite scored in a single pass (each input embedded once): the outputs then
have columns <name>_score and <name>_decision per detector (named after its
file), remove (some detector flags the row, on the side its job removes) and
triggered (which ones). Each detector's job (what it removes) is the one it was
fitted for ('skhftt info' shows it).
Image ids are written as absolute paths, so 'skhftt filter' finds the files
from any folder.
"""


def add_parser(commands: Any) -> None:
    """Add ``skhftt score`` to the subcommands."""
    parser = commands.add_parser(
        "score",
        help=SUMMARY,
        description=(
            "Score images or precomputed embeddings with a fitted detector. Each input "
            "shard becomes OUTPUT_DIR/<shard>.parquet with columns id, row, score, "
            "decision (+1 matches the task, -1 does not) and error; unreadable images "
            "become rows with an error. Shards already scored are skipped, so rerunning "
            "an interrupted command finishes it."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", metavar="[DETECTOR] INPUT", nargs="+",
                        help="without -d: a fitted detector (.safetensors or joblib file) then "
                             "the inputs; with -d: the inputs only. Inputs are image folders, "
                             "list files, .tar, .npy or .parquet shards, LAION/clip-retrieval "
                             "embedding folders, or image files")
    parser.add_argument("-d", "--detector", dest="detectors", action="append", default=[],
                        metavar="DETECTOR",
                        help="a detector of a composite (repeat for several); its file name "
                             "without extension names its columns")
    parser.add_argument("--unwanted", action="append", default=[], metavar="NAME=SIDE",
                        help="with -d: which side of detector NAME is unwanted, match or "
                             "mismatch; it must be the detector's own job (default: its job; "
                             "a contradiction is an error unless --override-job)")
    parser.add_argument("--override-job", action="store_true",
                        help="with --unwanted: apply the sides given even where they "
                             "contradict a detector's recorded job (for detector files "
                             "written before skhftt recorded jobs, which were taken as keep "
                             "jobs)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUTPUT_DIR",
                        help="folder of the parquet outputs (created if needed)")
    add_input_options(parser, scheduler=True)
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address: score one shard per task on the cluster")
    parser.set_defaults(handler=run)


def _sides(pairs: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """The sides ``--unwanted NAME=SIDE`` states, by detector name."""
    sides = {}
    for pair in pairs:
        name, _, side = pair.partition("=")
        if name not in names:
            raise ValueError(f"--unwanted {pair!r} names no detector; the detectors are "
                             f"{', '.join(names)}.")
        if side not in ("match", "mismatch"):
            raise ValueError(f"--unwanted {pair!r}: the side must be match or mismatch.")
        sides[name] = side
    return sides


def concept_names(paths: Sequence[str]) -> list[str]:
    """The name of each ``-d`` detector: its file name without extensions.

    Raises
    ------
    ValueError
        Two files with the same name.
    """
    names = [Path(path).name.split(".")[0] for path in paths]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ValueError(f"two detectors are named {name!r} ({paths[names.index(name)]!r} "
                             f"and {paths[index]!r}); rename one file.")
    return names


def load_concepts(paths: Sequence[str], unwanted: Sequence[str], *,
                  encoder: str | None = None, override_job: bool = False) -> Any:
    """A :class:`~skhftt.detectors.MultiConceptDetector` of detector files named by their stems.

    Each detector keeps its own job; ``--unwanted NAME=SIDE`` must agree with
    it, unless ``override_job``.

    Raises
    ------
    ValueError
        Two files with the same stem, a bad ``--unwanted`` item, a side that
        contradicts a detector's job, or detectors from different embedding
        spaces.
    """
    from skhftt.detectors.base import job_words
    from skhftt.detectors.composite import MultiConceptDetector

    names = concept_names(paths)
    sides = _sides(unwanted, names)
    detectors = {}
    for name, path in zip(names, paths, strict=True):
        detector = load_detector_file(path, encoder=encoder, flag="-d/--detector")
        side = sides.get(name, detector.unwanted)
        if side != detector.unwanted and not override_job:
            raise ValueError(
                f"--unwanted {name}={side} contradicts the job of {path!r}: it was fitted with "
                f"unwanted={detector.unwanted} ({job_words(detector.unwanted)}). Fit a detector "
                "for the other job, or, for a file written before skhftt recorded jobs, add "
                "--override-job.")
        detectors[name] = detector.set_params(unwanted=side)
    return MultiConceptDetector(detectors)


def run(args: argparse.Namespace) -> int:
    """Score inputs; see ``skhftt score --help``."""
    if not args.detectors:
        if args.unwanted or args.override_job:
            raise ValueError("--unwanted and --override-job need the detectors given with -d.")
        if len(args.paths) < 2:
            raise ValueError(f"no INPUT after the detector {args.paths[0]!r}; give a detector "
                             "and at least one input, or detectors with -d.")
    inputs = args.paths if args.detectors else args.paths[1:]
    check_inputs_exist(inputs, "input")
    check_output_dir(args.output_dir, "-o/--output-dir")
    check_device(args.device)
    if args.override_job and not args.unwanted:
        raise ValueError("--override-job applies the sides given with --unwanted NAME=SIDE; "
                         "give at least one.")
    from skhftt.batch.scorers import ConceptScorer, ShardScorer

    if args.detectors:
        concepts = load_concepts(args.detectors, args.unwanted, encoder=args.encoder,
                                 override_job=args.override_job)
        sources = dict(zip(concepts.names, args.detectors, strict=True))
        scorer = ConceptScorer.from_concepts(concepts, device=args.device, sources=sources)
        encoder = concepts.detector.encoder
    else:
        detector = load_detector_file(args.paths[0], encoder=args.encoder)
        scorer = ShardScorer.from_detector(detector, device=args.device, source=args.paths[0])
        encoder = detector.encoder
    print(score_inputs(scorer, inputs, args.output_dir, args, encoder=encoder).summary())
    return 0
