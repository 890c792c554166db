"""What every detector shares: inputs, task, embedding, score chain, fitted state.

:class:`BaseTextDetector` turns the accepted forms of ``fit(X, y)`` into
embeddings and task columns (through an
:class:`~skhftt.embedding.embedder.Embedder`), implements the scikit-learn
novelty-detector chain on top of a subclass's ``score_samples``, moves the
operating point without refitting (:meth:`~BaseTextDetector.set_threshold`)
and saves every detector without pickle (:mod:`skhftt.detectors.persistence`).

A subclass declares:

* ``_fitted_attributes``: the names of its fitted attributes, which
  :meth:`~BaseTextDetector._set_fitted` assigns all at once, at the very end
  of a fit that succeeded (so a failed fit leaves the detector as it was) and
  when a saved detector is loaded;
* ``_fitted_spec``: what each entry of its saved fitted state must look
  like (:mod:`skhftt.detectors.fitted`), checked when a file is loaded;
* ``_threshold_kind``: ``"log_odds"`` when ``score_samples`` is the log-odds
  of a probability and ``threshold`` is that probability (then
  ``predict_proba`` exists), ``"score"`` when ``threshold`` is a cut-off on
  ``score_samples`` itself.

Detectors whose score has no natural cut-off take ``threshold="auto"``: the
cut is set at fit from what the detector was fitted on
(:meth:`~BaseTextDetector._offset_at_fit`), as scikit-learn's outlier
detectors set ``offset_`` from ``contamination``.

Every detector records its **job** in the ``unwanted`` parameter:
``"mismatch"`` when the task lists what a dataset should keep (inputs that do
not match are removed), ``"match"`` when the task describes what must go.
The job never changes a score; it tells every consumer (removal rules,
``skhftt filter``, several-concept scoring) which side to remove.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.metrics import roc_curve
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from skhftt._sklearn_compat import HasMethods, Interval, StrOptions, validate_parameters
from skhftt.detectors.fitted import Columns, Digests, Field, Names, Number, Size, Text
from skhftt.detectors.persistence import load_detector, register_detector, save_detector
from skhftt.embedding.embedder import Embedder, EmbeddingSpace
from skhftt.embedding.encoders.registry import PRECOMPUTED
from skhftt.space.blocks import chunk_rows, map_row_blocks
from skhftt.space.head import MIN_TEMPERATURE
from skhftt.space.task import TaskItems, parse_task, task_columns
from skhftt.space.validation import check_embeddings, check_texts, is_string_sequence

__all__ = [
    "AUTO_KEEP",
    "CALIBRATION_SIZE",
    "JOBS",
    "BaseTextDetector",
    "FitData",
    "calibration_rows",
    "check_job",
    "digest",
    "equal_error_cut",
    "keep_cut",
]

JOBS = ("mismatch", "match")
"""The values of ``unwanted``: which side of a detector's task is removed."""

TEMPERATURE = Interval(Real, MIN_TEMPERATURE, None, closed="left")
"""The constraint of every temperature parameter: positive, and no logit overflows."""

CALIBRATION_SIZE = 5000
"""Rows an automatic cut is set on: at most this many world texts or fitted images."""

AUTO_KEEP = 0.95
"""Share of in-distribution rows kept by the cut ``threshold="auto"`` sets from them alone."""


def calibration_rows(n_rows: int, size: int = CALIBRATION_SIZE) -> np.ndarray:
    """Sorted indices of a sample of at most ``size`` of ``n_rows`` rows, seeded with 0.

    The same rows at every fit, whatever ``random_state``: the sample that
    calibrates a score, not a source of randomness.
    """
    return np.sort(np.random.default_rng(0).choice(n_rows, min(size, n_rows), replace=False))


def keep_cut(scores: np.ndarray, keep: float = AUTO_KEEP) -> float:
    """The highest of ``scores`` at or above which at least a share ``keep`` of them lies."""
    return float(np.quantile(scores, 1.0 - keep, method="lower"))


