"""The review page: one self-contained HTML file that shows what a removal decision removes.

The page needs no server and no network: styles, a small script and the
score histograms (SVG) are inline, and every thumbnail is a ``data:`` URI,
so it opens from ``file://`` on an offline machine and can be mailed as
one file. Per detector (or concept) it shows the counts, the rule and its
resolved cut-off, the histogram of scores with the cut marked, and grids of
rows (:mod:`skhftt.review.picks`), each with its id, score, rank and, where
the detector can explain, the column that dominated its score. Several
concepts get a section each, then the combined decision.

Every tile carries ``data-row``, ``data-id`` and ``data-score``; every grid
``data-grid`` and ``data-count``; once loaded, each image records its
``naturalWidth`` in ``data-natural-width`` (0 for an image that did not
load), so that a browser test can check what the page shows.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from skhftt.detectors.base import job_words
from skhftt.review.decision import Decision, Part, orient
from skhftt.review.picks import Grid, decision_grids, error_grid, ranks, sample_grid
from skhftt.review.scores import ScoreFiles
from skhftt.review.thumbnails import Shown, read_rows

__all__ = ["write_review"]

BINS = 60
_STYLE = """
:root { --removed: #b03a2e; --kept: #1e7d45; --error: #6c757d; --ink: #1d2330;
        --muted: #5f6b7a; --line: #dde1e7; --paper: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--ink); background: var(--paper); }
header, section { max-width: 1240px; margin: 0 auto; padding: 20px 28px; }
header { padding-top: 28px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 6px; }
h3 { font-size: 15px; margin: 22px 0 8px; }
h3 small, .meta, .rule, dt { color: var(--muted); font-weight: normal; }
section { background: #fff; border: 1px solid var(--line); border-radius: 10px;
          margin-bottom: 22px; }
.counts { display: flex; gap: 12px; margin: 14px 0; flex-wrap: wrap; }
.count { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px;
         background: #fff; min-width: 132px; }
.count b { display: block; font-size: 22px; }
.count.removed b { color: var(--removed); } .count.kept b { color: var(--kept); }
.count.errors b { color: var(--error); }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 8px 0; }
dd { margin: 0; overflow-wrap: anywhere; }
.cut { font-weight: 600; }
.notes { background: #fff8e1; border: 1px solid #f0d98c; border-radius: 8px;
         padding: 8px 14px; }
svg.histogram { width: 100%; max-width: 760px; height: auto; display: block; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(148px, 1fr));
        gap: 10px; }
.tile { margin: 0; background: #fff; border: 1px solid var(--line);
        border-top: 4px solid var(--kept); border-radius: 6px; overflow: hidden; }
