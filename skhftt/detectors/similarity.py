"""Zero-shot scores of the similarities to the task columns: MCM, MaxLogit, Energy.

These detectors need no training: fitting embeds the task (and, for the
default ``threshold="auto"``, a sample of world texts to set the cut). With
``s_c(x) = x . w_c`` the cosine similarity of a unit embedding ``x`` to task
column ``c`` (C columns) and a temperature ``T``:

=====================  ==================================================
detector               ``score_samples(x)``
=====================  ==================================================
MCMDetector            ``max_c softmax(s(x) / T)_c``, in ``[1/C, 1]``
MaxLogitDetector       ``max_c s_c(x) / T``
EnergyDetector         ``T * log sum_c exp(s_c(x) / T)``
=====================  ==================================================

``threshold`` is a cut-off on ``score_samples`` (``offset_ = threshold``);
its default, ``"auto"``, sets ``offset_`` at fit to the score that best
separates the task prompts from world texts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, ClassVar, Literal

import numpy as np

from skhftt._sklearn_compat import Interval, StrOptions, fit_context
from skhftt.detectors.base import (
    CALIBRATION_SIZE,
    TASK_ATTRIBUTES,
    TASK_SPEC,
    TEMPERATURE,
    BaseTextDetector,
    FitData,
    _BlockScoredDetector,
    _cosines,
    equal_error_cut,
    keep_cut,
    space_state,
)
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.space.head import logsumexp_rows

__all__ = ["EnergyDetector", "MCMDetector", "MaxLogitDetector", "mcm_scores"]


def mcm_scores(logits: np.ndarray) -> np.ndarray:
    """The largest softmax entry of each row of ``logits``: MCM's score.

    Parameters
    ----------
    logits : ndarray of shape (n, C)

    Returns
    -------
    ndarray of shape (n,)
        ``max_c softmax(logits)_c``, in ``[1/C, 1]``.
    """
    # 1 / sum_j exp(l_j - l_max): the largest softmax entry, without overflow.
    return 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)


class _SimilarityDetector(_BlockScoredDetector):
    """A score computed from the cosine similarities to the task columns alone."""

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "temperature": [TEMPERATURE],
        "threshold": [StrOptions({"auto"}), Interval(Real, None, None, closed="neither")],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, *TASK_ATTRIBUTES,
    )
    _fitted_spec: ClassVar[dict] = {**BaseTextDetector._fitted_spec, **TASK_SPEC}

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        temperature: float = 1.0,
        templates: Sequence[str] | None = None,
        threshold: Literal["auto"] | float = "auto",
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.temperature = temperature
        self.templates = templates
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    @fit_context
    def fit(self, X: object, y: object = None) -> _SimilarityDetector:
        """Embed the task, and with ``threshold="auto"`` set the cut from world texts.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus, used only by ``threshold="auto"`` (a sample of at
            most 5,000 of its texts; ``None`` is the bundled corpus), or
            every text in the PU form.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) in any form
            :meth:`skhftt.HFTTDetector.fit` accepts, or 0/1 PU labels.

        Returns
        -------
        self
            The fitted detector.
        """
        automatic = isinstance(self.threshold, str)
        data = self._fit_data(X, y, need_world=automatic, world_sample=CALIBRATION_SIZE)
        state = {
            **space_state(data.space, data.digests),
            "task_names_": list(data.task.names),
            "task_columns_": data.task_columns,
        }
        self._set_fitted({**state, "offset_": self._offset_at_fit(
            lambda: self._automatic_offset(state, data))})
        return self

    def _automatic_offset(self, state: Mapping[str, Any], data: FitData) -> float:
        """The equal-error cut of task prompts and world texts; without a world, 95 % of prompts."""
        task = self._scores_with(state, data.task_embeddings)
        if data.world_embeddings is None:
            return keep_cut(task)
        return equal_error_cut(task, self._scores_with(state, data.world_embeddings))

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        return self._score_logits(_cosines(embeddings, self.task_columns_) / self.temperature)

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MCMDetector(_SimilarityDetector):
    """Maximum Concept Matching (MCM): the largest softmax probability of a task column.

    ``score_samples(x) = max_c softmax(s(x) / T)_c`` where ``s_c(x)`` is the
    cosine similarity of ``x`` to task column ``c``; the score lies in
    ``[1/C, 1]`` for ``C`` task columns. The default ``T = 1`` on cosine
    similarities (not CLIP's logit scale of 100, ``T = 0.01``) is the setting
    of the MCM paper and its reference code. Fitting embeds the task, and a
    sample of world texts for the default threshold.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``).
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side of the task is removed. ``"mismatch"``: the
        task lists what a dataset should keep (e.g. ImageNet's classes),
        and inputs that do not match it are removed. ``"match"``: the task
        describes what must go (e.g. hateful symbols), and inputs that
        match it are removed. Scores do not depend on it; removal rules,
        ``skhftt filter`` and several-concept scoring read it from here.
    temperature : float, default=1.0
        Temperature ``T``: the logits are the cosine similarities divided
        by ``T``.
    templates : list of str, default=None
        Prompt templates with one ``{}``; each task text is then a class
        name and its column the re-normalised mean of its prompts.
    threshold : "auto" or float, default="auto"
        Cut-off on ``score_samples``, a probability in ``[1/C, 1]``: an
        input is +1 when its score is at least the cut (``offset_``).
        ``"auto"`` sets the cut at fit: the equal-error cut between the
        task prompts' scores and the scores of a sample of at most 5,000
        world texts (``X``, or the bundled corpus when ``X`` is None; seeded
        with 0, the same at every fit), so that as many task prompts fall
        below it as world texts reach it. With ``encoder="precomputed"`` and
        ``X=None`` there is no world to draw from: the cut keeps at least
        95 % of the task prompts. A number is the cut itself.
        :meth:`set_threshold` moves it after fitting.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache: ``None`` is the persistent user cache
        (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path that
        directory, ``False`` this process only.
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
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    training_digests_ : dict
        SHA-256 digests of what the detector was fitted on: ``"task"`` (the
        task prompts) and ``"world"`` (the world corpus, None when unused).
    offset_ : float
        The cut on ``score_samples``: ``threshold``, or the cut that
        ``threshold="auto"`` set at fit. ``decision_function = score_samples
        - offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    MaxLogitDetector : The largest logit of the same similarities.
    EnergyDetector : Their log-sum-exp.
    skhftt.HFTTDetector : The trained detector these are baselines for.

    Notes
    -----
    A task of one column gives MCM nothing to compare: its softmax is 1 for
    every input.

    References
    ----------
    .. [1] Y. Ming, Z. Cai, J. Gu, Y. Sun, W. Li, Y. Li, "Delving into
       Out-of-Distribution Detection with Vision-Language Representations",
       NeurIPS 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import MCMDetector
    >>> task = np.eye(4)[:2]                     # two task columns
    >>> det = MCMDetector(encoder="precomputed").fit(None, task)
    >>> det.score_samples(np.eye(4)).round(3)
    array([0.731, 0.731, 0.5  , 0.5  ])
    >>> det.predict(np.eye(4))
    array([ 1,  1, -1, -1])
    """

    _score_description: ClassVar[str] = (
        "MCM: largest softmax probability of a task column, in [1/C, 1]"
    )

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return mcm_scores(logits)


class MaxLogitDetector(_SimilarityDetector):
    """The largest logit: the best cosine similarity to a task column, over ``T``.

    ``score_samples(x) = max_c s_c(x) / T``. The ranking (and so every
    threshold-free metric) does not depend on ``T``; ``T`` only scales the
    score, e.g. ``T = 0.01`` gives CLIP's logits. Fitting embeds the task,
    and a sample of world texts for the default threshold.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``).
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side of the task is removed. ``"mismatch"``: the
        task lists what a dataset should keep (e.g. ImageNet's classes),
        and inputs that do not match it are removed. ``"match"``: the task
        describes what must go (e.g. hateful symbols), and inputs that
        match it are removed. Scores do not depend on it; removal rules,
        ``skhftt filter`` and several-concept scoring read it from here.
    temperature : float, default=1.0
        Temperature ``T``: the logits are the cosine similarities divided
        by ``T``.
    templates : list of str, default=None
        Prompt templates with one ``{}``; each task text is then a class
        name and its column the re-normalised mean of its prompts.
    threshold : "auto" or float, default="auto"
        Cut-off on ``score_samples``, a cosine similarity divided by ``T``
        (in ``[-1/T, 1/T]``): an input is +1 when its score is at least the
        cut (``offset_``). ``"auto"`` sets the cut at fit: the equal-error
        cut between the task prompts' scores and the scores of a sample of
        at most 5,000 world texts (``X``, or the bundled corpus when ``X``
        is None; seeded with 0, the same at every fit), so that as many task
        prompts fall below it as world texts reach it. With
        ``encoder="precomputed"`` and ``X=None`` there is no world to draw
        from: the cut keeps at least 95 % of the task prompts. A number is
        the cut itself. :meth:`set_threshold` moves it after fitting.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache: ``None`` is the persistent user cache
        (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path that
        directory, ``False`` this process only.
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
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    training_digests_ : dict
        SHA-256 digests of what the detector was fitted on: ``"task"`` (the
        task prompts) and ``"world"`` (the world corpus, None when unused).
    offset_ : float
        The cut on ``score_samples``: ``threshold``, or the cut that
        ``threshold="auto"`` set at fit. ``decision_function = score_samples
        - offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    MCMDetector : The largest softmax probability of the same logits.
    EnergyDetector : Their log-sum-exp.

    References
    ----------
    .. [1] D. Hendrycks, S. Basart, M. Mazeika, A. Zou, J. Kwon, M.
       Mostajabi, J. Steinhardt, D. Song, "Scaling Out-of-Distribution
       Detection for Real-World Settings", ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import MaxLogitDetector
    >>> det = MaxLogitDetector(encoder="precomputed").fit(None, np.eye(4)[:2])
    >>> det.score_samples(np.eye(4))
    array([1., 1., 0., 0.])
    """

    _score_description: ClassVar[str] = "largest cosine similarity to a task column, divided by T"

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return logits.max(axis=1)


class EnergyDetector(_SimilarityDetector):
    """The negative free energy of the task logits: ``T * logsumexp(s(x) / T)``.

    As ``T`` shrinks the score tends to :class:`MaxLogitDetector`'s (times
    ``T``); at the default ``T = 1`` on cosine similarities, the setting of
    the MCM reference code for its zero-shot energy baseline, every task
    column contributes. Fitting embeds the task, and a sample of world texts
    for the default threshold.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``).
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side of the task is removed. ``"mismatch"``: the
        task lists what a dataset should keep (e.g. ImageNet's classes),
        and inputs that do not match it are removed. ``"match"``: the task
        describes what must go (e.g. hateful symbols), and inputs that
        match it are removed. Scores do not depend on it; removal rules,
        ``skhftt filter`` and several-concept scoring read it from here.
    temperature : float, default=1.0
        Temperature ``T``: the logits are the cosine similarities divided
        by ``T``.
    templates : list of str, default=None
        Prompt templates with one ``{}``; each task text is then a class
        name and its column the re-normalised mean of its prompts.
    threshold : "auto" or float, default="auto"
        Cut-off on ``score_samples``, ``T`` times a log-sum-exp of logits
        (between the largest cosine similarity and that plus ``T log C``):
        an input is +1 when its score is at least the cut (``offset_``).
        ``"auto"`` sets the cut at fit: the equal-error cut between the
        task prompts' scores and the scores of a sample of at most 5,000
        world texts (``X``, or the bundled corpus when ``X`` is None; seeded
        with 0, the same at every fit), so that as many task prompts fall
        below it as world texts reach it. With ``encoder="precomputed"`` and
        ``X=None`` there is no world to draw from: the cut keeps at least
        95 % of the task prompts. A number is the cut itself.
        :meth:`set_threshold` moves it after fitting.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache: ``None`` is the persistent user cache
        (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path that
        directory, ``False`` this process only.
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
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    training_digests_ : dict
        SHA-256 digests of what the detector was fitted on: ``"task"`` (the
        task prompts) and ``"world"`` (the world corpus, None when unused).
    offset_ : float
        The cut on ``score_samples``: ``threshold``, or the cut that
        ``threshold="auto"`` set at fit. ``decision_function = score_samples
        - offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    MCMDetector : The largest softmax probability of the same logits.
    MaxLogitDetector : Their largest entry.

    References
    ----------
    .. [1] W. Liu, X. Wang, J. Owens, Y. Li, "Energy-based
       Out-of-distribution Detection", NeurIPS 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import EnergyDetector
    >>> det = EnergyDetector(encoder="precomputed").fit(None, np.eye(4)[:2])
    >>> det.score_samples(np.eye(4)).round(3)
    array([1.313, 1.313, 0.693, 0.693])
    """

    _score_description: ClassVar[str] = "T * logsumexp of the task logits (negative free energy)"

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return self.temperature * logsumexp_rows(logits)