def equal_error_cut(task_scores: np.ndarray, world_scores: np.ndarray) -> float:
    """The cut that best separates task rows from world rows: their equal-error point.

    Among the scores of the rows, the cut at which the share of task rows
    below it is closest to the share of world rows at or above it (+1 is
    ``score >= cut``), by :func:`sklearn.metrics.roc_curve`.
    """
    labels = np.r_[np.ones(len(task_scores)), np.zeros(len(world_scores))]
    fpr, tpr, cuts = roc_curve(labels, np.r_[task_scores, world_scores],
                               drop_intermediate=False)
    # cuts[0] is +inf, above every score; the others are scores.
    return float(cuts[1:][np.argmin(np.abs(fpr[1:] - (1.0 - tpr[1:])))])


def _cosines(embeddings: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Cosine similarities of unit rows to unit columns, float64 (n, C)."""
    return (embeddings.astype(np.float32, copy=False) @ columns.T).astype(np.float64)


def _by_blocks(embeddings: np.ndarray, n_columns: int,
               score_block: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``score_block`` of blocks of rows whose float64 ``(rows, n_columns)`` fit in memory."""
    return map_row_blocks(score_block, embeddings, chunk_rows(8 * n_columns))


def _pu_labels(y: object) -> np.ndarray | None:
    """``y`` as a boolean vector when it is meant as 0/1 PU labels, else None."""
    if is_string_sequence(y) or y is None or isinstance(y, dict):
        return None
    array = np.asarray(y)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "biuf":
        return None
    values = np.unique(array)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(
            f"y is a 1-D array of {array.size} numbers, which is neither 0/1 PU labels (one "
            "per text of X: 0 for a world text, 1 for a task text; y has values "
            f"{values[:5].tolist()}{', ...' if values.size > 5 else ''}) nor task embeddings, "
            "which are a 2-D array (n_task_items, dim): pass one task embedding as "
            "y.reshape(1, -1)."
        )
    return array.astype(bool)


def _fit_predict_unavailable(detector: BaseTextDetector) -> bool:
    raise AttributeError(
        f"{type(detector).__name__} has no fit_predict: it is fitted on texts and "
        "predicts on images, so fit(X).predict(X) has no meaning. Use "
        "fit(texts, in_texts).predict(images)."
    )


def _has_probabilities(detector: BaseTextDetector) -> bool:
    if detector._threshold_kind != "log_odds":
        raise AttributeError(
            f"{type(detector).__name__} has no predict_proba: its scores are not the "
            "log-odds of a probability. Threshold score_samples instead (threshold=, "
            "set_threshold, RemovalRule(method='score'))."
        )
    return True


def digest(data: object) -> str | None:
    """SHA-256 of texts or of an embedding array, as ``"sha256:<hex>"``; None for None.

    Texts are hashed one after another with their lengths, so that
    ``["ab", "c"]`` and ``["a", "bc"]`` differ; arrays by their float32 bytes
    and shape. Recorded in ``training_digests_`` so that a removal can be
    traced to the exact texts a detector was fitted on.
    """
    if data is None:
        return None
    hasher = hashlib.sha256()
    if is_string_sequence(data):
        for text in data:
            encoded = text.encode("utf-8", "surrogatepass")
            hasher.update(len(encoded).to_bytes(8, "little") + encoded)
    else:
        array = np.ascontiguousarray(data, dtype=np.float32)
        hasher.update(repr(array.shape).encode() + array.tobytes())
    return f"sha256:{hasher.hexdigest()}"


def check_job(detector: object, unwanted: object, *, name: str = "unwanted") -> str:
    """The side to remove: the detector's own job, or ``unwanted`` when it agrees.

    Parameters
    ----------
    detector : fitted detector
    unwanted : {"mismatch", "match"} or None
        What the caller asked for; None takes the detector's job.
    name : str, default="unwanted"
        How the caller's interface names the choice, for the error message.

    Raises
    ------
    ValueError
        ``unwanted`` is not a job, or contradicts the detector's job.
    """
    own = getattr(detector, "unwanted", "mismatch")
    if unwanted is None:
        return own
    if unwanted not in JOBS:
        raise ValueError(f"{name} must be 'mismatch' or 'match'; got {unwanted!r}.")
    if unwanted != own:
        raise ValueError(
            f"{name}={unwanted!r} contradicts the job the {type(detector).__name__} was "
            f"made for: unwanted={own!r} ({job_words(own)}). The job is part of the "
            f"detector: to remove the other side, set it with "
            f"detector.set_params(unwanted={unwanted!r}) (its scores do not change), or fit "
            "a detector for that job."
        )
    return own


def job_words(unwanted: str) -> str:
    """The job in words: what a detector with this ``unwanted`` removes."""
    if unwanted == "match":
        return "it removes inputs that match its task"
    return "it removes inputs that do not match its task"


def space_state(space: EmbeddingSpace, digests: Mapping[str, str | None]) -> dict[str, Any]:
    """The fitted attributes that record the embedding space and what was fitted on."""
    return {
        "embedding_dim_": space.dim,
        "encoder_identity_": space.identity,
        "encoder_spec_": space.spec,
        "training_digests_": dict(digests),
    }


@dataclass
class FitData:
    """Embedded training data handed to a subclass's fit.

    Attributes
    ----------
    task_embeddings : ndarray of shape (m, d)
        Every task prompt, unit rows.
    task_columns : ndarray of shape (C, d)
        One unit column per task item.
    task : TaskItems
        Names and prompt-to-column ownership.
    world_embeddings : ndarray of shape (n, d) or None
        The world corpus, unit rows; None when the detector needs none.
    space : EmbeddingSpace
        The space the embeddings live in.
    embedder : Embedder
        What embedded them.
    digests : dict
        ``{"task": ..., "world": ...}``: :func:`digest` of the task prompts
        and of the world corpus as given (None when not used).
    """

    task_embeddings: np.ndarray
    task_columns: np.ndarray
    task: TaskItems
    world_embeddings: np.ndarray | None
    space: EmbeddingSpace
    embedder: Embedder
    digests: dict[str, str | None]


class BaseTextDetector(OutlierMixin, BaseEstimator):
    """Shared machinery of the detectors that score images against a task.

    Subclasses define ``fit`` (ending with one call to :meth:`_set_fitted`),
    ``score_samples`` (higher = more like the task), ``_fitted_attributes``
    and ``_threshold_kind``. Every public subclass is registered for
    :func:`~skhftt.detectors.persistence.load_detector` under its class name.
    """

    _score_description: ClassVar[str] = (
        "the detector's score_samples (higher = more like the task)"
    )

    _parameter_constraints: ClassVar[dict] = {
        "encoder": [str, os.PathLike, HasMethods(["encode_text", "encode_image"])],
        "unwanted": [StrOptions(set(JOBS))],
        "templates": [None, list, tuple],
        "encode_batch_size": [Interval(Integral, 1, None, closed="left")],
        "cache_dir": [None, bool, str, os.PathLike],
        "device": [str],
        "verbose": ["verbose"],
    }
    _threshold_kind: ClassVar[Literal["log_odds", "score"]] = "score"
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        "embedding_dim_", "encoder_identity_", "encoder_spec_", "training_digests_", "offset_",
    )
    _fitted_spec: ClassVar[dict[str, Field]] = {
        "embedding_dim_": Size("dim"),
        "encoder_identity_": Text(optional=True),
        "encoder_spec_": Text(optional=True),
        "training_digests_": Digests(),
        "offset_": Number(),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            register_detector(cls)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Detectors pickled by skhftt 0.2 recorded no job: they were keep detectors.
        state.setdefault("unwanted", "mismatch")
        super().__setstate__(state)

    # ------------------------------------------------------- fitted state

    def _set_fitted(self, attributes: Mapping[str, Any]) -> None:
        """Assign every fitted attribute at once; the last step of a successful fit.

        ``n_features_in_`` is set as well, to the width, when the detector
        was fitted on precomputed embeddings (``encoder_identity_`` is None),
        and removed otherwise.

        Raises
        ------
        ValueError
            ``attributes`` lacks one of ``_fitted_attributes`` or has others.
        """
        expected = set(self._fitted_attributes)
        if set(attributes) != expected:
            missing = sorted(expected - set(attributes))
            extra = sorted(set(attributes) - expected)
            raise ValueError(
                f"the fitted state of a {type(self).__name__} needs {sorted(expected)}; "
                f"missing {missing}, unexpected {extra}."
            )
        for name in self._fitted_attributes:
            value = attributes[name]
            # C order, as a loaded array has: scores then match to the last bit.
            setattr(self, name, np.ascontiguousarray(value) if isinstance(value, np.ndarray)
                    else value)
        if attributes["encoder_identity_"] is None:
            self.n_features_in_ = int(attributes["embedding_dim_"])
        else:
            self.__dict__.pop("n_features_in_", None)

    def _fitted_state(self) -> dict[str, Any]:
        """The fitted attributes as names -> numpy arrays or JSON values (for saving)."""
        return {name: getattr(self, name) for name in self._fitted_attributes}

    def _set_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`_fitted_state` returned (checked against ``_fitted_spec``)."""
        self._set_fitted(state)

    def _check_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Rules between fields and parameters that ``_fitted_spec`` cannot state.

        Called when a file is loaded, after the parameters and every field
        of ``state`` were checked on their own.

        Raises
        ------
        ValueError
            Naming the fields (or parameters) that disagree.
        """

    def _scores_with(self, state: Mapping[str, Any], embeddings: np.ndarray) -> np.ndarray:
        """``score_samples`` of unit embeddings as if fitted to ``state``; ``self`` unchanged.

        For setting ``offset_`` at fit from the scores of the data fitted on,
        before :meth:`_set_fitted` assigns anything.
        """
        probe = copy.copy(self)
        probe._set_fitted({**state, "offset_": 0.0})
        return probe._score_embeddings(embeddings)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the fitted detector without pickle (safetensors + JSON).

        See :func:`skhftt.detectors.persistence.save_detector`.

        Parameters
        ----------
        path : str or path-like
            Destination file, conventionally ending in ``.safetensors``.
        """
        save_detector(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, encoder: object = None) -> BaseTextDetector:
        """Load a detector of this class written by :meth:`save`.

        See :func:`skhftt.detectors.persistence.load_detector`, which loads
        any kind.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.
        encoder : str or Encoder, optional
            Overrides the saved encoder.

        Raises
        ------
        ValueError
            The file holds another kind of detector, or see ``load_detector``.
        """
        detector = load_detector(path, encoder=encoder)
        if not isinstance(detector, cls):
            raise ValueError(
                f"{os.fspath(path)!r} holds a {type(detector).__name__}, not a "
                f"{cls.__name__}: load it with skhftt.detectors.load_detector or "
                f"{type(detector).__name__}.load."
            )
        return detector

    # ---------------------------------------------------------------- fit

    def _embedder(self, *, scoring: bool) -> Embedder:
        """The embedder the parameters describe; when scoring, it knows the fitted spec."""
        return Embedder(
            self.encoder,
            device=self.device,
            batch_size=self.encode_batch_size,
            cache_dir=self.cache_dir,
            # verbose=0 still reports encodes long enough to look like a hang.
            show_progress=True if self.verbose >= 1 else None,
            fitted_spec=self._space().spec if scoring else None,
        )

    def _fit_data(self, X: object, y: object, *, need_world: bool,
                  world_sample: int | None = None) -> FitData:
        """Parse and embed ``fit``'s arguments; sets no attribute.

        With ``world_sample``, only a sample of at most that many world texts
        (:func:`calibration_rows`) is embedded, and ``world_embeddings`` is
        None when there is no world to sample (``encoder="precomputed"``
        and ``X=None``) rather than an error.
        """
        embedder = self._embedder(scoring=False)
        labels = _pu_labels(y)
        if labels is not None:
            world, task = self._split_pu(X, labels)
        elif y is None:
            raise ValueError(
                f"{type(self).__name__}.fit needs the task: pass in_texts as the "
                "second argument (texts, a mapping class -> prompts, or task "
                "embeddings), or 0/1 PU labels y."
            )
        else:
            world, task = X, parse_task(y, templates=self.templates)

        if task.are_texts:
            task_embeddings = embedder.embed_texts(task.prompts, name="in_texts")
        else:
            task_embeddings = check_embeddings(np.concatenate(task.prompts), name="in_texts")
        dim = task_embeddings.shape[1]
        world_embeddings, world_digest = (
            self._embed_world(world, embedder, dim=dim, sample=world_sample)
            if need_world else (None, None))
        embedder.warn_if_text_only(type(self).__name__, stacklevel=4)
        prompts = task.prompts if task.are_texts else task_embeddings
        return FitData(
            task_embeddings=task_embeddings,
            task_columns=task_columns(task_embeddings, task.owners, len(task.names)),
            task=task,
            world_embeddings=world_embeddings,
            space=embedder.space(dim),
            embedder=embedder,
            digests={"task": digest(prompts), "world": world_digest},
        )

    def _split_pu(self, X: object, labels: np.ndarray) -> tuple[object, TaskItems]:
        if X is None:
            raise ValueError("PU labels y need the texts X they label; got X=None.")
        items = X if is_string_sequence(X) else np.asarray(X)
        if len(items) != len(labels):
            raise ValueError(
                f"X has {len(items)} samples but the PU labels y have {len(labels)}."
            )
        for label, what in ((True, "task"), (False, "world")):
            if not (labels == label).any():
                raise ValueError(
                    f"the PU labels y mark no {what} text (no {int(label)}s); "
                    "both 1 (task) and 0 (world) are needed."
                )
        if isinstance(items, np.ndarray):
            return items[~labels], parse_task(items[labels], templates=self.templates)
        task = [text for text, label in zip(items, labels, strict=True) if label]
        world = [text for text, label in zip(items, labels, strict=True) if not label]
        return world, parse_task(task, templates=self.templates)

    @staticmethod
    def _embed_world(world: object, embedder: Embedder, *, dim: int,
                     sample: int | None) -> tuple[np.ndarray | None, str | None]:
        """The world corpus's embeddings (of a sample), and the :func:`digest` of the corpus."""
        if world is None:
            if embedder.load() is None:
                if sample is not None:
                    return None, None
                raise ValueError(
                    "encoder='precomputed' has no bundled world corpus: pass the "
                    "world corpus embeddings as X."
                )
            from skhftt.corpora import load_world_corpus

            world = load_world_corpus()
        if is_string_sequence(world) or (isinstance(world, Sequence) and not world):
            given = check_texts(world, name="the world corpus X")
            texts = given if sample is None else [
                given[i] for i in calibration_rows(len(given), sample)]
            embeddings = embedder.embed_texts(texts, name="the world corpus X")
        else:
            embeddings = given = check_embeddings(world, name="the world corpus X")
            if sample is not None:
                embeddings = given[calibration_rows(len(given), sample)]
        if embeddings.shape[1] != dim:
            raise ValueError(
                f"the world corpus X has embeddings of width {embeddings.shape[1]} "
                f"but the task embeddings have width {dim}."
            )
        return embeddings, digest(given)

    # ---------------------------------------------------------- threshold

    def _offset_of(self, threshold: float) -> float:
        """``offset_`` for a value of ``threshold``, by the detector's threshold kind."""
        if self._threshold_kind == "log_odds":
            return float(np.log(threshold) - np.log1p(-threshold))
        return float(threshold)

    def _offset_at_fit(self, auto: Callable[[], float]) -> float:
        """``offset_`` for the ``threshold`` parameter: ``auto()`` for ``"auto"``."""
        if isinstance(self.threshold, str):
            return float(auto())
        return self._offset_of(self.threshold)

    def set_threshold(self, threshold: float) -> BaseTextDetector:
        """Move the operating point of a fitted detector, without refitting.

        Sets the ``threshold`` parameter and ``offset_`` from it, exactly as
        fitting with that threshold would: for HFTT, NegLabel and CSP
        ``threshold`` is a probability and ``offset_ = log(threshold / (1 -
        threshold))``; for the other detectors it is a cut-off on
        ``score_samples`` and ``offset_ = threshold``. ``clone``, refitting
        and :meth:`save` keep it. ``"auto"`` is not accepted: it is resolved
        from the data at fit, so refit with ``threshold="auto"`` instead.

        Parameters
        ----------
        threshold : float
            The new threshold, in the detector's ``threshold`` units.

        Returns
        -------
        self
            The detector, with ``predict``, ``decision_function`` and removal
            rules that use its threshold moved.

        Raises
        ------
        NotFittedError
            The detector is not fitted.
        ValueError
            ``threshold`` is ``"auto"`` or outside what the parameter accepts.

        Examples
        --------
        >>> import numpy as np
        >>> from skhftt.detectors import KNNDetector
        >>> det = KNNDetector(encoder="precomputed", n_neighbors=1).fit(np.eye(3))
        >>> det.set_threshold(-0.3).predict(np.array([[0.6, 0.8, 0.0], [1.0, 1.0, 1.0]]))
        array([ 1, -1])
        """
        check_is_fitted(self)
        if isinstance(threshold, str):
            raise ValueError(
                f"set_threshold takes a number in {type(self).__name__}'s threshold units; "
                f"got {threshold!r}. 'auto' is set from the data at fit: refit with "
                "threshold='auto'."
            )
        # A default instance with the new threshold: validates it alone, cheaply.
        validate_parameters(type(self)(threshold=threshold))
        offset = self._offset_of(threshold)
        self.threshold = threshold
        self.offset_ = offset
        return self

    # ------------------------------------------------------------ scoring

    def _space(self) -> EmbeddingSpace:
        # Detectors pickled by skhftt 0.1 have no encoder_spec_.
        return EmbeddingSpace(
            self.encoder_identity_, self.embedding_dim_, getattr(self, "encoder_spec_", None)
        )

    def _scoring_encoder(self) -> Any:
        """The encoder to embed inputs with, checked against the fitted space.

        For callers that embed in their own loop (batch scoring,
        explanations); None when precomputed.
        """
        check_is_fitted(self)
        return self._embedder(scoring=True).checked(self._space())

    def embed(self, X: object) -> np.ndarray:
        """Embed inputs into the detector's space.

        Parameters
        ----------
        X : images, texts or embeddings
            Anything :func:`skhftt.embedding.inputs.to_embeddings` accepts: image
            paths, PIL images, arrays, tensors, texts, or a 2-D array of
            precomputed embeddings of width ``embedding_dim_``.

        Returns
        -------
        ndarray of shape (n_samples, dim)
            Unit float32 rows.

        Raises
        ------
        ValueError
            The encoder is not the one the detector was fitted with, or has
            no image tower and ``X`` holds images.
        """
        check_is_fitted(self)
        return self._embedder(scoring=True).embed(X, space=self._space())

    def score_samples(self, X: object) -> np.ndarray:
        """The detector's score: higher means more like the task.

        What the score is depends on the detector (see its class docstring
        and ``_threshold_kind``): HFTT's log-odds ``log P_in - log P_out``,
        NegLabel's log-odds of ``S``, MCM's largest softmax probability, ...

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
        """
        return self._score_embeddings(self.embed(X))

    def _score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """``score_samples`` of unit embeddings of this detector's space, with no encoder.

        What batch scoring and several-concept scoring call once the inputs
        are embedded.
        """
        raise NotImplementedError

    def decision_function(self, X: object) -> np.ndarray:
        """``score_samples(X) - offset_``: 0 or more for the task (+1).

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X: object) -> np.ndarray:
        """+1 for inputs that match the task, -1 for the others.

        An input is +1 when ``decision_function(X) >= 0``: one exactly at the
        threshold matches the task, as in scikit-learn's outlier detectors.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
        """
        return np.where(self.decision_function(X) >= 0, 1, -1)

    @available_if(_has_probabilities)
    def predict_proba(self, X: object) -> np.ndarray:
        """``[1 - p, p]`` per input, ``p`` the probability ``threshold`` applies to.

        Only for detectors whose ``score_samples`` is the log-odds
        ``log p - log (1 - p)`` (HFTT: ``p = P_in``; NegLabel: ``p = S``);
        ``predict`` is +1 exactly where ``p >= threshold``.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0 is ``1 - p`` (outside the task), column 1 ``p``; rows sum
            to one.
        """
        log_odds = self.score_samples(X)
        return np.column_stack([expit(-log_odds), expit(log_odds)])

    @available_if(_fit_predict_unavailable)
    def fit_predict(self, X: object, y: object = None) -> np.ndarray:
        """Not available: these detectors are fitted on texts and applied to images."""
        return self.fit(X, y).predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        precomputed = isinstance(self.encoder, str) and self.encoder == PRECOMPUTED
        tags.input_tags.two_d_array = precomputed
        tags.input_tags.string = not precomputed
        return tags


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


# The fitted task of the detectors that hold one column per task item.
TASK_ATTRIBUTES = ("task_names_", "task_columns_")
TASK_SPEC: dict[str, Field] = {"task_names_": Names("C"), "task_columns_": Columns("C")}
