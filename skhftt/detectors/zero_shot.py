"""Zero-shot baselines with the estimator API of :class:`~skhftt.HFTTDetector`.

Every detector here is fitted with the same forms as HFTT
(``fit(texts, in_texts)``, ``fit(X, y)`` with 0/1 PU labels, and
``encoder="precomputed"``), scores with the same orientation (higher = more
like the task, +1 = matches the task), and needs no training: fitting only
embeds the task (and, for NegLabel and CSP, their candidate labels), so a user can compare
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
                       docstring), against negative labels mined from
                       WordNet
CSPDetector            the same score against CSP's conjugated pool
=====================  ==================================================

``threshold`` is a cut-off on ``score_samples`` for MCM, MaxLogit and
Energy (``offset_ = threshold``), and the value of ``S`` for NegLabel and CSP
(``offset_ = log(threshold / (1 - threshold))``, and ``predict_proba``
gives ``[1 - S, S]``).

The baselines that need in-distribution images (MSP, Mahalanobis, KNN) are
in :mod:`skhftt.detectors.image_fitted`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from scipy.special import logsumexp
from sklearn import get_config
from sklearn.utils.validation import check_random_state

from skhftt._sklearn_compat import Interval, StrOptions, fit_context
from skhftt.corpora import apply_template, wordnet_lemmas
from skhftt.detectors.base import BaseTextDetector, FitData, space_state
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.space.validation import check_embeddings, check_texts, is_string_sequence

__all__ = [
    "CSP_ADJECTIVE_TEMPLATES",
    "CSP_EXCLUDED_CATEGORIES",
    "CSP_NOUN_TEMPLATES",
    "CSP_SUPERCLASSES",
    "NEGLABEL_ADJECTIVE_TEMPLATE",
    "NEGLABEL_NOUN_TEMPLATE",
    "CSPDetector",
    "CandidatePart",
    "EnergyDetector",
    "MCMDetector",
    "MaxLogitDetector",
    "NegLabelDetector",
    "csp_pool",
    "grouped_log_odds",
    "mcm_scores",
    "mine_negatives",
    "negative_counts",
    "neglabel_pool",
]

def block_rows(row_bytes: int) -> int:
    """Rows per block whose intermediates fit in scikit-learn's ``working_memory``.

    ``row_bytes`` is the memory one row's intermediates take; the budget is
    :func:`sklearn.get_config`'s ``working_memory`` (MiB), as for
    scikit-learn's own chunked computations.
    """
    return max(1, int(get_config()["working_memory"] * 2**20) // max(row_bytes, 1))


def _by_blocks(
    embeddings: np.ndarray, n_columns: int, score_block: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Apply ``score_block`` to blocks of rows, bounding the size of the logit matrix."""
    rows = block_rows(8 * n_columns)  # float64 logits
    scores = np.empty(embeddings.shape[0], dtype=np.float64)
    for start in range(0, embeddings.shape[0], rows):
        scores[start : start + rows] = score_block(embeddings[start : start + rows])
    return scores


def _cosines(embeddings: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Cosine similarities of unit rows to unit columns, float64 (n, C)."""
    return (embeddings.astype(np.float32, copy=False) @ columns.T).astype(np.float64)


def mcm_scores(logits: np.ndarray) -> np.ndarray:
    """The largest softmax entry of each row of ``logits``: MCM's score."""
    # 1 / sum_j exp(l_j - l_max): the largest softmax entry, without overflow.
    return 1.0 / np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)


class _BlockScoredDetector(BaseTextDetector):
    """Scores computed block by block from embeddings; subclasses define ``_score_block``.

    ``_n_columns`` is the width of the widest per-row intermediate of
    ``_score_block``; it sets how many rows a block holds.
    """

    def _score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        return _by_blocks(embeddings, self._n_columns(), self._score_block)

    def _n_columns(self) -> int:
        return self.task_columns_.shape[0]

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        raise NotImplementedError


_TEXT_FITTED_ATTRIBUTES = (*BaseTextDetector._fitted_attributes, "task_names_", "task_columns_")


