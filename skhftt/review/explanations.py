"""Why the rows shown scored as they did: the column that dominated, and its nearest words.

For each detector of a decision that can explain its scores (an HFTT or
ensemble detector saved as ``.safetensors``, whose file the score outputs
name), :class:`Explainer` gives each row shown the column holding the most
softmax mass (a task item, or a learned column with the world texts nearest
to it) with its share (:mod:`skhftt.removal.explain`). A detector that cannot
explain (another kind, a joblib file, which is never unpickled from a path
that data names, a file that is gone, an encoder that cannot be loaded) is
skipped with a note saying why.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["Explainer"]


def _load(described: dict[str, Any], encoder: str | None) -> Any:
    """The detector a score file names, or the reason it cannot explain (a string)."""
    from skhftt.detectors.persistence import load_detector
    from skhftt.removal.explain import EXPLAINABLE

    path = described.get("detector_file")
    kind = described.get("detector_kind")
    if kind not in {cls.__name__ for cls in EXPLAINABLE}:
        return f"a {kind} has no learned columns to explain"
    if path is None:
        return "the scores name no detector file"
    if not path.endswith(".safetensors"):
        return f"{path!r} is a pickle, which is not loaded from a path the scores name"
    try:
        return load_detector(path, encoder=encoder)
    except (OSError, ValueError) as exc:
        return f"{path!r} cannot be loaded: {exc}"


class Explainer:
    """Explain rows' scores with the detectors of a decision that can.

    Parameters
    ----------
    described : dict
        Concept (None for one detector) -> what the score files record of
        its detector (``detector_kind``, ``detector_file``).
    world : sequence of str
        Texts whose nearest ones name each learned column.
    world_embeddings : ndarray of shape (len(world), dim), optional
        Their embeddings; needed for a precomputed detector, otherwise
        computed (and cached) with the detector's encoder.
    encoder : str, optional
        Encoder spec or folder replacing the saved one.
    k : int, default=3
        Nearest texts per learned column.

    Attributes
    ----------
    notes : list of str
        Why some detectors (or their nearest texts) are not explained.
    """

    def __init__(self, described: dict[str | None, dict[str, Any]], world: Sequence[str], *,
                 world_embeddings: np.ndarray | None = None, encoder: str | None = None,
                 k: int = 3) -> None:
        from skhftt.removal.explain import nearest_texts

        self.notes: list[str] = []
        # World texts share a template ("This is a photo of a {}."): show the words alone,
        # cutting the common prefix and suffix at word boundaries. Texts, not paths: their
        # common prefix is meant character by character.
        prefix = os.path.commonprefix(list(world))  # noqa: RUF071
        suffix = os.path.commonprefix([text[::-1] for text in world])[::-1]  # noqa: RUF071
        self.affixes = (prefix[: prefix.rfind(" ") + 1], re.sub(r"^\w+", "", suffix))
        self.detectors: dict[str | None, Any] = {}
        self.words: dict[str | None, dict[str, list[tuple[str, float]]]] = {}
        for concept, description in described.items():
            label = "the detector" if concept is None else f"concept {concept!r}"
            detector = _load(description, encoder)
            if isinstance(detector, str):
                self.notes.append(f"{label} is not explained: {detector}.")
                continue
            self.detectors[concept] = detector
            try:
                self.words[concept] = nearest_texts(detector, world, embeddings=world_embeddings,
                                                    k=k)
            except Exception as exc:  # e.g. no model for the texts: columns are still named
                self.notes.append(f"{label}'s learned columns are not named by world texts: "
                                  f"{type(exc).__name__}: {str(exc).rstrip('.')}.")

    def _column(self, concept: str | None, column: str, share: float) -> str:
        near = self.words.get(concept, {}).get(column)
        words = f" ({', '.join(self._word(text) for text, _ in near)})" if near else ""
        kind = "" if column.startswith("learned_") else "task: "
        return f"{kind}{column}{words} · {share:.0%}"

    def _word(self, text: str) -> str:
        prefix, suffix = self.affixes
        word = text[len(prefix):len(text) - len(suffix)]
        return word if word and len(prefix) + len(suffix) < len(text) else text

    def __call__(self, items: list[Any]) -> list[dict[str | None, str]]:
        """Each item's explanation by each detector (items: images, unit embeddings or None)."""
        from skhftt.removal.explain import explain_scores

        explained: list[dict[str | None, str]] = [{} for _ in items]
        images = [i for i, item in enumerate(items) if item is not None
                  and not isinstance(item, np.ndarray)]
        vectors = [i for i, item in enumerate(items) if isinstance(item, np.ndarray)]
        for concept, detector in list(self.detectors.items()):
            for rows, inputs in ((images, [items[i] for i in images]),
                                 (vectors, np.stack([items[i] for i in vectors]) if vectors
                                  else None)):
                if not rows:
                    continue
                try:
                    result = explain_scores(detector, inputs)
                except Exception as exc:  # one failure is said once; the page goes on
                    self.notes.append(f"{'the detector' if concept is None else concept} could "
                                      f"not explain: {type(exc).__name__}: "
                                      f"{str(exc).rstrip('.')}.")
                    del self.detectors[concept]
                    break
                for position, row in enumerate(rows):
                    explained[row][concept] = self._column(concept, result.column[position],
                                                           float(result.share[position]))
        return explained
