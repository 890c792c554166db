"""The maths of text-trained detectors, on embeddings alone.

Pure numpy and torch; nothing here knows of files, models or the rest of
skhftt. The head scores unit embeddings against fixed task columns W and
trained columns V at temperature T (:class:`HFTTHead`); the objective is
HFTT's focal-weighted text loss (:func:`hftt_loss`); the training loop is
SGD over world minibatches (:func:`train_trainable_columns`); a task is a
list or mapping of prompts turned into columns (:func:`parse_task`,
:func:`task_columns`); :func:`check_embeddings` checks unit rows;
:func:`map_row_blocks` and :func:`chunk_rows` pass over rows in bounded memory.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from skhftt.space.blocks import chunk_rows, map_row_blocks
from skhftt.space.head import MIN_TEMPERATURE, HFTTHead, logsumexp_rows
from skhftt.space.task import TaskItems, parse_task, task_columns
from skhftt.space.validation import (
    UNIT_TOLERANCE,
    check_embeddings,
    check_texts,
    is_string_sequence,
)

__all__ = [
    "MIN_TEMPERATURE",
    "UNIT_TOLERANCE",
    "HFTTHead",
    "TaskItems",
    "TrainingResult",
    "check_embeddings",
    "check_texts",
    "chunk_rows",
    "focal_weights",
    "hftt_loss",
    "is_string_sequence",
    "log_p_in_out",
    "logsumexp_rows",
    "map_row_blocks",
    "normalize_rows",
    "parse_task",
    "task_columns",
    "task_logsumexp",
    "train_trainable_columns",
]

if TYPE_CHECKING:
    from skhftt.space.objective import (
        focal_weights,
        hftt_loss,
        log_p_in_out,
        normalize_rows,
        task_logsumexp,
    )
    from skhftt.space.training import TrainingResult, train_trainable_columns

# The torch half (loss and training) loads on first use: scoring, checking
# embeddings and reading detector files need numpy only.
_TORCH_MODULES = {
    "skhftt.space.objective": ("focal_weights", "hftt_loss", "log_p_in_out",
                               "normalize_rows", "task_logsumexp"),
    "skhftt.space.training": ("TrainingResult", "train_trainable_columns"),
}


def __getattr__(name: str) -> object:
    for module, names in _TORCH_MODULES.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'skhftt.space' has no attribute {name!r}")