class _SimilarityDetector(_BlockScoredDetector):
    """A score computed from the cosine similarities to the task columns alone."""

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "threshold": [Interval(Real, None, None, closed="neither")],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = _TEXT_FITTED_ATTRIBUTES

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        temperature: float = 1.0,
        templates: Sequence[str] | None = None,
        threshold: float = 0.0,
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
        self._set_fitted({
            **space_state(data.space, data.digests),
            "task_names_": list(data.task.names),
            "task_columns_": data.task_columns,
            "offset_": self._offset_of(self.threshold),
        })
        return self

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        return self._score_logits(_cosines(embeddings, self.task_columns_) / self.temperature)

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        raise NotImplementedError


_SHARED_PARAMETERS = """encoder : str or Encoder, default="openai/clip-vit-base-patch16"
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
        by ``T``."""

_SHARED_TAIL = """templates : list of str, default=None
        Prompt templates with one ``{}``; each task text is then a class
        name and its column the re-normalised mean of its prompts.
    threshold : float, default=0.0
        Cut-off on ``score_samples``: an input is +1 when its score is at
        least ``threshold`` (``offset_ = threshold``). A zero-shot score has
        no natural cut-off and nothing is fitted on images, so the default
        only makes ``decision_function`` equal ``score_samples``; take one
        from labelled in-distribution images (e.g. the 5th percentile of
        their scores keeps about 95 % of them) and apply it with
        :meth:`set_threshold` before relying on :meth:`predict`.
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

    _score_description: ClassVar[str] = (
        "MCM: largest softmax probability of a task column, in [1/C, 1]"
    )

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return mcm_scores(logits)


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

    _score_description: ClassVar[str] = "largest cosine similarity to a task column, divided by T"

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

    _score_description: ClassVar[str] = "T * logsumexp of the task logits (negative free energy)"

    def _score_logits(self, logits: np.ndarray) -> np.ndarray:
        return self.temperature * logsumexp(logits, axis=1)


# --------------------------------------------------------- mined negative labels

NEGLABEL_NOUN_TEMPLATE = "the nice {}"
NEGLABEL_ADJECTIVE_TEMPLATE = "This is a {} photo"
CSP_NOUN_TEMPLATES = (
    "a close-up photo of the nice {}.",
    "a photo with the nice {}.",
    "a good photo with the nice {}.",
    "a photo of the nice {}.",
    "{}",
    "the {}",
    "the good {}",
    "the nice {}",
)
CSP_ADJECTIVE_TEMPLATES = (
    "{}", "a nice photo of {}", "a good photo of {}", "a close-up photo of {}",
)
CSP_SUPERCLASSES = (
    "environment", "space", "object", "scene", "place", "item", "area", "view", "thing",
    "pattern", "structure", "landscape", "vista", "creature",
)
CSP_EXCLUDED_CATEGORIES = ("noun.person", "noun.quantity", "noun.group", "adj.pert")
# Candidates whose prompts are embedded together, so that memory stays bounded.
_CANDIDATE_CHUNK = 4096


@dataclass
class CandidatePart:
    """One part of a candidate pool, mined on its own (e.g. WordNet nouns).

    Attributes
    ----------
    name : str
        The part's name, e.g. ``"noun"``.
    embeddings : ndarray of shape (n, d)
        One unit row per candidate label.
    labels : list of str or None
        The text of each candidate, when known.
    """

    name: str
    embeddings: np.ndarray
    labels: list[str] | None


def negative_counts(n_negatives: int | float, sizes: Sequence[int], *, source: str) -> list[int]:
    """How many negatives each part of the pool gives.

    A float is a fraction of every part (the reference codes' 15 % of the
    nouns and 15 % of the adjectives); an int is a total count, shared
    among the parts in proportion to their sizes (largest remainders).

    Raises
    ------
    ValueError
        An int larger than the pool.
    """
    total = sum(sizes)
    if isinstance(n_negatives, Integral):
        if n_negatives > total:
            raise ValueError(
                f"n_negatives={n_negatives} exceeds the {total} texts of the {source}; "
                "pass a smaller count or a fraction such as 0.15."
            )
        shares = np.array(sizes, dtype=np.float64) * int(n_negatives) / total
        counts = np.floor(shares).astype(int)
        leftover = int(n_negatives) - int(counts.sum())
        counts[np.argsort(counts - shares, kind="stable")[:leftover]] += 1
        return counts.tolist()
    return [max(1, int(n_negatives * size)) for size in sizes]


def mine_negatives(
    parts: Sequence[CandidatePart],
    columns: np.ndarray,
    counts: Sequence[int],
    *,
    percentile: float,
    max_similarity: float | None = None,
) -> list[np.ndarray]:
    """Indices of the negative labels of each part: the candidates farthest from the task.

    A candidate's closeness to the task is the ``percentile``-th percentile of
    its cosine similarities to the task columns; each part gives its
    ``counts[i]`` least close candidates, farthest first. With
    ``max_similarity``, candidates more similar than that to some task column
    (synonyms of a task item) come last, as in CSP's reference code.
    """
    chosen = []
    for part, count in zip(parts, counts, strict=True):
        closeness = _by_blocks(
            part.embeddings, columns.shape[0],
            lambda block: np.percentile(_cosines(block, columns), percentile, axis=1),
        )
        if max_similarity is not None:
            nearest = _by_blocks(
                part.embeddings, columns.shape[0],
                lambda block: _cosines(block, columns).max(axis=1),
            )
            closeness[nearest > max_similarity] = np.inf
        chosen.append(np.argsort(closeness, kind="stable")[:count])
    return chosen


def grouped_log_odds(
    embeddings: np.ndarray,
    task_columns: np.ndarray,
    negative_columns: np.ndarray,
    *,
    n_groups: int,
    temperature: float,
    extra_columns: np.ndarray | None = None,
) -> np.ndarray:
    """Log-odds of the NegLabel score ``S`` of each row, averaged over groups of negatives.

    ``S_g(x) = sum_c exp(s_c / T) / (sum_c exp(s_c / T) + sum_{j in g} exp(n_j / T)
    [+ sum_k exp(v_k / T)])`` for group ``g`` (the ``g``-th chunk of
    :func:`numpy.array_split`), ``S`` the mean of ``S_g``; ``extra_columns``
    (trained out-columns) join every group. Computed in log space.
    """
    task = logsumexp(_cosines(embeddings, task_columns) / temperature, axis=1)
    negatives = _cosines(embeddings, negative_columns) / temperature
    groups = np.array_split(np.arange(negatives.shape[1]), n_groups)
    per_group = np.column_stack([logsumexp(negatives[:, group], axis=1) for group in groups])
    if extra_columns is not None and len(extra_columns):
        extra = logsumexp(_cosines(embeddings, extra_columns) / temperature, axis=1)
        per_group = np.logaddexp(per_group, extra[:, None])
    total = np.logaddexp(task[:, None], per_group)
    # log of sum_g S_g and of sum_g (1 - S_g); their difference is the log-odds of the mean.
    return logsumexp(task[:, None] - total, axis=1) - logsumexp(per_group - total, axis=1)


def _mean_prompt_rows(
    embedder: Any, labels: Sequence[str], templates: Sequence[str], *, name: str
) -> np.ndarray:
    """Unit mean of each label's prompts (one per template), embedded in chunks."""
    rows = []
    for start in range(0, len(labels), _CANDIDATE_CHUNK):
        chunk = labels[start : start + _CANDIDATE_CHUNK]
        prompts = [template.format(label) for label in chunk for template in templates]
        embedded = embedder.embed_texts(prompts, name=name)
        rows.append(embedded.reshape(len(chunk), len(templates), -1).mean(axis=1))
    means = np.concatenate(rows)
    return (means / np.linalg.norm(means, axis=1, keepdims=True)).astype(np.float32)


