"""The task: what "in-distribution" means, as columns of the head.

A task item is a single text (its own column) or a class with several
prompts (one column: the re-normalised mean of its prompt embeddings). Every
prompt is also a training text with the label "in".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from skhftt.space.validation import check_texts, is_string_sequence

__all__ = ["TaskItems", "parse_task", "task_columns"]


@dataclass
class TaskItems:
    """Task items before embedding.

    Attributes
    ----------
    names : list of str
        One name per task column.
    prompts : list of str or list of ndarray
        For texts: the flat list of every prompt. For embeddings: one
        ``(m_c, d)`` array per column.
    owners : ndarray of shape (m,)
        Index of the column that each prompt belongs to.
    """

    names: list[str]
    prompts: list
    owners: np.ndarray

    @property
    def are_texts(self) -> bool:
        """True when the prompts are texts still to be embedded."""
        return bool(self.prompts) and isinstance(self.prompts[0], str)


def _check_templates(templates: Sequence[str]) -> list[str]:
    checked = check_texts(templates, name="templates")
    for template in checked:
        if template.count("{}") != 1:
            raise ValueError(
                f"every template must contain exactly one '{{}}' placeholder for "
                f"the class name; got {template!r}."
            )
    return checked


def _owners(sizes: Sequence[int]) -> np.ndarray:
    return np.repeat(np.arange(len(sizes)), sizes)


def parse_task(in_texts: object, *, templates: Sequence[str] | None = None) -> TaskItems:
    """Turn any accepted form of the task into :class:`TaskItems`.

    Accepted forms: a sequence of texts (one column each, or class names
    expanded by ``templates``), a mapping class -> prompts, a 2-D array of
    embeddings (one column per row), a mapping class -> 2-D array of that
    class's prompt embeddings.
    """
    if isinstance(in_texts, str):
        raise TypeError(
            f"in_texts must be a sequence of texts, not a single string: {in_texts!r}."
        )
    if isinstance(in_texts, Mapping):
        if templates is not None:
            raise ValueError(
                "templates expand class names given as a list; with a mapping "
                "class -> prompts the prompts are given already. Pass one or the other."
            )
        return _parse_mapping(in_texts)
    if is_string_sequence(in_texts):
        texts = check_texts(in_texts, name="in_texts")
        if templates is None:
            return TaskItems(names=texts, prompts=texts, owners=np.arange(len(texts)))
        expanded = {name: [t.format(name) for t in _check_templates(templates)]
                    for name in texts}
        return _parse_mapping(expanded)
    array = np.asarray(in_texts)
    if array.dtype.kind in "fiu" and array.ndim == 2:
        if array.shape[0] == 0:
            raise ValueError("in_texts is empty: expected at least one task embedding.")
        return TaskItems(
            names=[f"task_{index}" for index in range(array.shape[0])],
            prompts=list(array[:, None, :]),
            owners=np.arange(array.shape[0]),
        )
    if array.size == 0:
        raise ValueError("in_texts is empty: expected at least one task text.")
    raise TypeError(
        "in_texts must be a sequence of texts, a mapping class -> prompts, a 2-D "
        "array of task embeddings or a mapping class -> 2-D arrays; got "
        f"{type(in_texts).__name__}."
    )


def _parse_mapping(classes: Mapping) -> TaskItems:
    if not classes:
        raise ValueError("in_texts is an empty mapping: expected at least one class.")
    names = [str(name) for name in classes]
    values = list(classes.values())
    if all(is_string_sequence(value) for value in values):
        groups = [check_texts(value, name=f"prompts of class {name!r}")
                  for name, value in zip(names, values, strict=True)]
        flat = [prompt for group in groups for prompt in group]
        return TaskItems(names=names, prompts=flat, owners=_owners([len(g) for g in groups]))
    arrays = []
    for name, value in zip(names, values, strict=True):
        array = np.asarray(value)
        if array.dtype.kind not in "fiu" or array.ndim != 2 or array.shape[0] == 0:
            raise TypeError(
                f"class {name!r} must map to a non-empty list of prompt texts or a "
                f"non-empty 2-D array of prompt embeddings; got {type(value).__name__} "
                f"of shape {getattr(array, 'shape', None)}."
            )
        arrays.append(array)
    return TaskItems(names=names, prompts=arrays, owners=_owners([len(a) for a in arrays]))


def task_columns(prompt_embeddings: np.ndarray, owners: np.ndarray, n_columns: int) -> np.ndarray:
    """Re-normalised mean of each column's unit prompt embeddings, float32 (C, d).

    ``owners`` must be sorted, with every column in ``range(n_columns)`` present.
    """
    starts = np.searchsorted(owners, np.arange(n_columns))
    sums = np.add.reduceat(prompt_embeddings.astype(np.float64), starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    if (norms == 0).any():
        bad = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ValueError(f"the prompts of task column {bad} average to the zero vector.")
    return (sums / norms).astype(np.float32)
