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
  skhftt score -d ood.safetensors -d hateful.safetensors --unwanted hateful=match \\
      images/ -o scores/

With one detector, the first path is the detector and the others are inputs.
With -d (repeatable), every path is an input and the detectors form one
composite scored in a single pass (each input embedded once): the outputs then
have columns <name>_score and <name>_decision per detector (named after its
file), remove (some detector flags the row) and triggered (which ones).
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
                             "mismatch (default: mismatch, i.e. inputs outside its task)")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUTPUT_DIR",
                        help="folder of the parquet outputs (created if needed)")
    add_input_options(parser, scheduler=True)
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address: score one shard per task on the cluster")
    parser.set_defaults(handler=run)


def _sides(pairs: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    sides = dict.fromkeys(names, "mismatch")
    for pair in pairs:
        name, _, side = pair.partition("=")
        if name not in sides:
            raise ValueError(f"--unwanted {pair!r} names no detector; the detectors are "
                             f"{', '.join(names)}.")
        if side not in ("match", "mismatch"):
            raise ValueError(f"--unwanted {pair!r}: the side must be match or mismatch.")
        sides[name] = side
    return sides


def load_concepts(paths: Sequence[str], unwanted: Sequence[str], *,
                  encoder: str | None = None) -> Any:
    """A :class:`~skhftt.detectors.MultiConceptDetector` of detector files named by their stems.

    Raises
    ------
    ValueError
        Two files with the same stem, a bad ``--unwanted`` item, or detectors
        from different embedding spaces.
    """
    from skhftt.detectors.composite import Concept, MultiConceptDetector

    names = [Path(path).name.split(".")[0] for path in paths]
    for index, name in enumerate(names):
        if name in names[:index]:
            raise ValueError(f"two detectors are named {name!r} ({paths[names.index(name)]!r} "
                             f"and {paths[index]!r}); rename one file.")
    sides = _sides(unwanted, names)
    return MultiConceptDetector({
        name: Concept(load_detector_file(path, encoder=encoder, flag="-d/--detector"),
                      sides[name])
        for name, path in zip(names, paths, strict=True)
    })


def run(args: argparse.Namespace) -> int:
    """Score inputs; see ``skhftt score --help``."""
    if not args.detectors:
        if args.unwanted:
            raise ValueError("--unwanted needs the detectors given with -d.")
        if len(args.paths) < 2:
            raise ValueError(f"no INPUT after the detector {args.paths[0]!r}; give a detector "
                             "and at least one input, or detectors with -d.")
    inputs = args.paths if args.detectors else args.paths[1:]
    check_inputs_exist(inputs, "input")
    check_output_dir(args.output_dir, "-o/--output-dir")
    check_device(args.device)
    if args.detectors:
        detector = load_concepts(args.detectors, args.unwanted, encoder=args.encoder)
        encoder = detector.detector.encoder
    else:
        detector = load_detector_file(args.paths[0], encoder=args.encoder)
        encoder = detector.encoder
    print(score_inputs(detector, inputs, args.output_dir, args, encoder=encoder).summary())
    return 0
