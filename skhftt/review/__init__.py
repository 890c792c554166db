"""See before you delete: a review page of a removal, its record, plans, DataComp uid files.

* :func:`~skhftt.review.page.write_review` writes one self-contained HTML
  page that shows what a removal decision removes: counts, rule and cut-off,
  score histograms, thumbnails of the most unwanted rows, of the borderline
  band, of a sample of the rows kept and of the errors.
* :func:`~skhftt.review.record.decision_record` is the record of a removal
  (``manifest.json``): what decided it, so that anyone can audit or
  reproduce it; the same record is a plan that applies its cut-offs to new
  scores (:func:`~skhftt.review.record.plan_cuts`).
* :func:`~skhftt.review.cuts.resolve_cut` states the cut-off a rule
  resolved to.
* :func:`~skhftt.review.datacomp.write_uids` writes kept ids as a DataComp
  subset file.

``skhftt review`` and ``skhftt filter`` decide (with the removal rules of
:mod:`skhftt.removal`); this package shows and records what they decided.
"""

from __future__ import annotations

from skhftt.review.cuts import Cut, resolve_cut
from skhftt.review.datacomp import UID_DTYPE, read_uids, uid_array, write_uids
from skhftt.review.decision import Decision, Part
from skhftt.review.page import write_review
from skhftt.review.record import check_plan, decision_record, plan_cuts, read_plan
from skhftt.review.scores import ScoreFiles

__all__ = [
    "UID_DTYPE",
    "Cut",
    "Decision",
    "Part",
    "ScoreFiles",
    "check_plan",
    "decision_record",
    "plan_cuts",
    "read_plan",
    "read_uids",
    "resolve_cut",
    "uid_array",
    "write_review",
    "write_uids",
]
