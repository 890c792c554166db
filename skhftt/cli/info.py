"""``skhftt info``: what a detector file holds, without loading any model."""

from __future__ import annotations

import argparse
import os
from typing import Any

from skhftt.cli._common import command_parser, load_detector_file

SUMMARY = "summarise a detector file"
EXAMPLES = """\
  skhftt info dogs.safetensors
"""


def add_parser(commands: Any) -> None:
    """Add ``skhftt info`` to the subcommands."""
    parser = command_parser(
        commands, "info", SUMMARY,
        "Print what a detector file holds: its kind, its encoder (and whether that is a "
        "local directory, a Hub id or precomputed embeddings), embedding width, task "
        "columns, learned columns, temperature, threshold, and the skhftt version that "
        "wrote it. Loads no model.",
        EXAMPLES,
    )
    parser.add_argument("detector", metavar="DETECTOR", help="fitted detector file")
    parser.set_defaults(handler=run)


ENCODER_KINDS = {"local": "local directory", "hub": "Hub id", "precomputed": "precomputed"}


def _encoder(detector: Any, pickled: bool) -> str:
    """The encoder spec a detector was fitted with, and what it is."""
    from skhftt.embedding.embedder import resolvable_spec, spec_kind

    spec = getattr(detector, "encoder_spec_", None)
    if spec is None and pickled:  # skhftt 0.1 pickles record no fitted spec
        spec = resolvable_spec(detector.encoder)
    if spec is not None:
        return f"{spec} ({ENCODER_KINDS[spec_kind(spec)]})"
    if pickled:
        return f"an encoder object ({type(detector.encoder).__name__}), in the pickle"
    return "none saved: fitted with an encoder object; give the model with --encoder"


def _names(names: Any) -> str:
    names = [str(name) for name in names]
    shown = ", ".join(names[:5])
    return f"{len(names)}: {shown}" + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")


def _written_by(path: str) -> str:
    import skhftt

    if not path.endswith(".safetensors"):
        return f"unknown (joblib file; this is skhftt {skhftt.__version__})"
    import json

    from safetensors import safe_open

    with safe_open(path, framework="numpy") as handle:
        return json.loads(handle.metadata()["skhftt"]).get("skhftt_version", "unknown")


def _rows(detector: Any, path: str, pickled: bool) -> dict[str, Any]:
    """What to print, by what this kind of detector has."""
    rows: dict[str, Any] = {
        "file": f"{path} ({os.path.getsize(path):,} bytes)",
        "detector": type(detector).__name__,
        "encoder": _encoder(detector, pickled),
        "fitted with": detector.encoder_identity_ or "precomputed embeddings",
        "embedding width": detector.embedding_dim_,
    }
    if hasattr(detector, "task_names_"):
        rows["task columns"] = _names(detector.task_names_)
    if hasattr(detector, "head_"):
        rows["learned columns (K)"] = detector.trainable_columns_.shape[0]
        rows["temperature"] = detector.head_.temperature
    if hasattr(detector, "negative_columns_"):
        rows["negative columns"] = detector.negative_columns_.shape[0]
    if hasattr(detector, "classes_"):
        rows["classes"] = _names(detector.classes_)
    if hasattr(detector, "reference_embeddings_"):
        rows["reference images"] = detector.reference_embeddings_.shape[0]
    rows["threshold"] = f"{detector.threshold} (score offset {detector.offset_:.4f})"
    rows["written by skhftt"] = _written_by(path)
    return rows


def run(args: argparse.Namespace) -> int:
    """Print a detector summary; see ``skhftt info --help``."""
    from skhftt.embedding.encoders.registry import PRECOMPUTED

    # A file keeps the fitted spec whatever encoder it is loaded with, and one of a
    # detector fitted with an encoder object loads only with another encoder.
    pickled = not args.detector.endswith(".safetensors")
    detector = load_detector_file(args.detector, encoder=None if pickled else PRECOMPUTED)
    rows = _rows(detector, args.detector, pickled)
    width = max(len(key) for key in rows) + 2
    for key, value in rows.items():
        print(f"{key + ':':<{width}}{value}")
    return 0
