"""The record of a score run: what it was asked for, so that nothing decides on part of it.

Before it scores any shard, :func:`~skhftt.batch.score_shards` writes
``<output_dir>/skhftt-run.json``, atomically::

    {"format": "skhftt.run", "format_version": 1,
     "detector": "<digest of the detector>",
     "shards": ["images-00000.parquet", "images-00001.parquet", ...]}

``shards`` names the output file of every shard the run was asked for,
whether it is scored by this run or was already done. A rerun of the same
inputs with the same detector leaves the record as it is; a run of other inputs
with the same detector adds its shards to those recorded (one folder can
gather the scores of several inputs); a run with another detector starts a
new record of its own shards. :func:`missing_outputs` lists the recorded
shards without a complete output of the recorded detector (a killed run, a
shard that failed), and :func:`foreign_outputs` the score files of the
folder that are not part of the recorded run (left by a run with another
detector on other inputs): ``skhftt filter`` and
:func:`~skhftt.batch.select_rows` refuse to decide on such a folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from skhftt.batch.output import partial_path, publish, read_manifest

__all__ = ["RUN_FILE", "check_complete", "foreign_outputs", "missing_outputs", "read_run",
           "record_run"]

RUN_FILE = "skhftt-run.json"
RUN_FORMAT = "skhftt.run"
RUN_FORMAT_VERSION = 1


def read_run(scores_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run recorded in a scores folder, or None when it records none.

    Raises
    ------
    ValueError
        The record is not one :func:`record_run` wrote.
    """
    path = Path(scores_dir) / RUN_FILE
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"the run record {str(path)!r} is unreadable: {exc}") from exc
    if not (isinstance(run, dict) and run.get("format") == RUN_FORMAT
            and isinstance(run.get("detector"), str) and isinstance(run.get("shards"), list)):
        raise ValueError(f"{str(path)!r} is not a skhftt run record.")
    if run.get("format_version") != RUN_FORMAT_VERSION:
        raise ValueError(f"the run record {str(path)!r} has format_version "
                         f"{run.get('format_version')!r}; this skhftt reads version "
                         f"{RUN_FORMAT_VERSION}: upgrade skhftt.")
    return run


def record_run(output_dir: str | os.PathLike[str], detector: str,
               outputs: list[str]) -> dict[str, Any]:
    """Write the record of a run (see the module documentation); returns it.

    Parameters
    ----------
    output_dir : str or path-like
        An existing folder.
    detector : str
        The scorer's fingerprint.
    outputs : list of str
        The output file names of every shard of the run.
    """
    try:
        previous = read_run(output_dir)
    except ValueError:  # a damaged record is replaced by this run's
        previous = None
    shards = list(outputs)
    if previous is not None and previous["detector"] == detector:
        known = set(previous["shards"])
        shards = previous["shards"] + [name for name in outputs if name not in known]
    run = {"format": RUN_FORMAT, "format_version": RUN_FORMAT_VERSION, "detector": detector,
           "shards": shards}
    if run == previous:  # a rerun: the record stands as it is
        return run
    target = Path(output_dir) / RUN_FILE
    partial = partial_path(target)
    partial.write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    publish(partial, target)
    return run


def missing_outputs(scores_dir: str | os.PathLike[str]) -> list[str]:
    """The recorded shards of a scores folder without a complete output of its detector.

    Parameters
    ----------
    scores_dir : str or path-like
        A folder of :func:`~skhftt.batch.score_shards` outputs.

    Returns
    -------
    list of str
        Output file names, in the order of the record; empty when every
        recorded shard is scored, or when the folder records no run (it was
        written before skhftt recorded runs).

    Raises
    ------
    ValueError
        The record is damaged.
    """
    run = read_run(scores_dir)
    if run is None:
        return []
    missing = []
    for name in run["shards"]:
        manifest = read_manifest(Path(scores_dir) / name)
        if manifest is None or manifest.get("detector") != run["detector"]:
            missing.append(name)
    return missing


def foreign_outputs(scores_dir: str | os.PathLike[str]) -> list[str]:
    """The score files of a folder that are not part of its recorded run.

    Returns
    -------
    list of str
        Names of ``*.parquet`` files the record does not name; empty when
        the folder records no run.
    """
    run = read_run(scores_dir)
    if run is None:
        return []
    recorded = set(run["shards"])
    return sorted(path.name for path in Path(scores_dir).glob("*.parquet")
                  if path.name not in recorded)


def check_complete(scores_dir: str | os.PathLike[str], *, allow_incomplete: bool, name: str,
                   allow: str, rerun: str) -> str | None:
    """Refuse a scores folder whose recorded run misses shards or is mixed with other scores.

    Parameters
    ----------
    scores_dir : str or path-like
        A folder of score outputs.
    allow_incomplete : bool
        Whether missing shards are allowed (score files the record does not
        name never are).
    name, allow, rerun : str
        How the caller's interface calls the folder, the option that allows
        missing shards, and the command that finishes the run.

    Returns
    -------
    str or None
        With ``allow_incomplete``, a warning that says how many shards are
        missing; None when none is.

    Raises
    ------
    ValueError
        Score files that the record does not name, or (unless
        ``allow_incomplete``) recorded shards without a complete output.
    """
    foreign = foreign_outputs(scores_dir)
    if foreign:
        raise ValueError(
            f"{name} holds {len(foreign)} score file(s) that its {RUN_FILE} does not record "
            f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): scores of "
            "another detector or of an earlier run; move them out, or score into a new folder."
        )
    missing = missing_outputs(scores_dir)
    if not missing:
        return None
    total = len(read_run(scores_dir)["shards"])
    what = (f"{len(missing)} of the {total} shard(s) its score run was asked for have no "
            f"complete output ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})")
    if not allow_incomplete:
        raise ValueError(
            f"{name} is incomplete: {what}. Run {rerun} again to finish it (failed shards are "
            f"retried), or pass {allow} to decide on the {total - len(missing)} scored "
            "shard(s) alone."
        )
    return f"{name}: {what}; deciding on the {total - len(missing)} scored shard(s) alone."
