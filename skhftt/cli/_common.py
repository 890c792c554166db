"""What the ``skhftt`` commands share: exit codes, option types, files in and out.

Everything here is imported when the parser is built, so it imports only the
standard library at module level; each helper imports what it needs when it
runs, which keeps ``skhftt --help`` and ``skhftt info`` fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROG = "skhftt"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_READER_GONE = 141  # 128 + SIGPIPE, as a shell reports a tool whose reader went away
PLOT_HINT = 'pip install "skhftt[plot]"'
TINY_CLIP_HINT = (
    "python -c \"from skhftt.testing import build_tiny_clip; build_tiny_clip('tiny-clip')\""
)


# ------------------------------------------------------------ option types


def positive(text: str) -> int:
    """An ``int`` option that must be at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> int:
    """An ``int`` option that must be at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """A ``float`` option that must be above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """A ``float`` option that must be at least 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def unit_interval(text: str) -> float:
    """A ``float`` option strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


def command_parser(commands: Any, name: str, summary: str, description: str,
                   examples: str) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` ends with examples, printed as written."""
    return commands.add_parser(
        name, help=summary, description=description,
        epilog="examples:\n" + examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# ---------------------------------------------------------- output checks


def _writable_folder(folder: Path, flag: str, what: str) -> None:
    """Raise unless ``folder`` exists (or can be created) and can be written to."""
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(
            f"{flag} {what}: {str(existing)!r} is not a folder, so nothing can be written there."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{flag} {what}: folder {str(existing)!r} is not writable.")


def check_output_file(path: str, flag: str) -> None:
    """Raise unless file ``path`` can be written, before any work is done.

    Its folder must exist already (a typo in it would otherwise create a
    tree of folders), and ``path`` must not be a folder.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"{flag} {path!r} is a folder; give a file name.")
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{flag} {path!r}: folder {str(folder)!r} does not exist; create it first."
        )
    _writable_folder(folder, flag, repr(path))


def check_output_dir(path: str, flag: str) -> None:
    """Raise unless folder ``path`` exists or can be created, and can be written to."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{flag} {path!r} is a file, not a folder.")
    _writable_folder(target, flag, repr(path))


# ------------------------------------------------------------------ inputs


def check_inputs_exist(paths: Sequence[str], flag: str) -> None:
    """Raise ``FileNotFoundError`` naming the first of ``paths`` that does not exist."""
    for path in paths:
        if not os.path.lexists(os.path.expanduser(path)):
            raise FileNotFoundError(f"{flag} {path!r} not found.")


def absolute_inputs(paths: Sequence[str]) -> list[str]:
    """Inputs as absolute paths, so that the ids written for them resolve from anywhere."""
    return [os.path.abspath(os.path.expanduser(path)) for path in paths]


# ---------------------------------------------------------------- encoders


def encoder_spec(spec: str) -> str:
    """``--encoder`` as given, with a local model directory made absolute.

    A detector stores its encoder spec; a relative directory would name
    another folder (or a Hub id) when the detector is used elsewhere.
    """
    from skhftt.embedding.embedder import resolvable_spec

    return resolvable_spec(spec)


@contextmanager
def encoder_errors(spec: Any) -> Iterator[None]:
    """Reword an unavailable encoder model in the words of the command line."""
    from skhftt.embedding.encoders import EncoderUnavailableError

    try:
        yield
    except EncoderUnavailableError as exc:
        raise EncoderUnavailableError(
            f"cannot load the encoder {os.fspath(spec)!r}: it is not in this machine's "
            "Hugging Face cache and the Hub cannot be reached. Save the model to a "
            "directory on a machine with internet access (e.g. `hf download MODEL "
            "--local-dir clip-dir`), copy it here and pass --encoder /path/to/clip-dir. "
            "To try the pipeline offline, run examples/filter_folder.py, or build a tiny "
            f"random CLIP with {TINY_CLIP_HINT} and pass --encoder tiny-clip."
        ) from exc


# --------------------------------------------------------------- detectors


