"""Zero-shot baselines with the estimator API of :class:`~skhftt.HFTTDetector`.

Every detector here is fitted with the same forms as HFTT
(``fit(texts, in_texts)``, ``fit(X, y)`` with 0/1 PU labels, and
``encoder="precomputed"``), scores with the same orientation (higher = more
like the task, +1 = matches the task), and needs no training: fitting only
embeds the task (and, for NegLabel, the world corpus), so a user can compare
them with HFTT in one loop.

With ``s_c(x) = x . w_c`` the cosine similarity of a unit embedding ``x`` to
task column ``c`` (C columns) and a temperature ``T``:

=====================  ==================================================
detector               ``score_samples(x)``
=====================  ==================================================
MCMDetector            ``max_c softmax(s(x) / T)_c``
MaxLogitDetector       ``max_c s_c(x) / T``
EnergyDetector         ``T * log sum_c exp(s_c(x) / T)``
NegLabelDetector       log-odds of ``S(x)``, the NegLabel score (see its
                       docstring)
=====================  ==================================================

The baselines that need in-distribution images (MSP, Mahalanobis, KNN) are
in :mod:`skhftt.detectors.image_fitted`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.special import logit, logsumexp
from sklearn.utils.validation import check_random_state

from skhftt._sklearn_compat import Interval, fit_context
from skhftt.detectors.base import BaseTextDetector
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER

__all__ = ["EnergyDetector", "MCMDetector", "MaxLogitDetector", "NegLabelDetector"]

# Logit entries (float64) per scoring block: bounds memory for any number of columns.
_BLOCK_ENTRIES = 1 << 22


def _by_blocks(
    embeddings: np.ndarray, n_columns: int, score_block: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply ``score_block`` to blocks of rows, bounding the size of the logit matrix."""
    rows = max(1, _BLOCK_ENTRIES // max(n_columns, 1))
    scores = np.empty(embeddings.shape[0], dtype=np.float64)
    for start in range(0, embeddings.shape[0], rows):
        scores[start : start + rows] = score_block(embeddings[start : start + rows])
    return scores


def _cosines(embeddings: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Cosine similarities of unit rows to unit columns, float64 (n, C)."""
    return (embeddings.astype(np.float32, copy=False) @ columns.T).astype(np.float64)


class _BlockScoredDetector(BaseTextDetector):
    """Scores computed block by block from embeddings; subclasses define ``_score_block``.

    ``_n_columns`` is the width of the widest per-row intermediate of
    ``_score_block``; it sets how many rows a block holds.
    """

    def score_samples(self, X: object) -> np.ndarray:
        """The detector's score: higher means more like the task.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
        """
        embeddings = self.embed(X)
        return _by_blocks(embeddings, self._n_columns(), self._score_block)

    def _n_columns(self) -> int:
        return self.task_columns_.shape[0]

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _SimilarityDetector(_BlockScoredDetector):
    """A score computed from the cosine similarities to the task columns alone."""

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "threshold": [Real],
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        temperature: float = 1.0,
        templates: Sequence[str] | None = None,
        threshold: float = 0.0,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.temperature = temperature
        self.templates = templates
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    @fit_context
    def fit(self, X: object, y: object = None) -> _SimilarityDetector:
        """Embed the task; no training, the world corpus is not used.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus (ignored, so ``None`` is fine), or every text in
            the PU form.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) in any form
            :meth:`skhftt.HFTTDetector.fit` accepts, or 0/1 PU labels.

        Returns
        -------
        self
            The fitted detector.
        """
        data = self._fit_data(X, y, need_world=False)
        self.task_columns_ = data.task_columns
        self.offset_ = float(self.threshold)
        return self

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        return self._score_logits(_cosines(embeddings, self.task_columns_) / self.temperature)

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError


_SHARED_PARAMETERS = """encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``).
    temperature : float, default=1.0
        Temperature ``T``: the logits are the cosine similarities divided
        by ``T``."""

_SHARED_TAIL = """templates : list of str, default=None
        Prompt templates with one ``{}``; each task text is then a class
        name and its column the re-normalised mean of its prompts.
    threshold : float, default=0.0
        Cut-off on ``score_samples``: ``offset_ = threshold``. A zero-shot
        score has no natural cut-off and nothing is fitted on images, so
        the default only makes ``decision_function`` equal
        ``score_samples``; set it from labelled in-distribution images
        (e.g. the 5th percentile of their scores keeps about 95 % of them)
        before relying on :meth:`predict`.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str or path-like, default=None
        Directory of an on-disk text-embedding cache.
    device : str, default="auto"
        Where the encoder runs.
    verbose : int, default=0
        0 is silent, 1 shows progress bars while encoding.

    Attributes
    ----------
    task_columns_ : ndarray of shape (n_task_columns, dim)
        Task columns (unit rows).
    task_names_ : list of str
        Name of each task column.
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity of the encoder used in fit; ``None`` when precomputed.
    offset_ : float
        ``threshold``; ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``."""


def _document(cls: type) -> type:
    cls.__doc__ = cls.__doc__.replace("{parameters}", _SHARED_PARAMETERS).replace(
        "{tail}", _SHARED_TAIL
    )
    return cls


@_document
class MCMDetector(_SimilarityDetector):
    """Maximum Concept Matching (MCM): the largest softmax probability of a task column.

    ``score_samples(x) = max_c softmax(s(x) / T)_c`` where ``s_c(x)`` is the
    cosine similarity of ``x`` to task column ``c``. The default ``T = 1``
    on cosine similarities (not CLIP's logit scale of 100, ``T = 0.01``) is
    the setting of the MCM paper and its reference code. Fitting only
    embeds the task.

    Parameters
    ----------
    {parameters}
    {tail}

    See Also
    --------
    MaxLogitDetector, EnergyDetector : Other scores of the same logits.
    skhftt.HFTTDetector : The trained detector these are baselines for.

    References
    ----------
    .. [1] Y. Ming, Z. Cai, J. Gu, Y. Sun, W. Li, Y. Li, "Delving into
       Out-of-Distribution Detection with Vision-Language Representations",
       NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors.zero_shot import MCMDetector
    >>> task = np.eye(4)[:2]                     # two task columns
    >>> det = MCMDetector(encoder="precomputed").fit(None, task)
    >>> det.score_samples(np.eye(4)).round(3)
    array([0.731, 0.731, 0.5  , 0.5  ])
    """

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        # 1 / sum_j exp(l_j - l_max): the largest softmax entry, without overflow.
        return 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)


@_document
class MaxLogitDetector(_SimilarityDetector):
    """The largest logit: the best cosine similarity to a task column, over ``T``.

    ``score_samples(x) = max_c s_c(x) / T``. The ranking (and so every
    threshold-free metric) does not depend on ``T``; ``T`` only scales the
    score, e.g. ``T = 0.01`` gives CLIP's logits. Fitting only embeds the
    task.

    Parameters
    ----------
    {parameters}
    {tail}

    See Also
    --------
    MCMDetector, EnergyDetector : Other scores of the same logits.

    References
    ----------
    .. [1] D. Hendrycks, S. Basart, M. Mazeika, A. Zou, J. Kwon, M.
       Mostajabi, J. Steinhardt, D. Song, "Scaling Out-of-Distribution
       Detection for Real-World Settings", ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors.zero_shot import MaxLogitDetector
    >>> det = MaxLogitDetector(encoder="precomputed").fit(None, np.eye(4)[:2])
    >>> det.score_samples(np.eye(4))
    array([1., 1., 0., 0.])
    """

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return logits.max(axis=1)


@_document
class EnergyDetector(_SimilarityDetector):
    """The negative free energy of the task logits: ``T * logsumexp(s(x) / T)``.

    As ``T`` shrinks the score tends to :class:`MaxLogitDetector`'s (times
    ``T``); at the default ``T = 1`` on cosine similarities, the setting of
    the MCM reference code for its zero-shot energy baseline, every task
    column contributes. Fitting only embeds the task.

    Parameters
    ----------
    {parameters}
    {tail}

    See Also
    --------
    MCMDetector, MaxLogitDetector : Other scores of the same logits.

    References
    ----------
    .. [1] W. Liu, X. Wang, J. Owens, Y. Li, "Energy-based
       Out-of-distribution Detection", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors.zero_shot import EnergyDetector
    >>> det = EnergyDetector(encoder="precomputed").fit(None, np.eye(4)[:2])
    >>> det.score_samples(np.eye(4)).round(3)
    array([1.313, 1.313, 0.693, 0.693])
    """

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return self.temperature * logsumexp(logits, axis=1)


class NegLabelDetector(_BlockScoredDetector):
    """NegLabel: the task's share of the softmax against mined negative labels.

    **Mining.** For each text of the world corpus, take the ``percentile``-th
    percentile of its cosine similarities to the task columns; the
    ``n_negatives`` texts where it is lowest (the farthest from the task)
    become the negative labels.

    **Score.** With task similarities ``s_c(x)``, negative similarities
    ``n_j(x)`` and temperature ``T``::

        S(x) = sum_c exp(s_c / T) / (sum_c exp(s_c / T) + sum_j exp(n_j / T))

    **Grouping.** With ``n_groups > 1`` the negatives are shuffled (seeded by
    ``random_state``) and split into ``n_groups`` groups of near-equal size;
    ``S(x)`` is the mean over the groups of the score computed against each
    group alone.

    ``score_samples`` is the log-odds ``log S - log (1 - S)``, computed in
    log space: at ``T = 0.01``, ``S`` rounds to exactly 0 or 1 for many
    inputs, which would create ties. ``scipy.special.expit`` of the score
    gives ``S`` back.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`.
    n_negatives : int or float, default=10000
        Number of negative labels: an int is a count (at most the size of
        the world corpus), a float in (0, 1) a fraction of the world corpus.
        10000 is the paper's setting (about 15 % of its WordNet corpus).
    percentile : float, default=95.0
        Percentile (0 to 100) of a candidate's similarities to the task
        columns that measures its closeness to the task (the paper's
        ``eta = 0.05`` on negated similarities).
    n_groups : int, default=100
        Number of groups of negatives; 1 disables grouping. 100 is the
        setting of the reference code.
    temperature : float, default=0.01
        Temperature ``T`` of the score.
    templates : list of str, default=None
        Prompt templates with one ``{}``, as for ``HFTTDetector``.
    threshold : float, default=0.5
        Value of ``S`` above which an input is predicted +1:
        ``offset_ = log(threshold / (1 - threshold))``.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str or path-like, default=None
        Directory of an on-disk text-embedding cache.
    device : str, default="auto"
        Where the encoder runs.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the negatives into groups.
    verbose : int, default=0
        0 is silent, 1 shows progress bars while encoding.

    Attributes
    ----------
    task_columns_ : ndarray of shape (n_task_columns, dim)
        Task columns (unit rows).
    negative_columns_ : ndarray of shape (n_negatives, dim)
        Embeddings of the mined negative labels, in group order (group ``g``
        is the ``g``-th chunk of ``numpy.array_split``).
    negative_indices_ : ndarray of shape (n_negatives,)
        Index of each negative label in the world corpus, same order. For
        the bundled corpus, ``load_world_corpus()[i]`` is the text.
    task_names_ : list of str
        Name of each task column.
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity of the encoder used in fit; ``None`` when precomputed.
    offset_ : float
        Log-odds of ``threshold``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    Notes
    -----
    Differences from the reference code: candidates are the world corpus as
    given (the reference mines WordNet nouns and adjectives separately,
    each with its own prompt), and grouping keeps every negative (the
    reference drops the remainder of ``n_negatives / n_groups``).

    References
    ----------
    .. [1] X. Jiang, F. Liu, Z. Fang, H. Chen, T. Liu, F. Zheng, B. Han,
       "Negative Label Guided OOD Detection with Pretrained Vision-Language
       Models", ICLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors.zero_shot import NegLabelDetector
    >>> rng = np.random.default_rng(0)
    >>> task, world = rng.normal(size=(3, 16)), rng.normal(size=(200, 16))
    >>> det = NegLabelDetector(encoder="precomputed", n_negatives=0.2, n_groups=4,
    ...                        random_state=0).fit(world, task)
    >>> det.negative_columns_.shape
    (40, 16)
    >>> det.predict(np.vstack([task, -task]))
    array([ 1,  1,  1, -1, -1, -1])
    """

    _parameter_constraints: ClassVar[dict] = {
        **_BlockScoredDetector._parameter_constraints,
        "n_negatives": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ],
        "percentile": [Interval(Real, 0, 100, closed="both")],
        "n_groups": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        n_negatives: int | float = 10000,
        percentile: float = 95.0,
        n_groups: int = 100,
        temperature: float = 0.01,
        templates: Sequence[str] | None = None,
        threshold: float = 0.5,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.n_negatives = n_negatives
        self.percentile = percentile
        self.n_groups = n_groups
        self.temperature = temperature
        self.templates = templates
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _count_negatives(self, n_world: int) -> int:
        if isinstance(self.n_negatives, Integral):
            if self.n_negatives > n_world:
                raise ValueError(
                    f"n_negatives={self.n_negatives} exceeds the {n_world} texts of the "
                    "world corpus; pass a smaller count or a fraction such as 0.15."
                )
            count = int(self.n_negatives)
        else:
            count = max(1, int(self.n_negatives * n_world))
        if self.n_groups > count:
            raise ValueError(
                f"n_groups={self.n_groups} is larger than the {count} negative labels; "
                "every group needs at least one."
            )
        return count

    @fit_context
    def fit(self, X: object, y: object = None) -> NegLabelDetector:
        """Embed the task and the world corpus, and mine the negative labels.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus, the candidates for negative labels (``None`` = the
            bundled default), or every text in the PU form.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) in any form
            :meth:`skhftt.HFTTDetector.fit` accepts, or 0/1 PU labels.

        Returns
        -------
        self : NegLabelDetector
            The fitted detector.
        """
        data = self._fit_data(X, y, need_world=True)
        world, columns = data.world_embeddings, data.task_columns
        count = self._count_negatives(world.shape[0])
        closeness = _by_blocks(
            world,
            columns.shape[0],
            lambda block: np.percentile(_cosines(block, columns), self.percentile, axis=1),
        )
        chosen = np.argsort(closeness, kind="stable")[:count]
        if self.n_groups > 1:
            chosen = check_random_state(self.random_state).permutation(chosen)
        self.task_columns_ = columns
        self.negative_columns_ = world[chosen]
        self.negative_indices_ = chosen
        self.offset_ = float(logit(self.threshold))
        return self

    def _n_columns(self) -> int:
        return self.task_columns_.shape[0] + self.negative_columns_.shape[0]

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds ``log S - log (1 - S)`` of the NegLabel score of each row."""
        task = logsumexp(_cosines(embeddings, self.task_columns_) / self.temperature, axis=1)
        negatives = _cosines(embeddings, self.negative_columns_) / self.temperature
        groups = np.array_split(np.arange(negatives.shape[1]), self.n_groups)
        per_group = np.column_stack(
            [logsumexp(negatives[:, group], axis=1) for group in groups]
        )
        total = np.logaddexp(task[:, None], per_group)
        # log of sum_g S_g and of sum_g (1 - S_g); their difference is the log-odds of the mean.
        return logsumexp(task[:, None] - total, axis=1) - logsumexp(per_group - total, axis=1)
