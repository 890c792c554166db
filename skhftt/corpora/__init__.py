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
* :func:`wordnet_lemmas` -- the head lemmas of WordNet 3.0's nouns and
  adjectives with their lexicographer categories: the candidate labels that
  NegLabel and CSP mine their negatives from; :func:`neglabel_pool` and
  :func:`csp_pool` put them in each method's reference prompts.
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
from skhftt.corpora._pools import (
    CSP_ADJECTIVE_TEMPLATES,
    CSP_EXCLUDED_CATEGORIES,
    CSP_NOUN_TEMPLATES,
    CSP_SUPERCLASSES,
    NEGLABEL_ADJECTIVE_TEMPLATE,
    NEGLABEL_NOUN_TEMPLATE,
    csp_pool,
    neglabel_pool,
)
from skhftt.corpora._quality import low_quality_task
from skhftt.corpora._readers import dedupe_texts, read_texts
from skhftt.corpora._wordnet import WordNetLemmas, wordnet_lemmas
from skhftt.corpora._world import (
    WORLD_TEMPLATE,
    apply_template,
    load_world_corpus,
    world_words,
)

__all__ = [
    "CSP_ADJECTIVE_TEMPLATES",
    "CSP_EXCLUDED_CATEGORIES",
    "CSP_NOUN_TEMPLATES",
    "CSP_SUPERCLASSES",
    "NEGLABEL_ADJECTIVE_TEMPLATE",
    "NEGLABEL_NOUN_TEMPLATE",
    "WORLD_TEMPLATE",
    "ImageNetClasses",
    "WordNetLemmas",
    "apply_template",
    "csp_pool",
    "dedupe_texts",
    "imagenet_classes",
    "imagenet_task",
    "imagenet_templates",
    "load_world_corpus",
    "low_quality_task",
    "neglabel_pool",
    "read_texts",
    "templated_task",
    "wordnet_lemmas",
    "world_words",
]

