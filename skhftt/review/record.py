"""The record of a removal (``manifest.json``), and the same record applied again as a plan.

A record says what decided a removal, so that anyone can audit or reproduce
it: the skhftt version and the time; the scores (their folder, a digest of
the score files, the detector fingerprints and encoder identity their
footers record); each detector's kind, job, parameters, file and SHA-256,
and the digests of the task texts and world corpus it was fitted on; the
rule with its parameters, the calibration set (path, rows, fingerprint);
each detector's resolved cut-off; the counts; and the files written, with
their SHA-256.

A plan is such a record: :func:`read_plan` reads one, :func:`check_plan`
refuses it for scores of another detector or encoder, and :func:`plan_cuts`
gives its cut-offs, which apply to new scores without recalibrating.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from skhftt.batch.scorers import file_sha256
from skhftt.detectors.base import job_words
from skhftt.review.cuts import Cut
from skhftt.review.decision import Decision
from skhftt.review.scores import ScoreFiles

__all__ = ["FORMAT", "check_plan", "decision_record", "plan_cuts", "read_plan", "scores_digest",
           "write_json"]

FORMAT = "skhftt.decision"
FORMAT_VERSION = 1
_DETECTOR_KEYS = ("detector_kind", "unwanted", "score", "threshold_kind", "offset",
                  "detector_params", "training_digests", "task", "detector_file",
                  "detector_sha256")


def scores_digest(files: ScoreFiles) -> str:
    """SHA-256 of what identifies each score file: its name, shard, detector and rows."""
    digest = hashlib.sha256()
    for _, path, manifest, _ in files.spans():
        digest.update(json.dumps([path.name, manifest.get("shard"), manifest.get("detector"),
                                  manifest["n_rows"]]).encode())
    return f"sha256:{digest.hexdigest()}"


def array_fingerprint(values: np.ndarray) -> str:
    """SHA-256 of an array of scores (float64, in order)."""
    return f"sha256:{hashlib.sha256(np.ascontiguousarray(values, np.float64)).hexdigest()}"


def _detector(part: Any) -> dict[str, Any]:
    described = {key: part.described.get(key) for key in _DETECTOR_KEYS}
    described["job"] = job_words(described["unwanted"] or "mismatch")
    return {"concept": part.concept, "detector": described, "cut": part.cut.to_dict()}


def decision_record(decision: Decision, files: ScoreFiles, *, command: str, source: str,
                    outputs: dict[str, str | os.PathLike[str]]) -> dict[str, Any]:
    """The record of a decision (see the module documentation).

    Parameters
    ----------
    decision : Decision
    files : ScoreFiles
        The score files decided on.
    command : str
        What decided, e.g. ``"filter"``.
    source : str
        The scores folder or file, as given.
    outputs : dict
        Name -> path of each file written, recorded with its SHA-256.
    """
    from skhftt import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "skhftt_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "scores": {
            "source": os.path.abspath(source),
            "files": len(files.paths),
            "rows": len(files),
            "digest": scores_digest(files),
            "detectors": sorted({m["detector"] for m in files.manifests}),
            "encoders": sorted({m.get("encoder") for m in files.manifests}, key=str),
        },
        "rule": decision.rule,
        "calibration": decision.calibration,
        "decisions": [_detector(part) for part in decision.parts],
        "counts": decision.counts(),
        "outputs": {name: {"path": os.path.abspath(path), "sha256": file_sha256(path)}
                    for name, path in outputs.items()},
    }


def write_json(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Write a record as JSON, atomically (a complete file or none)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)


def read_plan(path: str | os.PathLike[str], flag: str = "plan") -> dict[str, Any]:
    """A record written by ``skhftt filter`` (``--save-plan``, ``manifest.json``) or ``review``.

    Raises
    ------
    ValueError
        The file is no such record, or its cut-offs come from scores of
        several detectors.
    """
    name = os.fspath(path)
    try:
        plan = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{flag} {name!r} is not a removal plan (JSON): {exc}.") from exc
    if not isinstance(plan, dict) or plan.get("format") != FORMAT:
        raise ValueError(f"{flag} {name!r} is not a removal plan: write one with 'skhftt filter "
                         "--save-plan' (or use the manifest.json of filter or review).")
    try:
        complete = ({"scores", "rule", "calibration", "decisions"} <= set(plan)
                    and {"detectors", "encoders"} <= set(plan["scores"])
                    and bool(plan_cuts(plan)))
    except (KeyError, TypeError, ValueError):
        complete = False
    if not complete:
        raise ValueError(f"{flag} {name!r} is an incomplete removal plan (its scores, rule, "
                         "calibration or cut-offs are missing or malformed); write it again "
                         "with 'skhftt filter --save-plan'.")
    detectors = plan["scores"]["detectors"]
    if len(detectors) != 1:
        raise ValueError(f"{flag} {name!r} was resolved on scores of {len(detectors)} "
                         "detectors; a plan applies one detector's cut-offs.")
    return plan


def _encoder(identity: str | None) -> str:
    return "no named encoder (precomputed)" if identity is None else f"encoder {identity!r}"


def _named(fingerprint: str, described: dict[str, Any]) -> str:
    source = described.get("detector_file")
    where = f" from {source!r}" if source else ""
    return f"detector {fingerprint} ({described.get('detector_kind')}{where})"


def check_plan(plan: dict[str, Any], files: ScoreFiles, flag: str = "plan",
               name: str = "") -> None:
    """Refuse a plan for scores of another encoder or detector, naming both.

    Raises
    ------
    ValueError
        A score file whose encoder identity or detector fingerprint is not
        the plan's.
    """
    wanted = plan["scores"]["detectors"][0]
    encoders = plan["scores"]["encoders"]
    planned = plan["decisions"][0]["detector"]
    for _, path, manifest, _ in files.spans():
        if manifest.get("encoder") not in encoders:
            raise ValueError(
                f"{flag} {name!r} was resolved on scores of {_encoder(encoders[0])}, but "
                f"{str(path)!r} was scored with {_encoder(manifest.get('encoder'))}: its scores "
                "live in another space. Score the shards with the plan's detector and encoder.")
        if manifest["detector"] != wanted:
            described = manifest if "concepts" not in manifest else manifest["concepts"][0]
            raise ValueError(
                f"{flag} {name!r} was resolved on scores of {_named(wanted, planned)}, but "
                f"{str(path)!r} was scored by {_named(manifest['detector'], described)}. Score "
                "the shards with the plan's detector, or resolve a new plan on these scores.")


def plan_cuts(plan: dict[str, Any]) -> list[tuple[str | None, Cut]]:
    """Each ``(concept, cut)`` of a plan: None for one detector's scores."""
    return [(entry["concept"], Cut.from_dict(entry["cut"])) for entry in plan["decisions"]]
