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


ENCODER_KINDS = {"local": "local directory", "hub": "Hub id", "precomputed": "precomputed",
                 "object": "encoder object"}


def _names(names: Any) -> str:
    names = [str(name) for name in names]
    shown = ", ".join(names[:5])
    return f"{len(names)}: {shown}" + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")


def _saved_facts(path: str) -> dict[str, Any]:
    """What a .safetensors detector holds, from its header alone (no estimator is built).

    Returns the kind, the parameters, the fitted scalars and lists, the
    skhftt version that wrote it and the shape of every saved array.
    """
    import json

    from safetensors import safe_open

    with safe_open(path, framework="numpy") as handle:
        raw = (handle.metadata() or {}).get("skhftt")
        if raw is None:
            raise ValueError(f"{path!r} is a safetensors file but not a skhftt detector.")
        config = json.loads(raw)
        shapes = {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    return {"kind": config["kind"], "params": config["params"], "fitted": config["fitted"],
            "version": config.get("skhftt_version", "unknown"), "shapes": shapes}


def _pickled_facts(path: str) -> dict[str, Any]:
    """The same facts from a loaded joblib/pickle detector."""
    import skhftt
    from skhftt.embedding.embedder import resolvable_spec

    detector = load_detector_file(path, encoder=None)
    state = detector._fitted_state()
    fitted = {key: value for key, value in state.items() if not hasattr(value, "shape")}
    if fitted.get("encoder_spec_") is None:  # skhftt 0.1 pickles record no fitted spec
        fitted["encoder_spec_"] = resolvable_spec(detector.encoder)
    return {"kind": type(detector).__name__, "params": detector.get_params(deep=False),
            "fitted": fitted,
            "version": f"unknown (joblib file; this is skhftt {skhftt.__version__})",
            "encoder_object": type(detector.encoder).__name__,
            "shapes": {key: value.shape for key, value in state.items()
                       if hasattr(value, "shape")}}


def _encoder(facts: dict[str, Any]) -> str:
    from skhftt.embedding.embedder import spec_kind

    spec = facts["fitted"].get("encoder_spec_")
    if spec is not None:
        return f"{spec} ({ENCODER_KINDS[spec_kind(spec)]})"
    if "encoder_object" in facts:
        return f"an encoder object ({facts['encoder_object']}), in the pickle"
    return "none saved: fitted with an encoder object; give the model with --encoder"


def _rows(facts: dict[str, Any], path: str) -> dict[str, Any]:
    """What to print, by what this kind of detector holds."""
    fitted, shapes = facts["fitted"], facts["shapes"]
    rows: dict[str, Any] = {
        "file": f"{path} ({os.path.getsize(path):,} bytes)",
        "detector": facts["kind"],
        "encoder": _encoder(facts),
        "fitted with": fitted.get("encoder_identity_") or "precomputed embeddings",
        "embedding width": fitted["embedding_dim_"],
    }
    if "task_names_" in fitted:
        rows["task columns"] = _names(fitted["task_names_"])
    # An HFTT head's parts are saved as head_.*; the ensemble keeps its own.
    learned = shapes.get("head_.trainable_columns", shapes.get("trainable_columns_"))
    if learned is not None:
        rows["learned columns (K)"] = learned[0]
        rows["temperature"] = fitted.get("head_.temperature", facts["params"].get("temperature"))
    if "mcm_weight" in facts["params"]:
        rows["MCM weight"] = facts["params"]["mcm_weight"]
    if "negative_columns_" in shapes:
        rows["negative columns"] = shapes["negative_columns_"][0]
    if "classes_" in fitted or "classes_" in shapes:
        classes = fitted.get("classes_")
        rows["classes"] = _names(classes) if classes is not None else shapes["classes_"][0]
    if "reference_embeddings_" in shapes:
        rows["reference images"] = shapes["reference_embeddings_"][0]
    threshold = facts["params"].get("threshold")
    rows["threshold"] = f"{threshold} (score offset {fitted['offset_']:.4f})"
    rows["written by skhftt"] = facts["version"]
    return rows


def run(args: argparse.Namespace) -> int:
    """Print a detector summary; see ``skhftt info --help``."""
    pickled = not args.detector.endswith(".safetensors")
    facts = _pickled_facts(args.detector) if pickled else _saved_facts(args.detector)
    rows = _rows(facts, args.detector)
    width = max(len(key) for key in rows) + 2
    for key, value in rows.items():
        print(f"{key + ':':<{width}}{value}")
    return 0
