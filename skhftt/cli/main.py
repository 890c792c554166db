"""The ``skhftt`` command line.

Commands (run ``skhftt <command> --help`` for the options and examples of
each):

* ``skhftt fit -o DETECTOR --task TEXT...`` fits a detector from texts and
  writes it (``.safetensors``, or joblib for other names);
* ``skhftt score DETECTOR INPUT... -o OUTPUT_DIR`` scores images or
  embeddings into one parquet file per input shard (see
  :func:`skhftt.batch.score_shards`); ``skhftt score -d DETECTOR -d
  DETECTOR INPUT... -o OUTPUT_DIR`` scores with several detectors at once
  (a :class:`~skhftt.detectors.composite.MultiConceptDetector`, each input embedded
  once);
* ``skhftt filter SCORES_DIR -o OUT`` turns scores into keep/remove lists;
* ``skhftt evaluate DETECTOR --in INPUT... --out INPUT...`` reports FPR95,
  AUROC and AUPR and draws the ROC curve;
* ``skhftt explain DETECTOR [INPUT...]`` shows the texts nearest each learned
  column and which column dominated each input;
* ``skhftt info DETECTOR`` summarises a detector file.

Exit status: 0 on success, 1 when some shards could not be scored (the
others are written; rerunning the same command retries the missing ones),
2 for a usage error (bad option, missing file, unreadable detector),
printed as one line, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from skhftt.batch.shards import DEFAULT_SHARD_SIZE, KINDS

PROG = "skhftt"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def load_detector_file(path: str, *, encoder: str | None = None) -> Any:
    """Load a fitted detector from a ``.safetensors`` file or a joblib/pickle file.

    Parameters
    ----------
    path : str
        A file written by :func:`skhftt.detectors.persistence.save_detector`
        (``.safetensors``) or by ``joblib.dump`` (any other name; loading a
        pickle runs code, so load only files you trust).
    encoder : str, optional
        Encoder spec replacing the saved one (e.g. a local copy of the
        model).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file holds no fitted detector.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"detector file {path!r} not found.")
    if path.endswith(".safetensors"):
        from skhftt.detectors.persistence import load_detector

        return load_detector(path, encoder=encoder)
    import joblib

    try:
        detector = joblib.load(path)
    except Exception as exc:  # pickle raises many types for a file that is not one
        raise ValueError(
            f"{path!r} is neither a .safetensors detector nor a joblib file of one "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    if not hasattr(detector, "head_"):
        raise ValueError(
            f"{path!r} holds a {type(detector).__name__}, not a fitted skhftt detector."
        )
    if encoder is not None:
        detector.set_params(encoder=encoder)
    return detector


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def _default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """Options on how inputs are read and embedded, shared by the commands that score."""
    parser.add_argument("--kind", choices=KINDS,
                        help="read every input as this kind instead of detecting it")
    parser.add_argument("--batch-size", type=_positive, default=256,
                        help="images per encoder batch (default: 256)")
    parser.add_argument("--num-workers", type=_non_negative, default=None,
                        help="image decoding processes (default: up to 8, one less than the "
                             "CPUs; 0 with --scheduler)")
    parser.add_argument("--device", help="device of the encoder, e.g. cpu, cuda, cuda:1 "
                                         "(default: the detector's)")
    parser.add_argument("--encoder", help="encoder spec or model folder replacing the saved one")
    parser.add_argument("--shard-size", type=_positive, default=DEFAULT_SHARD_SIZE,
                        help=f"images per output file for folders and list files "
                             f"(default: {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--embedding-column", help="embedding column of parquet shards")
    parser.add_argument("--id-column", help="id column of parquet shards and LAION metadata")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show a progress bar")


def score_inputs(detector: Any, inputs: Sequence[str], output_dir: str,
                 args: argparse.Namespace) -> Any:
    """Score ``inputs`` into ``output_dir`` with the options of :func:`add_input_options`.

    Returns
    -------
    ScoringReport
    """
    from skhftt.batch import score_shards

    scheduler = getattr(args, "scheduler", None)
    num_workers = args.num_workers
    if num_workers is None:
        num_workers = 0 if scheduler else _default_workers()
    return score_shards(
        detector,
        inputs,
        output_dir,
        kind=args.kind,
        shard_size=args.shard_size,
        embedding_column=args.embedding_column,
        id_column=args.id_column,
        batch_size=args.batch_size,
        num_workers=num_workers,
        device=args.device,
        client=scheduler,
        verbose=args.verbose,
    )


SCORE_EXAMPLES = """\
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
"""


def _add_score(commands: Any) -> None:
    parser = commands.add_parser(
        "score",
        help="score images or embeddings into parquet files",
        description=(
            "Score images or precomputed embeddings with a fitted detector. Each input "
            "shard becomes OUTPUT_DIR/<shard>.parquet with columns id, row, score "
            "(log-odds), decision (+1 matches the task, -1 does not) and error; "
            "unreadable images become rows with an error. Shards already scored are "
            "skipped, so rerunning an interrupted command finishes it."
        ),
        epilog=SCORE_EXAMPLES,
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
    add_input_options(parser)
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address: score one shard per task on the cluster")
    parser.set_defaults(handler=_run_score)


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

    Parameters
    ----------
    paths : sequence of str
        Detector files (see :func:`load_detector_file`).
    unwanted : sequence of str
        ``NAME=match`` or ``NAME=mismatch`` items; unnamed detectors get
        ``mismatch``.
    encoder : str, optional
        Encoder spec replacing the saved ones.

    Raises
    ------
    ValueError
        Two files with the same stem, a bad ``unwanted`` item, or detectors
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
        name: Concept(load_detector_file(path, encoder=encoder), sides[name])
        for name, path in zip(names, paths, strict=True)
    })


def _run_score(args: argparse.Namespace) -> int:
    if args.detectors:
        detector = load_concepts(args.detectors, args.unwanted, encoder=args.encoder)
        inputs = args.paths
    else:
        if args.unwanted:
            raise ValueError("--unwanted needs the detectors given with -d.")
        if len(args.paths) < 2:
            raise ValueError(f"no INPUT after the detector {args.paths[0]!r}; give a detector "
                             "and at least one input, or detectors with -d.")
        detector = load_detector_file(args.paths[0], encoder=args.encoder)
        inputs = args.paths[1:]
    print(score_inputs(detector, inputs, args.output_dir, args).summary())
    return 0


def _commands() -> tuple[Callable[[Any], None], ...]:
    from skhftt.cli import commands as _cli_commands

    return (_cli_commands.add_fit, _add_score, _cli_commands.add_filter,
            _cli_commands.add_evaluate, _cli_commands.add_explain, _cli_commands.add_info)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``skhftt`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Remove unwanted images with a detector trained on text alone.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _commands():
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``skhftt`` command; returns the exit status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        0 on success, 1 when some shards failed, 2 for a usage error, 130
        when interrupted.
    """
    from skhftt.batch import ScoringError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ScoringError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (OSError, ValueError, TypeError, ImportError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted; run the same command again to resume.",
              file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
