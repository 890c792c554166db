"""Zero-shot detectors against mined negative labels: NegLabel and CSP.

Fitting embeds the task and a pool of candidate labels (by default WordNet
lemmas in each method's reference prompts, :func:`skhftt.corpora.neglabel_pool`
and :func:`skhftt.corpora.csp_pool`), and keeps as *negative labels* the
candidates farthest from the task (:func:`mine_negatives`). An input's score
is the task's share of the softmax against the task and negative columns,
averaged over groups of negatives (:func:`grouped_log_odds`), as log-odds.
``threshold`` is a value of that share (``offset_ = log(threshold / (1 -
threshold))``) and ``predict_proba`` gives it back.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.utils import gen_batches
from sklearn.utils.validation import check_random_state

from skhftt._sklearn_compat import Interval, StrOptions, fit_context
from skhftt.corpora import csp_pool, neglabel_pool
from skhftt.detectors.base import (
    TASK_ATTRIBUTES,
    TASK_SPEC,
    TEMPERATURE,
    BaseTextDetector,
    FitData,
    _BlockScoredDetector,
    _by_blocks,
    _cosines,
    space_state,
)
from skhftt.detectors.fitted import Array, Columns, Names
from skhftt.embedding.embedder import Embedder
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.embedding.progress import progress
from skhftt.space.head import logsumexp_rows
from skhftt.space.validation import check_embeddings, check_texts, is_string_sequence

__all__ = [
    "CSPDetector",
    "CandidatePart",
    "NegLabelDetector",
    "grouped_log_odds",
    "mine_negatives",
    "negative_counts",
]

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

    Parameters
    ----------
    n_negatives : int or float
        The detector's ``n_negatives``.
    sizes : sequence of int
        The number of candidates of each part.
    source : str
        What the pool is, for the error message.

    Returns
    -------
    list of int
        One count per part.

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

    Parameters
    ----------
    parts : sequence of CandidatePart
    columns : ndarray of shape (C, d)
        Task columns, unit rows.
    counts : sequence of int
        Negatives to take from each part.
    percentile : float
        From 0 to 100.
    max_similarity : float, optional

    Returns
    -------
    list of ndarray
        For each part, the indices of its negatives, farthest first.
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
) -> np.ndarray:
    """Log-odds of the NegLabel score ``S`` of each row, averaged over groups of negatives.

    ``S_g(x) = sum_c exp(s_c / T) / (sum_c exp(s_c / T) + sum_{j in g} exp(n_j / T))``
    for group ``g`` (the ``g``-th chunk of :func:`numpy.array_split`), ``S``
    the mean of ``S_g``. Computed in log space, so it never saturates.

    Parameters
    ----------
    embeddings : ndarray of shape (n, d)
        Unit rows to score.
    task_columns : ndarray of shape (C, d)
    negative_columns : ndarray of shape (N, d)
        In group order; ``n_groups <= N``.
    n_groups : int
    temperature : float

    Returns
    -------
    ndarray of shape (n,)
        ``log S - log (1 - S)``.
    """
    task = logsumexp_rows(_cosines(embeddings, task_columns) / temperature)
    negatives = _cosines(embeddings, negative_columns) / temperature
    groups = np.array_split(np.arange(negatives.shape[1]), n_groups)
    per_group = np.column_stack([logsumexp_rows(negatives[:, group]) for group in groups])
    total = np.logaddexp(task[:, None], per_group)
    # log of sum_g S_g and of sum_g (1 - S_g); their difference is the log-odds of the mean.
    return logsumexp_rows(task[:, None] - total) - logsumexp_rows(per_group - total)


def _embed_pool(embedder: Embedder, pool: Mapping[str, tuple[list[str], list[str]]], *,
                what: str) -> list[CandidatePart]:
    """Each part's candidates as the unit mean of their prompts, one per template.

    Embedded in chunks of candidates, so that memory stays bounded, with one
    progress report over the whole pool.
    """
    quiet = copy.copy(embedder)
    quiet.show_progress = False
    total = sum(len(labels) * len(templates) for labels, templates in pool.values())
    parts = []
    with progress(total, what=what, unit="prompt", show=embedder.show_progress) as update:
        for pos, (labels, templates) in pool.items():
            sums = []
            for chunk in gen_batches(len(labels), _CANDIDATE_CHUNK):
                prompts = [template.format(label) for label in labels[chunk]
                           for template in templates]
                embedded = quiet.embed_texts(prompts, name=f"the {what}")
                sums.append(embedded.reshape(-1, len(templates), embedded.shape[1]).sum(axis=1))
                update(len(prompts))
            means = np.concatenate(sums)
            means /= np.linalg.norm(means, axis=1, keepdims=True)
            parts.append(CandidatePart(pos, means.astype(np.float32), labels))
    return parts


def _given_parts(candidates: Mapping[str, object], embedder: Embedder,
                 dim: int) -> list[CandidatePart]:
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


def _needs_encoder(embedder: Embedder, detector: str) -> None:
    if embedder.load() is None:
        raise ValueError(
            f"encoder='precomputed' has no bundled world corpus and cannot embed the "
            f"WordNet lemmas of {detector}: pass the candidate embeddings as "
            "candidates={'noun': ..., 'adj': ...} (or, for NegLabel, the world corpus "
            "embeddings as X)."
        )


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
        "temperature": [TEMPERATURE],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }
    _threshold_kind: ClassVar[Literal["log_odds", "score"]] = "log_odds"
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, *TASK_ATTRIBUTES, "negative_columns_",
        "negative_parts_", "negative_indices_", "negative_labels_",
    )
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec,
        **TASK_SPEC,
        "negative_columns_": Columns("N"),
        "negative_parts_": Names("N"),
        "negative_indices_": Array(("N",), kinds="iu", minimum=0),
        "negative_labels_": Names("N", optional_items=True),
    }

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

    def _check_fitted_state(self, state: Mapping[str, Any]) -> None:
        n_negatives = len(state["negative_columns_"])
        if self.n_groups > n_negatives:
            raise ValueError(f"n_groups={self.n_groups} is larger than the {n_negatives} "
                             "rows of negative_columns_; every group needs at least one.")

    def _n_columns(self) -> int:
        return self.task_columns_.shape[0] + self.negative_columns_.shape[0]

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds ``log S - log (1 - S)`` of the NegLabel score of each row."""
        return grouped_log_odds(embeddings, self.task_columns_, self.negative_columns_,
                                n_groups=self.n_groups, temperature=self.temperature)


