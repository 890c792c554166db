"""The ``skhftt`` command line.

``skhftt score DETECTOR INPUT... -o OUTPUT_DIR`` scores images or embeddings
with a fitted detector into one parquet file per input shard (see
:func:`skhftt.scoring.score_shards`). Run ``skhftt <command> --help`` for
the options of a command.

Exit status: 0 on success, 1 when some shards could not be scored (the
others are written; rerunning the same command retries the missing ones),
2 for a usage error (bad option, missing file, unreadable detector), 130
when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from skhftt.scoring.shards import DEFAULT_SHARD_SIZE, KINDS

PROG = "skhftt"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def load_detector_file(path: str, *, encoder: str | None = None) -> Any:
    """Load a fitted detector from a ``.safetensors`` file or a joblib/pickle file.

    Parameters
    ----------
    path : str
        A file written by :func:`skhftt.persistence.save_detector`
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
        from skhftt.persistence import load_detector

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
    )
    parser.add_argument("detector", metavar="DETECTOR",
                        help="fitted detector: a .safetensors file or a joblib file")
    parser.add_argument("inputs", metavar="INPUT", nargs="+",
                        help="image folder, list file, .tar, .npy or .parquet shard, "
                             "LAION/clip-retrieval embedding folder, or image file")
    parser.add_argument("-o", "--output-dir", required=True, metavar="OUTPUT_DIR",
                        help="folder of the parquet outputs (created if needed)")
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
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address: score one shard per task on the cluster")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show a progress bar")
    parser.set_defaults(handler=_run_score)


def _run_score(args: argparse.Namespace) -> int:
    from skhftt.scoring import score_shards

    detector = load_detector_file(args.detector, encoder=args.encoder)
    num_workers = args.num_workers
    if num_workers is None:
        num_workers = 0 if args.scheduler else _default_workers()
    report = score_shards(
        detector,
        args.inputs,
        args.output_dir,
        kind=args.kind,
        shard_size=args.shard_size,
        embedding_column=args.embedding_column,
        id_column=args.id_column,
        batch_size=args.batch_size,
        num_workers=num_workers,
        device=args.device,
        client=args.scheduler,
        verbose=args.verbose,
    )
    print(report.summary())
    return 0


_COMMANDS: tuple[Callable[[Any], None], ...] = (_add_score,)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``skhftt`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Remove unwanted images with a detector trained on text alone.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in _COMMANDS:
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
    from skhftt.scoring import ScoringError

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