.tile.removed { border-top-color: var(--removed); }
.tile.failed { border-top-color: var(--error); }
.tile .pixels { display: flex; align-items: center; justify-content: center; height: 136px;
                background: repeating-conic-gradient(#eef0f3 0 25%, #fff 0 50%) 0 0/16px 16px; }
.tile img { max-width: 128px; max-height: 128px; min-width: 64px; min-height: 64px;
            object-fit: contain; image-rendering: auto; }
.tile .text { min-height: 56px; max-height: 136px; padding: 8px; overflow: hidden; font-size: 12px;
              background: #f1f3f6; color: var(--ink); }
figcaption { padding: 5px 7px 7px; font-size: 12px; }
.line { display: flex; justify-content: space-between; gap: 6px; }
.rank { color: var(--muted); }
.id { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
      color: var(--muted); }
.text a { overflow-wrap: anywhere; }
.text.error { color: #7a2a22; background: #fbeeed; overflow-wrap: anywhere; }
.why, .note { display: block; font-size: 11px; color: #3b4a63; margin-top: 2px; }
.note { color: var(--error); }
a { color: #1f5fbf; }
.band { display: grid; grid-template-columns: 1fr; gap: 6px; }
.cutline { border-top: 2px dashed var(--ink); margin: 8px 0 2px; padding-top: 2px;
           font-size: 12px; color: var(--muted); }
"""
_SCRIPT = """
window.addEventListener("load", function () {
  for (const image of document.images) {
    image.dataset.naturalWidth = image.complete ? image.naturalWidth : 0;
  }
  document.body.dataset.loaded = "true";
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float) -> str:
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _rule_words(rule: dict[str, Any], calibration: dict[str, Any] | None) -> str:
    method = rule["method"]
    if method == "plan":
        return (f"the cut-offs of the plan {rule['plan']['path']} (resolved by "
                f"{_rule_words(rule['resolved_with'], calibration)}), applied as they are")
    clean = "" if calibration is None else (
        f" ({calibration['rows']:,} clean rows of {calibration['path']})")
    return {
        "probability": "each detector's own threshold (--method probability)",
        "fraction": f"remove the most unwanted {rule.get('fraction', 0):.2%} of the rows",
        "tpr": f"keep {rule.get('tpr', 0):.2%} of the clean calibration samples{clean}",
        "fdr": (f"conformal selection, expected share of clean rows among those removed "
                f"at most {rule.get('alpha', 0):.2%}{clean}"),
    }.get(method, method)


def _count(kind: str, label: str, value: int, total: int) -> str:
    share = f"{value / total:.1%}" if total else "–"
    return (f'<div class="count {kind}" data-count-{kind}="{value}"><b>{value:,}</b>'
            f"{label} · {share}</div>")


class _Scores:
    """A part's oriented scores, its scores in the detector's units, and its ranks."""

    def __init__(self, part: Part, files: ScoreFiles) -> None:
        described = part.described
        if part.oriented is None:
            column = "score" if part.concept is None else f"{part.concept}_score"
            part.oriented = orient(files.column(column), described["offset"], part.cut.side)
        self.part = part
        self.oriented = part.oriented
        self.removed = part.removed()
        self.ordered = np.sort(self.oriented[~np.isnan(self.oriented)])

    def score(self, oriented: np.ndarray | float) -> Any:
        cut = self.part.cut
        if cut.offset is None:
            return oriented
        return cut.offset + oriented if cut.side == "match" else cut.offset - oriented

    @property
    def axis(self) -> str:
        if self.part.cut.offset is None:
            return "oriented score (higher = more unwanted)"
        return str(self.part.described.get("score") or "score")


def _histogram(scores: _Scores) -> str:
    """An SVG histogram of a part's scores, the removed side shaded, the cut marked."""
    values = scores.score(scores.ordered)
    cut = float(scores.score(scores.part.cut.threshold))
    if len(values) == 0:
        return '<p class="meta">No row was scored.</p>'
    low, high = min(float(values.min()), cut), max(float(values.max()), cut)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(values, bins=BINS, range=(low, high))
    width, height, left, bottom, top = 760, 210, 48, 34, 14
    plot_w, plot_h = width - left - 12, height - bottom - top
    x = lambda value: left + (value - low) / (high - low) * plot_w  # noqa: E731
    peak = max(int(counts.max()), 1)
    removed_side = scores.part.cut.side == "match"  # removed above the cut, in score units
    parts = [f'<svg class="histogram" data-bins="{BINS}" data-cut="{cut!r}" viewBox="0 0 '
             f'{width} {height}" role="img" aria-label="histogram of scores with the cut">']
    shade_from, shade_to = (x(cut), left + plot_w) if removed_side else (left, x(cut))
    parts.append(f'<rect x="{shade_from:.1f}" y="{top}" width="{shade_to - shade_from:.1f}" '
                 f'height="{plot_h}" fill="var(--removed)" opacity="0.07"/>')
    for count, start, stop in zip(counts, edges[:-1], edges[1:], strict=True):
        if not count:
            continue
        middle = (start + stop) / 2
        removed = middle > cut if removed_side else middle < cut
        bar = max(count / peak * plot_h, 1.0)
        parts.append(f'<rect class="bar" x="{x(start) + 0.5:.1f}" y="{top + plot_h - bar:.1f}" '
                     f'width="{max(x(stop) - x(start) - 1, 1):.1f}" height="{bar:.1f}" '
                     f'fill="var(--{"removed" if removed else "kept"})"><title>{_number(start)}'
                     f' to {_number(stop)}: {count:,} rows</title></rect>')
    base = top + plot_h
    parts += [
        f'<line x1="{left}" y1="{base}" x2="{left + plot_w}" y2="{base}" stroke="#8a94a3"/>',
        f'<line class="cut" x1="{x(cut):.1f}" y1="{top - 4}" x2="{x(cut):.1f}" y2="{base + 4}" '
        'stroke="#1d2330" stroke-width="2" stroke-dasharray="5 3"/>',
        f'<text x="{x(cut):.1f}" y="{top - 2}" font-size="11" text-anchor="middle">cut '
        f"{_number(cut)}</text>",
        f'<text x="{left}" y="{base + 16}" font-size="11">{_number(low)}</text>',
        f'<text x="{left + plot_w}" y="{base + 16}" font-size="11" text-anchor="end">'
        f"{_number(high)}</text>",
        f'<text x="{left + plot_w / 2:.0f}" y="{base + 30}" font-size="11" '
        f'text-anchor="middle" fill="#5f6b7a">{_e(scores.axis)}</text>',
        f'<text x="{left - 6}" y="{top + 8}" font-size="11" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{base}" font-size="11" text-anchor="end">0</text>',
        "</svg>",
    ]
    return "".join(parts)


def _tile(row: int, shown: Shown, name: str, state: str, lines: Sequence[str],
          score: float | None) -> str:
    """One row: its thumbnail (or text), id, score and rank, explanation and notes."""
    label = shown.where or name
    if state == "failed":
        body = f'<div class="text error">{_e(lines[0])}</div>'
        lines = lines[1:]
    elif shown.image is not None:
        picture = f'<img src="{shown.image}" alt="{_e(name)}" loading="eager">'
        body = (f'<a class="pixels" href="{_e(shown.href)}" title="{_e(label)}">{picture}</a>'
                if shown.href else f'<div class="pixels">{picture}</div>')
    else:
        text = _e(shown.caption) if shown.caption else "<i>no pixels</i>"
        link = (f'<br><a href="{_e(shown.url)}" title="{_e(shown.url)}">{_e(shown.url)}</a>'
                if shown.url else "")
        body = f'<div class="text">{text}{link}</div>'
    notes = "".join(f'<span class="why">{_e(line)}</span>' for line in lines)
    if shown.note:
        notes += f'<span class="note">{_e(shown.note)}</span>'
    attributes = f' data-score="{score!r}"' if score is not None else ""
    short = name.replace(os.sep, "/").rstrip("/").rpartition("/")[2] or name
    return (f'<figure class="tile {state}" data-row="{row}" data-id="{_e(name)}"{attributes}>'
            f'{body}<figcaption><span class="id" title="{_e(label)}">{_e(short)}</span>'
            f"{notes}</figcaption></figure>")


class _Page:
    """The rows shown, read once, and the HTML of their grids."""

    def __init__(self, decision: Decision, files: ScoreFiles, shown: dict[int, Shown],
                 scores: list[_Scores]) -> None:
        self.decision = decision
        self.files = files
        self.shown = shown
        self.scores = scores
        rows = np.array(sorted(shown), dtype=np.int64)
        failed = rows[decision.failed[rows]]
        self.errors = dict(zip(failed.tolist(), files.values(failed, "error"), strict=True))

    def _state(self, row: int, owner: _Scores | None) -> str:
        """The row's fate: by the owner's cut in its section, else by the whole decision."""
        if self.decision.failed[row]:
            return "failed"
        removed = owner.removed[row] if owner is not None else self.decision.remove[row]
        return "removed" if removed else "kept"

    def grid(self, grid: Grid, owner: _Scores | None) -> str:
        rank = [] if owner is None else ranks(owner.ordered, owner.oriented[grid.rows])
        tiles = []
        for position, row in enumerate(grid.rows.tolist()):
            shown, lines, score = self.shown[row], [], None
            if row in self.errors:
                lines.append(str(self.errors[row]))
            elif owner is not None:
                score = float(owner.score(owner.oriented[row]))
                lines.append(f"score {_number(score)} · rank {int(rank[position]):,}")
            else:
                lines += [f"{s.part.concept}: {_number(float(s.score(s.oriented[row])))}"
                          for s in self.scores]
            concept = None if owner is None else owner.part.concept
            if shown.explanation and concept in shown.explanation:
                lines.append(shown.explanation[concept])
            tiles.append(_tile(row, shown, shown.name, self._state(row, owner), lines, score))
        counted = f"{len(grid.rows):,} of {grid.total:,}"
        body = "".join(tiles) or '<p class="meta">None.</p>'
        return (f'<div class="grid-block" data-grid="{grid.key}" data-count="{len(grid.rows)}">'
                f"<h3>{_e(grid.title)} <small>{counted}</small></h3>"
                f'<div class="grid">{body}</div></div>')


def _grids(decision: Decision, scores: list[_Scores], n: int, seed: int
           ) -> tuple[list[list[Grid]], list[Grid]]:
    """The grids of each part, and those of the whole decision."""
    failed = decision.failed
    per_part = [decision_grids(s.oriented, s.removed & ~failed, failed, n=n, seed=seed)
                for s in scores]
    if len(scores) == 1:
        per_part[0].append(error_grid(failed, n))
        return per_part, []
    return per_part, [
        sample_grid("removed", "A random sample of the rows removed", decision.remove, n, seed),
        sample_grid("kept", "A random sample of the rows kept", decision.keep, n, seed),
        error_grid(failed, n),
    ]


def _section(page: _Page, scores: _Scores, grids: list[Grid]) -> str:
    part, described = scores.part, scores.part.described
    removed = int((scores.removed & ~page.decision.failed).sum())
    scored = int((~page.decision.failed).sum())
    title = "The detector" if part.concept is None else f"Concept {part.concept}"
    facts = {
        "detector": described.get("detector_kind"),
        "job": job_words(part.cut.side),
        "file": described.get("detector_file") or "not recorded",
        "sha256": described.get("detector_sha256") or "not recorded",
        "task": ", ".join(described.get("task") or []) or "not recorded",
        "cut-off": f"removes {part.cut.words()}",
    }
    rows = "".join(f"<dt>{_e(k)}</dt><dd{' class=cut' if k == 'cut-off' else ''}>{_e(v)}</dd>"
                   for k, v in facts.items())
    shown = {grid.key: page.grid(grid, scores) for grid in grids}
    border = (shown["border-removed"] + '<div class="cutline">the cut: above, removed · below, '
              "kept</div>" + shown["border-kept"])
    return (f'<section class="part" data-concept="{_e(part.concept or "")}">'
            f"<h2>{_e(title)}</h2><dl>{rows}</dl>"
            f'<div class="counts">{_count("removed", "removed", removed, scored)}'
            f'{_count("kept", "kept", scored - removed, scored)}</div>'
            f"{_histogram(scores)}{shown['top']}"
            f'<div class="band">{border}</div>{shown["kept"]}{shown.get("errors", "")}'
            "</section>")


def write_review(folder: str | os.PathLike[str], decision: Decision, files: ScoreFiles, *,
                 source: str, file_of: Callable[[str | None, dict[str, Any]], str | None],
                 n: int = 24, seed: int = 0, datasets: dict[str, Any] | None = None,
                 explainer: Callable[[list[Any]], list[dict]] | None = None,
                 notes: Sequence[str] = ()) -> Path:
    """Write ``folder/index.html``: the review page of a decision.

    Parameters
    ----------
    folder : str or path-like
        Created if needed.
    decision : Decision
        What the rule decided, per detector.
    files : ScoreFiles
        The score files decided on.
    source : str
        The scores folder, as given.
    file_of : callable
        ``(id, footer) -> image file`` for rows of image folders and list files.
    n : int, default=24
        Rows per grid (each side of the cut, for the borderline band).
    seed : int, default=0
        Seed of the random samples.
    datasets : dict, optional
        Label -> ``datasets.Dataset``, for scores of Hugging Face datasets.
    explainer : callable, optional
        An :class:`~skhftt.review.explanations.Explainer`; its notes are shown.
    notes : sequence of str
        More notes for the reader.

    Returns
    -------
    pathlib.Path
        The page.
    """
    from skhftt import __version__

    scores = [_Scores(part, files) for part in decision.parts]
    per_part, combined = _grids(decision, scores, n, seed)
    rows = np.concatenate([grid.rows for grids in [*per_part, combined] for grid in grids])
    # Rows with an error failed to read when scored: they are shown by their error alone.
    good = rows[~decision.failed[rows]]
    shown = read_rows(files, good, file_of=file_of, datasets=datasets, explain=explainer)
    failed = np.unique(rows[decision.failed[rows]])
    shown.update((int(row), Shown(name=name)) for row, name in zip(failed, files.ids(failed),
                                                                   strict=True))
    page = _Page(decision, files, shown, scores)
    counts = decision.counts()
    sections = [_section(page, s, grids) for s, grids in zip(scores, per_part, strict=True)]
    if combined:
        sections.append(
            '<section class="combined" data-concept=""><h2>The combined decision</h2>'
            '<p class="rule">A row is removed when any concept removes it.</p>'
            + "".join(page.grid(grid, None) for grid in combined) + "</section>")
    all_notes = [*notes, *getattr(explainer, "notes", [])]
    if explainer is None:
        all_notes.append("Explanations were not asked for.")
    note_html = ("<div class=notes>" + "".join(f"<p>{_e(note)}</p>" for note in all_notes)
                 + "</div>") if all_notes else ""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>skhftt review: {_e(source)}</title><style>{_STYLE}</style></head>"
        f'<body data-rows="{counts["rows"]}" data-kept="{counts["kept"]}" '
        f'data-removed="{counts["removed"]}" data-errors="{counts["errors"]}"><header>'
        f"<h1>What the rule removes</h1>"
        f'<p class="meta">{_e(os.path.abspath(source))}: {len(files.paths):,} score file(s), '
        f"{counts['rows']:,} rows · skhftt {_e(__version__)} · {created}</p>"
        f'<p class="rule">Rule: {_e(_rule_words(decision.rule, decision.calibration))}.</p>'
        f'<div class="counts">{_count("kept", "kept", counts["kept"], counts["rows"])}'
        f'{_count("removed", "removed", counts["removed"], counts["rows"])}'
        f'{_count("errors", "with errors", counts["errors"], counts["rows"])}</div>'
        '<p class="meta">Each tile shows a row: its id, its score and rank (1 = most '
        "unwanted) and, where the detector explains, the column that dominated the score (a "
        "task item, or a learned column with the world words nearest to it) with its share. A "
        "click opens the original.</p>"
        f"{note_html}</header>{''.join(sections)}<script>{_SCRIPT}</script></body></html>"
    )
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    page_path = target / "index.html"
    partial = target / f".index.html.partial-{os.getpid()}"
    partial.write_text(document, encoding="utf-8")
    os.replace(partial, page_path)
    return page_path