def _given_parts(candidates: Mapping[str, object], embedder: Any, dim: int) -> list[CandidatePart]:
    """Candidate parts passed by the user: texts, (n, d) rows or (n, m, d) prompt blocks."""
    parts = []
    for name, value in candidates.items():
        if is_string_sequence(value):
            labels = check_texts(value, name=f"candidates[{name!r}]")
            embeddings = embedder.embed_texts(labels, name=f"candidates[{name!r}]")
        else:
            labels = None
            array = np.asarray(value)
            if array.ndim == 3:  # several prompts per candidate: their unit mean
                array = array.mean(axis=1)
            embeddings = check_embeddings(array, name=f"candidates[{name!r}]")
        if embeddings.shape[1] != dim:
            raise ValueError(
                f"candidates[{name!r}] has embeddings of width {embeddings.shape[1]} but "
                f"the task embeddings have width {dim}."
            )
        parts.append(CandidatePart(str(name), embeddings, labels))
    if not parts:
        raise ValueError("candidates is an empty mapping; give at least one part.")
    return parts


def neglabel_pool() -> dict[str, list[str]]:
    """NegLabel's candidate labels: WordNet nouns and adjectives in the reference prompts.

    Returns
    -------
    dict
        ``{"noun": ["the nice entity", ...], "adj": ["This is a able photo", ...]}``:
        67,186 and 14,006 texts, in :func:`skhftt.corpora.wordnet_lemmas` order.
    """
    return {
        "noun": apply_template(wordnet_lemmas("noun").lemmas, NEGLABEL_NOUN_TEMPLATE),
        "adj": apply_template(wordnet_lemmas("adj").lemmas, NEGLABEL_ADJECTIVE_TEMPLATE),
    }


