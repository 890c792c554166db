"""Text corpora: the bundled world corpus, ImageNet-1k, and user corpora.

HFTT trains on two sets of texts: the *task* texts, which describe what the
detector should recognise, and a *world* corpus, an unlabelled sample of
everything images may show. This module provides both.

* :func:`load_world_corpus` -- the default world corpus: 292,073 English
  words ranked by frequency, each in ``"This is a photo of a {}."``.
* :func:`read_texts` -- a user corpus from a list, a text file, or a
  CSV/TSV/parquet column, with de-duplication and an optional template.
* :func:`imagenet_task` -- ImageNet-1k as a task: 1000 classes, each with the
  80 CLIP prompt templates; :func:`imagenet_classes` and
  :func:`imagenet_templates` give the pieces.
* :func:`templated_task` -- the same expansion for any list of class names.
* :func:`low_quality_task` -- low-quality image detection as a task: ten
  defects (blur, compression artifacts, noise, bad exposure, ...), each
  with a few captions (:mod:`skhftt.evaluation` applies the same defects to
  images, for a labelled check set).
"""

from __future__ import annotations

from skhftt.corpora._imagenet import (
    ImageNetClasses,
    imagenet_classes,
    imagenet_task,
    imagenet_templates,
    templated_task,
)
from skhftt.corpora._quality import low_quality_task
from skhftt.corpora._readers import dedupe_texts, read_texts
from skhftt.corpora._world import (
    WORLD_TEMPLATE,
    apply_template,
    load_world_corpus,
    world_words,
)

__all__ = [
    "WORLD_TEMPLATE",
    "ImageNetClasses",
    "apply_template",
    "dedupe_texts",
    "imagenet_classes",
    "imagenet_task",
    "imagenet_templates",
    "load_world_corpus",
    "low_quality_task",
    "read_texts",
    "templated_task",
    "world_words",
]

_MOVED_TO_EVALUATION = ("CORRUPTIONS", "corrupt_image", "make_corruption_set")


def __getattr__(name: str):
    # The image defects moved to skhftt.evaluation; corpora holds texts only.
    if name in _MOVED_TO_EVALUATION:
        from skhftt import evaluation

        return getattr(evaluation, name)
    raise AttributeError(f"module 'skhftt.corpora' has no attribute {name!r}")
