"""Progress of long encodes, shown even when nobody asked for it.

Encoding the bundled world corpus on a CPU takes half an hour; a silent half
hour looks like a hang. So an encode reports its progress on stderr in three
modes:

* ``show=True`` (``verbose >= 1``): a tqdm progress bar, always;
* ``show=False``: nothing;
* ``show=None`` (the default, ``verbose=0``): nothing for short work, but
  once the work is long -- at least :data:`LONG_ITEMS` items, or still
  running after :data:`LONG_SECONDS` -- a progress bar when stderr is a
  terminal, otherwise (a log file, a notebook, a job scheduler) one line with
  the rate and the time left.

The environment variable ``SKHFTT_PROGRESS=off`` silences the default mode.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["LONG_ITEMS", "LONG_SECONDS", "PROGRESS_ENV", "progress"]

PROGRESS_ENV = "SKHFTT_PROGRESS"
LONG_ITEMS = 10_000
"""Items (not yet cached) from which an encode counts as long from the start."""
LONG_SECONDS = 10.0
"""Seconds after which a still-running encode counts as long."""

_OFF = frozenset({"0", "off", "false", "no", "none"})
_AUTO = frozenset({"", "auto"})


def _auto_enabled() -> bool:
    value = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if value in _OFF:
        return False
    if value in _AUTO:
        return True
    raise ValueError(
        f"{PROGRESS_ENV}={os.environ[PROGRESS_ENV]!r} is not understood; expected 'off' "
        "(never report the progress of long encodes) or 'auto' (the default)."
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _bar(total: int, *, what: str, unit: str, initial: int = 0) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"Encoding {what}", unit=unit, file=sys.stderr)


class _Automatic:
    """The default mode: silent until the work proves long, then one report."""

    def __init__(self, total: int, *, what: str, unit: str, detail: str) -> None:
        self.total = total
        self.what = what
        self.unit = unit
        self.detail = detail
        self.done = 0
        self.start = time.monotonic()
        self.long = total >= LONG_ITEMS
        self.reported = False
        self.bar: Any = None
        if self.long and sys.stderr.isatty():
            self.bar = _bar(total, what=what, unit=unit)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        elapsed = time.monotonic() - self.start
        if not self.long and elapsed >= LONG_SECONDS and self.done < self.total:
            self.long = True
            if sys.stderr.isatty():
                self.bar = _bar(self.total, what=self.what, unit=self.unit, initial=self.done)
                return
        if self.long and not self.reported and self.done < self.total:
            self.reported = True
            self._line(elapsed)

    def _line(self, elapsed: float) -> None:
        rate = self.done / max(elapsed, 1e-9)
        left = (self.total - self.done) / rate
        sys.stderr.write(
            f"skhftt: encoding {self.total:,} {self.what}{self.detail}: "
            f"{self.done:,} done at {rate:,.0f} {self.unit}s/s, about {_duration(left)} "
            f"left. ({PROGRESS_ENV}=off hides this line; verbose=1 shows a progress bar.)\n"
        )
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextlib.contextmanager
def progress(
    total: int, *, what: str, unit: str, show: bool | None, detail: str = ""
) -> Iterator[Callable[[int], None]]:
    """Report the progress of encoding ``total`` items; yields ``update(n_done)``.

    Parameters
    ----------
    total : int
        Items to encode (cache hits excluded).
    what, unit : str
        Plural and singular name of the items, e.g. ``"texts"``, ``"text"``.
    show : bool or None
        True: a progress bar. False: nothing. None: report only long work
        (see the module documentation).
    detail : str, default=""
        Appended to the subject of the one-line report, e.g. ``" with
        'model' (cached in '~/.cache/skhftt' for later runs)"``.
    """
    if show:
        with _bar(total, what=what, unit=unit) as bar:
            yield bar.update
        return
    if show is False or total == 0 or not _auto_enabled():
        yield lambda n: None
        return
    report = _Automatic(total, what=what, unit=unit, detail=detail)
    try:
        yield report.update
    finally:
        report.close()
