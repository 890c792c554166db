"""``skhftt info``: what a detector file holds, without loading any model or running any code.

A ``.safetensors`` detector is summarised from its header alone: an 8-byte
length, then JSON (the kind, the parameters, the fitted scalars and lists,
the shape of every array); no estimator is built and nothing but the
standard library is imported. A joblib/pickle file is never unpickled,
since unpickling runs whatever code the file holds: ``info`` says what it
is and which classes it names, read from its opcodes without executing them.
"""

from __future__ import annotations

import argparse
import os
import pickletools
from typing import Any

from skhftt._header import read_skhftt_header
from skhftt.cli._common import command_parser

SUMMARY = "summarise a detector file"
EXAMPLES = """\
  skhftt info dogs.safetensors
"""
_PICKLE_PROTOCOLS = tuple(bytes([0x80, version]) for version in range(2, 6))
_COMPRESSED = {b"\x1f\x8b": "gzip", b"x\x9c": "zlib", b"x\x01": "zlib", b"x\xda": "zlib",
               b"BZh": "bz2", b"\xfd7zXZ": "xz", b"\x04\x22\x4d\x18": "lz4"}


def add_parser(commands: Any) -> None:
    """Add ``skhftt info`` to the subcommands."""
    parser = command_parser(
        commands, "info", SUMMARY,
        "Print what a detector file holds: its kind, its job (what it removes), its encoder "
        "(and whether that is a local directory, a Hub id or precomputed embeddings), "
        "embedding width, task columns, learned columns, temperature, threshold, and the "
        "skhftt version that wrote it. Reads the .safetensors header only: loads no model. "
        "A joblib/pickle file is never opened (loading one runs the code it holds); info "
        "says what it is and the classes it names.",
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


def _field(mapping: Any, key: str, kind: type | tuple[type, ...], path: str,
           where: str = "its header") -> Any:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if not isinstance(value, kind):
        raise ValueError(f"{path!r} is not a complete skhftt detector: {where} has no valid "
                         f"{key!r}.")
    return value


def _saved_facts(path: str) -> dict[str, Any]:
    """What a .safetensors detector holds, from its header alone (no estimator is built).

    Returns the format version, kind, the parameters, the fitted scalars and
    lists, the skhftt version that wrote it and the shape of every saved array.

    Raises
    ------
    ValueError
        The header is not that of a saved skhftt detector.
    """
    config, shapes = read_skhftt_header(path)
    version = config.get("format_version")
    if config.get("format") == "skhftt.HFTTDetector" and version == 1:  # skhftt 0.1
        kind = "HFTTDetector"
    else:
        kind = _field(config, "kind", str, path)
    return {"format_version": version, "kind": kind,
            "params": _field(config, "params", dict, path),
            "fitted": _field(config, "fitted", dict, path),
            "version": config.get("skhftt_version", "unknown"), "shapes": shapes}


def _encoder(fitted: dict[str, Any]) -> str:
    from skhftt.embedding.embedder import spec_kind

    spec = fitted.get("encoder_spec_")
    if isinstance(spec, str):
        return f"{spec} ({ENCODER_KINDS[spec_kind(spec)]})"
    return "none saved: fitted with an encoder object; give the model with --encoder"


def _job(facts: dict[str, Any]) -> str:
    """The detector's job in words: what it removes."""
    unwanted = facts["params"].get("unwanted")
    names = facts["fitted"].get("task_names_")
    if isinstance(names, list) and names:
        task = _names(names) if len(names) > 1 else str(names[0])
        what = ("images that match: " + ", ".join(map(str, names[:5]))
                + (f", … ({len(names) - 5} more)" if len(names) > 5 else "")
                if unwanted == "match" else f"images that do not match its task ({task})")
    else:
        what = ("images like the in-distribution images it was fitted on"
                if unwanted == "match" else
                "images unlike the in-distribution images it was fitted on")
    if unwanted in ("match", "mismatch"):
        return f"removes {what} (unwanted={unwanted})"
    return (f"removes {what} (unwanted=mismatch: not recorded, since skhftt "
            f"{facts['version']} recorded no job; it is taken as a keep job)")


def _rows(facts: dict[str, Any], path: str) -> dict[str, Any]:
    """What to print, by what this kind of detector holds."""
    fitted, shapes, params = facts["fitted"], facts["shapes"], facts["params"]
    rows: dict[str, Any] = {
        "file": f"{path} ({os.path.getsize(path):,} bytes)",
        "detector": facts["kind"],
        "job": _job(facts),
        "encoder": _encoder(fitted),
        "fitted with": fitted.get("encoder_identity_") or "precomputed embeddings",
        "embedding width": fitted.get("embedding_dim_"),
    }
    if "task_names_" in fitted:
        rows["task columns"] = _names(fitted["task_names_"])
    # An HFTT head's parts are saved as head_.*; the ensemble keeps its own.
    learned = shapes.get("head_.trainable_columns", shapes.get("trainable_columns_"))
    if learned:
        rows["learned columns (K)"] = learned[0]
        rows["temperature"] = fitted.get("head_.temperature", params.get("temperature"))
    if "mcm_weight" in params:
        rows["MCM weight"] = params["mcm_weight"]
    if shapes.get("negative_columns_"):
        rows["negative columns"] = shapes["negative_columns_"][0]
    classes = fitted.get("classes_")
    if isinstance(classes, list) or shapes.get("classes_"):
        rows["classes"] = _names(classes) if isinstance(classes, list) else shapes["classes_"][0]
    if shapes.get("reference_embeddings_"):
        rows["reference images"] = shapes["reference_embeddings_"][0]
    offset = fitted.get("offset_")
    shown = f"{offset:.4f}" if isinstance(offset, (int, float)) else repr(offset)
    rows["threshold"] = f"{params.get('threshold')} (score offset {shown})"
    rows["written by skhftt"] = facts["version"]
    return rows


def _pickle_globals(path: str, limit: int = 1 << 20) -> list[str]:
    """The classes and functions a pickle names, read from its opcodes, never executed.

    joblib writes array data between pickle opcodes, so the scan stops at the
    first thing that is no opcode; what it found by then is returned.
    """
    with open(path, "rb") as handle:
        data = handle.read(limit)
    found, strings = [], []
    try:
        for opcode, argument, _ in pickletools.genops(data):
            if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
                strings = [*strings[-1:], argument]
            elif opcode.name == "GLOBAL":
                found.append(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) == 2:
                found.append(".".join(strings))
    except Exception:  # any malformed stream: report what was read
        pass
    return list(dict.fromkeys(found))


def _pickle_rows(path: str, head: bytes) -> dict[str, Any] | None:
    """What can be said of a joblib/pickle file without opening it; None if it is none."""
    compressed = next((name for magic, name in _COMPRESSED.items() if head.startswith(magic)),
                      None)
    if compressed is None and not head.startswith(_PICKLE_PROTOCOLS):
        return None
    rows: dict[str, Any] = {
        "file": f"{path} ({os.path.getsize(path):,} bytes)",
        "format": (f"joblib/pickle, {compressed}-compressed" if compressed
                   else "joblib/pickle") + ": not opened, since loading a pickle runs the "
                  "code it holds",
    }
    if compressed is None:
        names = _pickle_globals(path)
        detectors = [name for name in names if name.startswith("skhftt.")]
        rows["names"] = ", ".join(detectors or names[:5]) or "none found"
    rows["to read it"] = ("if you trust the file, load it with joblib.load and save it with "
                          "skhftt.detectors.save_detector(det, 'det.safetensors'), which "
                          "info reads")
    return rows


def run(args: argparse.Namespace) -> int:
    """Print a detector summary; see ``skhftt info --help``."""
    path = args.detector
    if not os.path.isfile(path):
        raise FileNotFoundError(f"DETECTOR {path!r} not found.")
    with open(path, "rb") as handle:
        head = handle.read(8)
    rows = _pickle_rows(path, head)
    if rows is None:
        rows = _rows(_saved_facts(path), path)
    width = max(len(key) for key in rows) + 2
    for key, value in rows.items():
        print(f"{key + ':':<{width}}{value}")
    return 0