def csp_pool(
    *,
    noun_templates: Sequence[str] | None = None,
    adjective_templates: Sequence[str] | None = None,
    superclasses: Sequence[str] | None = None,
    exclude_categories: Sequence[str] | None = None,
) -> dict[str, tuple[list[str], list[str]]]:
    """CSP's candidate labels and the templates each is prompted with.

    Parameters are :class:`CSPDetector`'s of the same names (None = the
    reference's). Each adjective is joined to a superclass word drawn by a
    generator seeded with 0 over the whole adjective list (so the pairing
    does not depend on the exclusions); the excluded categories are dropped
    afterwards.

    Returns
    -------
    dict
        ``{"noun": (labels, templates), "adj": (labels, templates)}``; a
        candidate's column is the unit mean of ``template.format(label)``
        over its part's templates.

    Raises
    ------
    ValueError
        An empty template or superclass list, a template without exactly
        one ``{}``, or a category that is not a WordNet noun or adjective
        category.
    """
    nouns = _templates(noun_templates, CSP_NOUN_TEMPLATES, "noun_templates")
    adjectives = _templates(adjective_templates, CSP_ADJECTIVE_TEMPLATES, "adjective_templates")
    words = list(CSP_SUPERCLASSES if superclasses is None else superclasses)
    if not words:
        raise ValueError("superclasses is empty; give at least one word, or None.")
    excluded = list(CSP_EXCLUDED_CATEGORIES if exclude_categories is None else exclude_categories)
    foreign = [c for c in excluded if not str(c).startswith(("noun.", "adj."))]
    if foreign:
        raise ValueError(
            f"exclude_categories has {foreign}; WordNet noun and adjective categories "
            "start with 'noun.' or 'adj.' (e.g. 'noun.person', 'adj.pert')."
        )
    pool = {}
    for pos, templates in (("noun", nouns), ("adj", adjectives)):
        every = wordnet_lemmas(pos)
        kept = set(wordnet_lemmas(pos, exclude_categories=[
            c for c in excluded if c.startswith(f"{pos}.")]).lemmas)
        labels = every.lemmas
        if pos == "adj":
            drawn = np.random.default_rng(0).integers(len(words), size=len(labels))
            labels = [f"{lemma} {words[i]}" for lemma, i in zip(labels, drawn, strict=True)]
        pool[pos] = ([label for label, lemma in zip(labels, every.lemmas, strict=True)
                      if lemma in kept], templates)
    return pool


def _templates(given: Sequence[str] | None, default: Sequence[str], name: str) -> list[str]:
    templates = list(default if given is None else given)
    if not templates:
        raise ValueError(f"{name} is empty; give at least one template, or None.")
    for template in templates:
        apply_template([], template)  # exactly one '{}' slot, or a clear error
    return templates


def _needs_encoder(embedder: Any, detector: str) -> None:
    if embedder.load() is None:
        raise ValueError(
            f"encoder='precomputed' has no bundled world corpus and cannot embed the "
            f"WordNet lemmas of {detector}: pass the candidate embeddings as "
            "candidates={'noun': ..., 'adj': ...} (or, for NegLabel, the world corpus "
            "embeddings as X)."
        )


_MINED_DOC_ATTRIBUTES = """task_columns_ : ndarray of shape (n_task_columns, dim)
        Task columns (unit rows).
    negative_columns_ : ndarray of shape (n_negatives, dim)
        Embeddings of the mined negative labels, in group order (group ``g``
        is the ``g``-th chunk of ``numpy.array_split``).
    negative_parts_ : list of str
        The pool part each negative label comes from (``"noun"``, ``"adj"``,
        ``"world"`` or a key of ``candidates``), same order.
    negative_indices_ : ndarray of shape (n_negatives,)
        Index of each negative label within its part, same order. For the
        world corpus it indexes ``X``; for the bundled corpus
        ``load_world_corpus()[i]`` is the text.
    negative_labels_ : list of str or None
        The text of each negative label (e.g. ``"the nice caladenia"``),
        None where the candidates were given as embeddings.
    task_names_ : list of str
        Name of each task column.
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity of the encoder used in fit; ``None`` when precomputed.
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    offset_ : float
        Log-odds of ``threshold``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``."""