class NegLabelDetector(_MinedNegativesDetector):
    """NegLabel: the task's share of the softmax against mined negative labels.

    **Candidates.** By default (``fit(None, task)``) the WordNet 3.0 pool of
    the reference code, :func:`skhftt.corpora.neglabel_pool`: every noun head
    lemma in ``"the nice {}"`` and every adjective in ``"This is a {}
    photo"`` (the prompts of the reference config, ``prompt_idx_neg=85`` and
    its adjective template). Given a world corpus ``X``, its texts are the
    candidates instead (the behaviour of skhftt 0.1; ``candidates="world"``).

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
    n_groups : int, default=100
        Number of groups of negatives; 1 disables grouping. 100 is the
        setting of the reference code.
    temperature : float, default=0.01
        Temperature ``T`` of the score.
    templates : list of str, default=None
        Prompt templates with one ``{}`` for the task, as for
        ``HFTTDetector``.
    threshold : float, default=0.5
        Value of ``S`` (a probability, strictly between 0 and 1) from which
        an input is predicted +1 (``S >= threshold``): ``offset_ =
        log(threshold / (1 - threshold))``. :meth:`set_threshold` moves it
        after fitting.
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
        0 is silent, 1 shows progress bars while encoding.

    Attributes
    ----------
    task_columns_ : ndarray of shape (n_task_columns, dim)
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
    training_digests_ : dict
        SHA-256 digests of what the detector was fitted on: ``"task"`` (the
        task prompts) and ``"world"`` (the world corpus, None when unused).
    offset_ : float
        Log-odds of ``threshold``; ``decision_function = score_samples -
        offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    CSPDetector : NegLabel with the conjugated semantic pool.
    skhftt.corpora.neglabel_pool : The default candidates.

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
    >>> from skhftt.detectors import NegLabelDetector
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
        pool = {pos: (prompts, ["{}"]) for pos, prompts in neglabel_pool().items()}
        return _embed_pool(data.embedder, pool, what="NegLabel pool prompts"), "WordNet pool"


class CSPDetector(_MinedNegativesDetector):
    """CSP: NegLabel's score against a conjugated semantic pool of negative labels.

    **Pool** (Chen et al., NeurIPS 2024, and their reference code;
    :func:`skhftt.corpora.csp_pool`), from the WordNet 3.0 head lemmas of
    :func:`skhftt.corpora.wordnet_lemmas`:

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
    NegLabel's: ``score_samples`` is the log-odds of ``S``, the task's share
    of the softmax, and :meth:`predict_proba` gives ``[1 - S, S]``.

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
        Templates of the noun candidates; None is
        :data:`skhftt.corpora.CSP_NOUN_TEMPLATES`.
    adjective_templates : list of str, default=None
        Templates of the conjugated adjectives; None is
        :data:`skhftt.corpora.CSP_ADJECTIVE_TEMPLATES`.
    superclasses : list of str, default=None
        Words the adjectives are joined to; None is
        :data:`skhftt.corpora.CSP_SUPERCLASSES` (environment, space, object,
        scene, place, item, area, view, thing, pattern, structure,
        landscape, vista, creature).
    exclude_categories : list of str, default=None
        WordNet lexicographer categories left out; None is
        :data:`skhftt.corpora.CSP_EXCLUDED_CATEGORIES`, ``[]`` keeps every
        category.
    n_groups : int, default=100
        Number of groups of negatives; 1 disables grouping. 100 is the
        setting of the reference code.
    temperature : float, default=0.01
        Temperature ``T`` of the score.
    templates : list of str, default=None
        Prompt templates with one ``{}`` for the task, as for
        ``HFTTDetector``.
    threshold : float, default=0.5
        Value of ``S`` (a probability, strictly between 0 and 1) from which
        an input is predicted +1 (``S >= threshold``): ``offset_ =
        log(threshold / (1 - threshold))``. :meth:`set_threshold` moves it
        after fitting.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache: ``None`` is the persistent user cache
        (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path that
        directory, ``False`` this process only. Embedding the pool once is
        the slow part of a first fit; later fits reuse it.
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
    negative_parts_ : list of str
        The pool part each negative label comes from (``"noun"``, ``"adj"``
        or a key of ``candidates``), same order.
    negative_indices_ : ndarray of shape (n_negatives,)
        Index of each negative label within its part, same order.
    negative_labels_ : list of str or None
        The text of each negative label (e.g. ``"striped pattern"``), None
        where the candidates were given as embeddings.
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
        task prompts; ``"world"`` is None, CSP uses no world corpus).
    offset_ : float
        Log-odds of ``threshold``; ``decision_function = score_samples -
        offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    NegLabelDetector : The same score on the plain WordNet pool.
    skhftt.corpora.csp_pool : The default candidates.

    Notes
    -----
    The default pool is large: 55,967 nouns times 8 prompts and 11,047
    adjectives times 4 (491,924 prompts), embedded once with one progress
    report (the cache keeps them for later fits). ``noun_templates=["the
    nice {}"]`` and ``adjective_templates=["{}"]`` embed one prompt per
    candidate. Grouping keeps every negative (the reference drops the
    remainder of ``n_negatives / n_groups``).

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
    >>> from skhftt.detectors import CSPDetector
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
        return _embed_pool(data.embedder, pool, what="CSP pool prompts"), "CSP pool"