def load_detector_file(path: str, *, encoder: str | None = None, flag: str = "DETECTOR") -> Any:
    """Load a fitted detector of any kind from a ``.safetensors`` or joblib file.

    Parameters
    ----------
    path : str
        A file written by :func:`skhftt.detectors.save_detector`
        (``.safetensors``) or by ``joblib.dump`` (any other name; loading a
        pickle runs code, so load only files you trust).
    encoder : str, optional
        Encoder spec replacing the saved one (e.g. a local copy of the
        model, or ``"precomputed"``).
    flag : str, default="DETECTOR"
        How the command line names ``path`` in errors.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file holds no fitted skhftt detector.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{flag} {path!r} not found.")
    if path.endswith(".safetensors"):
        return _load_safetensors(path, encoder, flag)
    import joblib
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    from skhftt.detectors.base import BaseTextDetector

    try:
        detector = joblib.load(path)
    except Exception as exc:  # unpickling raises many types for a file that is not one
        raise ValueError(
            f"{flag} {path!r} is neither a .safetensors detector nor a joblib file of one "
            f"({type(exc).__name__}: {exc})."
        ) from exc
    if not isinstance(detector, BaseTextDetector):
        raise ValueError(
            f"{flag} {path!r} holds a {type(detector).__name__}, not a skhftt detector."
        )
    try:
        check_is_fitted(detector)
    except NotFittedError as exc:
        raise ValueError(f"{flag} {path!r} holds an unfitted {type(detector).__name__}.") from exc
    if encoder is not None:
        detector.set_params(encoder=encoder_spec(encoder))
    return detector


def _load_safetensors(path: str, encoder: str | None, flag: str) -> Any:
    from skhftt.detectors.persistence import load_detector
    from skhftt.embedding.encoders.registry import PRECOMPUTED

    if encoder is not None:
        return load_detector(path, encoder=encoder_spec(encoder))
    try:
        return load_detector(path)
    except ValueError as exc:
        # Loading without a model fails only for the file itself; if that works,
        # what is missing is the encoder object the detector was fitted with.
        fitted = load_detector(path, encoder=PRECOMPUTED)
        raise ValueError(
            f"{flag} {path!r} was fitted with an encoder object "
            f"({fitted.encoder_identity_!r}), which a file cannot hold: pass --encoder "
            "with that model's spec or folder, or --encoder precomputed to score embeddings."
        ) from exc


# ----------------------------------------------------------- world corpus


def add_world_options(parser: argparse.ArgumentParser, *, default: str) -> None:
    """``--world FILE`` or ``--world-words N``: the world corpus."""
    world = parser.add_mutually_exclusive_group()
    world.add_argument("--world", metavar="FILE",
                       help="world corpus: a text file (one text a line), .csv/.tsv/.parquet "
                            "(first column), or a .npy of text embeddings for a precomputed "
                            "detector")
    world.add_argument("--world-words", type=positive, metavar="N",
                       help=f"the N most frequent words of the bundled corpus ({default})")


def read_world(args: argparse.Namespace, *, texts_only: bool = False) -> Any:
    """The texts (or, unless ``texts_only``, embeddings) of ``--world`` / ``--world-words``.

    Returns None when neither option is given.
    """
    from skhftt.corpora import load_world_corpus, read_texts

    if args.world is not None:
        check_inputs_exist([args.world], "--world")
        if args.world.endswith(".npy"):
            if texts_only:
                raise ValueError(f"--world {args.world!r}: give the world texts here, and "
                                 "their embeddings with --world-embeddings.")
            import numpy as np

            return np.load(args.world)
        return read_texts(args.world)
    if args.world_words is not None:
        return load_world_corpus(args.world_words)
    return None


# ------------------------------------------------------- scoring options


def add_input_options(parser: argparse.ArgumentParser, *, scheduler: bool) -> None:
    """Options on how inputs are read and embedded, shared by the commands that score."""
    from skhftt.batch.shards import DEFAULT_SHARD_SIZE, KINDS

    workers = "image decoding processes (default: up to 8, one less than the CPUs"
    parser.add_argument("--kind", choices=KINDS,
                        help="read every input as this kind instead of detecting it")
    parser.add_argument("--batch-size", type=positive, default=256,
                        help="images per encoder batch (default: 256)")
    parser.add_argument("--num-workers", type=non_negative, default=None,
                        help=workers + ("; 0 with --scheduler)" if scheduler else ")"))
    parser.add_argument("--device", help="device of the encoder, e.g. cpu, cuda, cuda:1 "
                                         "(default: the detector's)")
    parser.add_argument("--encoder", help="encoder spec or model folder replacing the saved one")
    parser.add_argument("--shard-size", type=positive, default=DEFAULT_SHARD_SIZE,
                        help=f"images per output file for folders and list files "
                             f"(default: {DEFAULT_SHARD_SIZE})")
    parser.add_argument("--embedding-column", help="embedding column of parquet shards")
    parser.add_argument("--id-column", help="id column of parquet shards and LAION metadata")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="show a progress bar")


def default_workers() -> int:
    """Image decoding processes when ``--num-workers`` is not given."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def check_device(device: str | None) -> None:
    """Raise, naming ``--device``, unless it is a device this machine understands."""
    if device is None:
        return
    from skhftt.embedding.device import resolve_device

    try:
        resolve_device(device)
    except ValueError as exc:
        raise ValueError(f"--device {device!r} is not a device of this machine; expected auto, "
                         "cpu, or one present here: cuda, cuda:N or mps.") from exc


def score_inputs(detector: Any, inputs: Sequence[str], output_dir: str,
                 args: argparse.Namespace, *, encoder: Any) -> Any:
    """Score ``inputs`` into ``output_dir`` with the options of :func:`add_input_options`.

    Inputs are passed as absolute paths, so the ids of image files in the
    outputs name the files from any working directory.

    Returns
    -------
    ScoringReport
    """
    from skhftt.batch import score_shards

    scheduler = getattr(args, "scheduler", None)
    num_workers = args.num_workers
    if num_workers is None:
        num_workers = 0 if scheduler else default_workers()
    with encoder_errors(encoder):
        return score_shards(
            detector,
            absolute_inputs(inputs),
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
