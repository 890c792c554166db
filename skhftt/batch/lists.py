"""The lists ``skhftt filter`` writes, and the kept files it places in a folder.

A list (``keep.txt``, ``remove.txt``, ``errors.txt``) is a UTF-8 text file
of one id a line, each id as the score outputs store it: escaped by
:func:`skhftt.batch.ids.encode_id` when it holds a control character, bytes
that are not UTF-8, or a leading backslash, so that no id can add a line.
:func:`read_list` gives the original ids back.

Kept files are copied (or linked) into a folder under their own names;
files of the same name from other folders get ``1_``, ``2_``, ... prefixes.
:func:`plan_placements` decides every destination before anything is
written: a name among ``reserved`` (the lists themselves, when they are
written to the same folder) is never taken, and a file that an earlier run
already placed there (a copy of the same size and time, or else the same
content; a link to the same file) is recognised and left as it is, so a
rerun into the same folder places nothing twice.
"""

from __future__ import annotations

import filecmp
import itertools
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

from skhftt.batch.ids import as_line, decode_id

__all__ = ["place", "plan_placements", "read_list", "write_list"]


def write_list(path: str | os.PathLike[str], ids: Iterable[str]) -> None:
    """Write ids as stored in score outputs, one a line (see :func:`~skhftt.batch.ids.as_line`)."""
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for name in ids:
            handle.write(f"{as_line(name)}\n")


def read_list(path: str | os.PathLike[str]) -> list[str]:
    """The ids of a list written by :func:`write_list`, decoded.

    Returns
    -------
    list of str
        The original ids; a file name's bytes that are not UTF-8 are
        surrogate escapes, so ``os.fsencode(id)`` gives them back.
    """
    return [decode_id(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def _resolved(path: str | os.PathLike[str]) -> Path:
    """``path`` with its folder resolved (its own name is kept, even if it is a link)."""
    path = Path(path)
    return path.parent.resolve() / path.name


def _placed(source: str, destination: Path, link: bool) -> bool:
    """Whether ``destination`` is already ``source``, placed by an earlier run."""
    if link:
        return destination.is_symlink() and os.readlink(destination) == source
    return (not destination.is_symlink() and destination.is_file()
            and filecmp.cmp(source, destination, shallow=True))


def plan_placements(
    files: Sequence[str],
    folder: str | os.PathLike[str],
    *,
    link: bool = False,
    reserved: Iterable[str | os.PathLike[str]] = (),
) -> list[tuple[str, Path]]:
    """Where each file goes in ``folder``; only those not already placed there.

    Parameters
    ----------
    files : sequence of str
        Existing files, in order.
    folder : str or path-like
        Where they go; need not exist yet.
    link : bool, default=False
        Whether they are linked rather than copied.
    reserved : iterable of path
        Files that no placement may replace (the lists).

    Returns
    -------
    list of (str, pathlib.Path)
        The placements to make, each a file and its destination.
    """
    target = Path(folder)
    existing = {entry.name for entry in target.iterdir()} if target.is_dir() else set()
    real = target.resolve()
    kept = {_resolved(path) for path in reserved}
    claimed: set[str] = set()
    plan = []
    for source in files:
        base = os.path.basename(source)
        for copies in itertools.count():
            name = f"{copies}_{base}" if copies else base
            if name in claimed or real / name in kept:
                continue
            if name not in existing or _placed(source, target / name, link):
                claimed.add(name)
                if name not in existing:
                    plan.append((source, target / name))
                break
    return plan


def place(plan: Sequence[tuple[str, Path]], folder: str | os.PathLike[str], *,
          link: bool = False) -> None:
    """Copy (or link) each file of a plan of :func:`plan_placements` into ``folder``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    for source, destination in plan:
        if link:
            destination.symlink_to(source)
        else:
            shutil.copy2(source, destination)