_MINED_DOC_TAIL = """n_groups : int, default=100
        Number of groups of negatives; 1 disables grouping. 100 is the
        setting of the reference code.
    temperature : float, default=0.01
        Temperature ``T`` of the score.
    templates : list of str, default=None
        Prompt templates with one ``{}`` for the task, as for
        ``HFTTDetector``.
    threshold : float, default=0.5
        Value of ``S`` from which an input is predicted +1 (``S >=
        threshold``): ``offset_ = log(threshold / (1 - threshold))``;
        :meth:`set_threshold` moves it after fitting.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache: ``None`` is the persistent user cache
        (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path that
        directory, ``False`` this process only. Embedding the WordNet pool
        once is the slow part of a first fit; later fits reuse it.
    device : str, default="auto"
        Where the encoder runs.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffling of the negatives into groups.
    verbose : int, default=0
        0 is silent, 1 shows progress bars while encoding."""


def _document_mined(cls: type) -> type:
    cls.__doc__ = cls.__doc__.replace("{attributes}", _MINED_DOC_ATTRIBUTES).replace(
        "{tail}", _MINED_DOC_TAIL
    )
    return cls


class _MinedNegativesDetector(_BlockScoredDetector):
    """NegLabel's score against negative labels mined from a candidate pool.

    Subclasses define ``_candidate_parts`` (the pool) and ``_world_needed``;
    ``max_similarity`` is None unless the subclass has the parameter.
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
    _threshold_kind: ClassVar[Literal["log_odds", "score"]] = "log_odds"
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *_TEXT_FITTED_ATTRIBUTES, "negative_columns_", "negative_parts_", "negative_indices_",
        "negative_labels_",
    )

    def _world_needed(self, X: object) -> bool:
        raise NotImplementedError

    def _candidate_parts(self, data: FitData) -> tuple[list[CandidatePart], str]:
        """The pool, in parts mined separately, and its name for error messages."""
        raise NotImplementedError

    @fit_context
    def fit(self, X: object, y: object = None) -> _MinedNegativesDetector:
        """Embed the task and the candidate labels, and mine the negative labels.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus: the candidates when ``candidates`` says so (see the
            class docstring), otherwise ignored. In the PU form, every text.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) in any form
            :meth:`skhftt.HFTTDetector.fit` accepts, or 0/1 PU labels.

        Returns
        -------
        self
            The fitted detector.
        """
        data = self._fit_data(X, y, need_world=self._world_needed(X))
        self._set_fitted({
            **space_state(data.space, data.digests),
            "task_names_": list(data.task.names),
            "task_columns_": data.task_columns,
            **self._mine(data),
            "offset_": self._offset_of(self.threshold),
        })
        return self

    def _mine(self, data: FitData) -> dict[str, Any]:
        """The negative labels of ``data``'s task: the ``negative_*_`` fitted attributes."""
        parts, source = self._candidate_parts(data)
        counts = negative_counts(self.n_negatives, [len(p.embeddings) for p in parts],
                                 source=source)
        if self.n_groups > sum(counts):
            raise ValueError(
                f"n_groups={self.n_groups} is larger than the {sum(counts)} negative labels; "
                "every group needs at least one."
            )
        chosen = mine_negatives(parts, data.task_columns, counts, percentile=self.percentile,
                                max_similarity=getattr(self, "max_similarity", None))
        owner = np.concatenate([np.full(len(c), i) for i, c in enumerate(chosen)])
        index = np.concatenate(chosen)
        if self.n_groups > 1:
            order = check_random_state(self.random_state).permutation(len(index))
            owner, index = owner[order], index[order]
        negatives = np.empty((len(index), data.task_columns.shape[1]), np.float32)
        for p, part in enumerate(parts):
            negatives[owner == p] = part.embeddings[index[owner == p]]
        return {
            "negative_columns_": negatives,
            "negative_parts_": [parts[p].name for p in owner],
            "negative_indices_": index,
            "negative_labels_": [None if parts[p].labels is None else parts[p].labels[i]
                                 for p, i in zip(owner, index, strict=True)],
        }

    def _n_columns(self) -> int:
        return self.task_columns_.shape[0] + self.negative_columns_.shape[0]

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds ``log S - log (1 - S)`` of the NegLabel score of each row."""
        return grouped_log_odds(embeddings, self.task_columns_, self.negative_columns_,
                                n_groups=self.n_groups, temperature=self.temperature)


@_document_mined
class NegLabelDetector(_MinedNegativesDetector):
    """NegLabel: the task's share of the softmax against mined negative labels.

    **Candidates.** By default (``fit(None, task)``) the WordNet 3.0 pool of
    the reference code: every noun head lemma in ``"the nice {}"`` and every
    adjective in ``"This is a {} photo"`` (the prompts of the reference
    config, ``prompt_idx_neg=85`` and its adjective template), from
    :func:`skhftt.corpora.wordnet_lemmas`. Given a world corpus ``X``, its
    texts are the candidates instead (the behaviour of skhftt 0.1;
    ``candidates="world"``).

    **Mining.** For each candidate, take the ``percentile``-th percentile of
    its cosine similarities to the task columns; the candidates where it is
    lowest (the farthest from the task) become the negative labels:
    ``n_negatives`` of each part of the pool (nouns and adjectives are mined
    separately, as in the reference code).

    **Score.** With task similarities ``s_c(x)``, negative similarities
    ``n_j(x)`` and temperature ``T``::

        S(x) = sum_c exp(s_c / T) / (sum_c exp(s_c / T) + sum_j exp(n_j / T))

    **Grouping.** With ``n_groups > 1`` the negatives are shuffled (seeded by
    ``random_state``) and split into ``n_groups`` groups of near-equal size;
    ``S(x)`` is the mean over the groups of the score computed against each
    group alone.

    ``score_samples`` is the log-odds ``log S - log (1 - S)``, computed in
    log space: at ``T = 0.01``, ``S`` rounds to exactly 0 or 1 for many
    inputs, which would create ties. :meth:`predict_proba` gives
    ``[1 - S, S]`` back.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`.
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side of the task is removed. ``"mismatch"``: the
        task lists what a dataset should keep (e.g. ImageNet's classes),
        and inputs that do not match it are removed. ``"match"``: the task
        describes what must go (e.g. hateful symbols), and inputs that
        match it are removed. Scores do not depend on it; removal rules,
        ``skhftt filter`` and several-concept scoring read it from here.
    candidates : {"auto", "wordnet", "world"} or mapping, default="auto"
        Where the negative labels come from. ``"wordnet"``: the WordNet
        nouns and adjectives above (needs an encoder). ``"world"``: the
        world corpus ``X`` (``None`` = the bundled word list). ``"auto"``:
        ``"wordnet"`` when ``X`` is None, ``"world"`` when a corpus is
        given. A mapping ``part -> texts or embeddings`` (``(n, d)`` rows or
        ``(n, m, d)`` prompt blocks, averaged) gives a pool of one's own,
        each part mined on its own; with ``encoder="precomputed"`` this is
        how the WordNet pool is passed.
    n_negatives : int or float, default=0.15
        Number of negative labels: a float in (0, 1) is a fraction of each
        part of the pool (0.15 is the reference code's ``neg_topk``: 10,077
        nouns and 2,100 adjectives of the WordNet pool); an int is a total
        count, shared among the parts by size.
    percentile : float, default=95.0
        Percentile (0 to 100) of a candidate's similarities to the task
        columns that measures its closeness to the task (the paper's
        ``eta = 0.05`` on negated similarities).
    {tail}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    CSPDetector : NegLabel with the conjugated semantic pool.

    Notes
    -----
    Differences from the reference code: grouping keeps every negative (the
    reference drops the remainder of ``n_negatives / n_groups``, which
    depends on the order), and a lemma that is both a noun and an adjective
    is a candidate in both parts (the reference keeps whichever file it
    happens to read first). The reference prompts the task with its noun
    template (``"the nice {}"``); here the task is prompted as given.

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

    A pool in two parts, mined separately (here 20 % of each):

    >>> pool = {"noun": rng.normal(size=(100, 16)), "adj": rng.normal(size=(50, 16))}
    >>> det = NegLabelDetector(encoder="precomputed", candidates=pool, n_negatives=0.2,
    ...                        n_groups=5, random_state=0).fit(None, task)
    >>> sorted(set(det.negative_parts_)), len(det.negative_parts_)
    (['adj', 'noun'], 30)
    """

    _score_description: ClassVar[str] = (
        "NegLabel log-odds log S - log(1 - S) against mined negative labels"
    )

    _parameter_constraints: ClassVar[dict] = {
        **_MinedNegativesDetector._parameter_constraints,
        "candidates": [StrOptions({"auto", "wordnet", "world"}), Mapping],
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        candidates: str | Mapping[str, object] = "auto",
        n_negatives: int | float = 0.15,
        percentile: float = 95.0,
        n_groups: int = 100,
        temperature: float = 0.01,
        templates: Sequence[str] | None = None,
        threshold: float = 0.5,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.candidates = candidates
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

    def _source(self, X: object) -> str | None:
        if isinstance(self.candidates, Mapping):
            return None
        if self.candidates == "auto":
            return "wordnet" if X is None else "world"
        return self.candidates

    def _world_needed(self, X: object) -> bool:
        return self._source(X) == "world"

    def _candidate_parts(self, data: FitData) -> tuple[list[CandidatePart], str]:
        dim = data.task_columns.shape[1]
        if isinstance(self.candidates, Mapping):
            return _given_parts(self.candidates, data.embedder, dim), "candidates"
        source = self.candidates
        if source == "auto":
            source = "world" if data.world_embeddings is not None else "wordnet"
        if source == "world":
            return [CandidatePart("world", data.world_embeddings, None)], "world corpus"
        _needs_encoder(data.embedder, "NegLabel")
        parts = [
            CandidatePart(pos, data.embedder.embed_texts(prompts, name=f"the WordNet {pos}s"),
                          prompts)
            for pos, prompts in neglabel_pool().items()
        ]
        return parts, "WordNet pool"


@_document_mined
class CSPDetector(_MinedNegativesDetector):
    """CSP: NegLabel's score against a conjugated semantic pool of negative labels.

    **Pool** (Chen et al., NeurIPS 2024, and their reference code), from the
    WordNet 3.0 head lemmas of :func:`skhftt.corpora.wordnet_lemmas`:

    * nouns, each the re-normalised mean of ``noun_templates`` (the
      reference's 8 prompts) filled with the lemma;
    * *conjugated* adjectives: each adjective joined to a superclass word
      (``"{adjective} {superclass}"``, e.g. ``"striped pattern"``,
      ``"rocky landscape"``), the superclass drawn for each adjective from
      ``superclasses`` by a generator seeded with 0, as in the reference;
      its column the mean of ``adjective_templates`` filled with that phrase;
    * the lexicographer categories ``exclude_categories`` left out
      (default: persons, quantities, groups and pertainyms, the reference
      config's ``txt_exclude``).

    **Mining** as :class:`NegLabelDetector`'s (``n_negatives`` of each part,
    the least close by the ``percentile``-th percentile of the cosines to the
    task columns), except that candidates more similar than
    ``max_similarity`` to some task column (a task item's synonyms) are
    passed over, as in the reference code. **Score** and grouping are
    NegLabel's.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`.
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side of the task is removed. ``"mismatch"``: the
        task lists what a dataset should keep (e.g. ImageNet's classes),
        and inputs that do not match it are removed. ``"match"``: the task
        describes what must go (e.g. hateful symbols), and inputs that
        match it are removed. Scores do not depend on it; removal rules,
        ``skhftt filter`` and several-concept scoring read it from here.
    candidates : "wordnet" or mapping, default="wordnet"
        ``"wordnet"``: the pool above (needs an encoder). A mapping
        ``part -> texts or embeddings`` (``(n, d)`` rows, or ``(n, m, d)``
        blocks of each candidate's prompts, averaged) replaces it, e.g. the
        same pool embedded beforehand for ``encoder="precomputed"``.
    n_negatives : int or float, default=0.15
        Negative labels: a float in (0, 1) is a fraction of each part (the
        reference's 15 %), an int a total count shared by size.
    percentile : float, default=95.0
        Percentile of a candidate's similarities to the task columns that
        measures its closeness to the task.
    max_similarity : float or None, default=0.95
        Candidates whose largest cosine similarity to a task column exceeds
        this are mined last; None disables the rule.
    noun_templates : list of str, default=None
        Templates of the noun candidates; None is ``CSP_NOUN_TEMPLATES``.
    adjective_templates : list of str, default=None
        Templates of the conjugated adjectives; None is
        ``CSP_ADJECTIVE_TEMPLATES``.
    superclasses : list of str, default=None
        Words the adjectives are joined to; None is ``CSP_SUPERCLASSES``
        (environment, space, object, scene, place, item, area, view, thing,
        pattern, structure, landscape, vista, creature).
    exclude_categories : list of str, default=None
        WordNet lexicographer categories left out; None is
        ``CSP_EXCLUDED_CATEGORIES``, ``[]`` keeps every category.
    {tail}

    Attributes
    ----------
    {attributes}

    See Also
    --------
    NegLabelDetector : The same score on the plain WordNet pool.

    Notes
    -----
    The default pool is large: about 52,000 nouns times 8 prompts and 11,000
    adjectives times 4, embedded once (the cache keeps them for later fits).
    ``noun_templates=["the nice {}"]`` and ``adjective_templates=["{}"]``
    embed one prompt per candidate. Grouping keeps every negative (the
    reference drops the remainder of ``n_negatives / n_groups``).

    References
    ----------
    .. [1] M. Chen, J. Gao, C. Xu, "Conjugated Semantic Pool Improves OOD
       Detection with Pre-trained Vision-Language Models", NeurIPS 2024.
    .. [2] X. Jiang, F. Liu, Z. Fang, H. Chen, T. Liu, F. Zheng, B. Han,
       "Negative Label Guided OOD Detection with Pretrained Vision-Language
       Models", ICLR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors.zero_shot import CSPDetector
    >>> rng = np.random.default_rng(0)
    >>> task = rng.normal(size=(3, 16))
    >>> pool = {"noun": rng.normal(size=(100, 16)), "adj": rng.normal(size=(40, 4, 16))}
    >>> det = CSPDetector(encoder="precomputed", candidates=pool, n_negatives=0.25,
    ...                   n_groups=5, random_state=0).fit(None, task)
    >>> det.negative_columns_.shape
    (35, 16)
    >>> bool((det.score_samples(task) > det.score_samples(-task)).all())
    True
    """

    _score_description: ClassVar[str] = (
        "NegLabel log-odds log S - log(1 - S) against CSP's conjugated pool"
    )

    _parameter_constraints: ClassVar[dict] = {
        **_MinedNegativesDetector._parameter_constraints,
        "candidates": [StrOptions({"wordnet"}), Mapping],
        "max_similarity": [None, Interval(Real, -1, 1, closed="both")],
        "noun_templates": [None, list, tuple],
        "adjective_templates": [None, list, tuple],
        "superclasses": [None, list, tuple],
        "exclude_categories": [None, list, tuple],
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        candidates: str | Mapping[str, object] = "wordnet",
        n_negatives: int | float = 0.15,
        percentile: float = 95.0,
        max_similarity: float | None = 0.95,
        noun_templates: Sequence[str] | None = None,
        adjective_templates: Sequence[str] | None = None,
        superclasses: Sequence[str] | None = None,
        exclude_categories: Sequence[str] | None = None,
        n_groups: int = 100,
        temperature: float = 0.01,
        templates: Sequence[str] | None = None,
        threshold: float = 0.5,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.candidates = candidates
        self.n_negatives = n_negatives
        self.percentile = percentile
        self.max_similarity = max_similarity
        self.noun_templates = noun_templates
        self.adjective_templates = adjective_templates
        self.superclasses = superclasses
        self.exclude_categories = exclude_categories
        self.n_groups = n_groups
        self.temperature = temperature
        self.templates = templates
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _world_needed(self, X: object) -> bool:
        return False

    def _candidate_parts(self, data: FitData) -> tuple[list[CandidatePart], str]:
        dim = data.task_columns.shape[1]
        if isinstance(self.candidates, Mapping):
            return _given_parts(self.candidates, data.embedder, dim), "candidates"
        _needs_encoder(data.embedder, "CSP")
        pool = csp_pool(noun_templates=self.noun_templates,
                        adjective_templates=self.adjective_templates,
                        superclasses=self.superclasses,
                        exclude_categories=self.exclude_categories)
        parts = [
            CandidatePart(pos, _mean_prompt_rows(data.embedder, labels, templates,
                                                 name=f"the CSP {pos} prompts"), labels)
            for pos, (labels, templates) in pool.items()
        ]
        return parts, "CSP pool"
