"""HFTT and MCM in one detector: two scores, each standardised on the world texts, blended."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np

from skhftt._sklearn_compat import Interval, fit_context
from skhftt.detectors.base import (
    TASK_ATTRIBUTES,
    TASK_SPEC,
    TEMPERATURE,
    BaseTextDetector,
    _by_blocks,
    _cosines,
    calibration_rows,
    space_state,
)
from skhftt.detectors.fitted import Columns, Numbers
from skhftt.detectors.hftt import HFTTDetector
from skhftt.detectors.similarity import mcm_scores
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.space.head import HFTTHead

__all__ = ["HFTTEnsembleDetector"]

# Parameters handed to the HFTT member as they are.
_HFTT_PARAMETERS = (
    "n_embeddings", "temperature", "gamma", "task_weight", "max_iter", "batch_size",
    "learning_rate_init", "momentum", "device", "random_state", "verbose",
)


class HFTTEnsembleDetector(BaseTextDetector):
    """HFTT's log-odds blended with MCM's zero-shot score, calibrated on the world texts.

    Two detectors share the task columns W: :class:`~skhftt.HFTTDetector`
    (trained columns, strongest far from the task) and MCM (the largest
    softmax probability of a task column, at ``mcm_temperature``; strongest
    near the task, where HFTT's columns also absorb task-like texts). Their
    scores live on unrelated scales, so each is standardised by its median
    and inter-quartile range over a sample of the world corpus -- texts
    only, no image -- and blended::

        score(x) = (1 - w) * (h(x) - med_h) / iqr_h + w * (m(x) - med_m) / iqr_m

    with ``w = mcm_weight``. ``mcm_weight=0`` is HFTT alone (same ranking),
    ``1`` MCM alone. A task of one column (a single concept, say) gives MCM
    nothing to compare: its softmax is always 1, so the blend is HFTT alone.
    Choose ``mcm_weight`` and ``temperature`` with
    :func:`skhftt.evaluation.select_detector`, from texts.

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
    mcm_weight : float, default=0.5
        Weight ``w`` of the MCM score, in [0, 1].
    mcm_temperature : float, default=1.0
        MCM's temperature on cosine similarities (its paper's setting).
    calibration_size : int, default=5000
        World texts (a sample seeded with 0, the same at every fit) that
        give the medians and inter-quartile ranges.
    n_embeddings : int, default=10
        HFTT's number of trainable columns.
    temperature : float, default=0.01
        HFTT's softmax temperature.
    gamma : float, default=1.0
        HFTT's focal exponent.
    task_weight : float, default=0.5
        Weight of HFTT's task term.
    templates : list of str, default=None
        Prompt templates with one ``{}`` for the task.
    threshold : float, default=0.0
        Cut-off on ``score_samples``, the blended standardised score (in
        inter-quartile ranges of the world texts' scores): an input is +1
        when its score is at least ``threshold`` (``offset_ = threshold``).
        The default 0 is a median world text's standing on both scores, so
        about half of the world texts are +1; take a cut-off from labelled
        in-distribution images, or from a removal rule, and apply it with
        :meth:`set_threshold`.
    max_iter : int, default=1
        HFTT's epochs over the world corpus.
    batch_size : int, default=256
        HFTT's world texts per optimisation step.
    learning_rate_init : float, default=1.0
        HFTT's SGD learning rate.
    momentum : float, default=0.9
        HFTT's SGD momentum.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache, as for HFTT.
    device : str, default="auto"
        Where training and encoding run.
    random_state : int, RandomState instance or None, default=None
        Seeds HFTT's initial columns and shuffling.
    verbose : int, default=0
        0 is silent, 1 shows progress bars, 2 also HFTT's loss per epoch.

    Attributes
    ----------
    task_columns_ : ndarray of shape (n_task_columns, dim)
        Task columns W.
    trainable_columns_ : ndarray of shape (n_embeddings, dim)
        HFTT's trained columns V.
    calibration_ : list of float
        ``[med_h, iqr_h, med_m, iqr_m]``: the standardisation of the two
        scores, from the world texts.
    loss_curve_ : list of float
        HFTT's mean loss of each epoch.
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
        task prompts) and ``"world"`` (the world corpus).
    offset_ : float
        ``threshold``; ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    skhftt.HFTTDetector, skhftt.detectors.MCMDetector : The two members.
    skhftt.evaluation.select_detector : Chooses ``mcm_weight`` from texts.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import HFTTEnsembleDetector
    >>> rng = np.random.default_rng(0)
    >>> task, world = rng.normal(size=(5, 32)), rng.normal(size=(500, 32))
    >>> det = HFTTEnsembleDetector(encoder="precomputed", random_state=0).fit(world, task)
    >>> world_scores = det.score_samples(world)
    >>> bool((det.score_samples(task) > np.percentile(world_scores, 95)).all())
    True
    """

    _score_description: ClassVar[str] = (
        "blend of HFTT log-odds and MCM score, each standardised on world texts "
        "(0 = a median world text)"
    )

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "mcm_weight": [Interval(Real, 0, 1, closed="both")],
        "mcm_temperature": [TEMPERATURE],
        "calibration_size": [Interval(Integral, 2, None, closed="left")],
        "threshold": [Interval(Real, None, None, closed="neither")],
        **{name: HFTTDetector._parameter_constraints[name]
           for name in _HFTT_PARAMETERS if name in HFTTDetector._parameter_constraints},
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, *TASK_ATTRIBUTES,
        "trainable_columns_", "calibration_", "loss_curve_",
    )
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec,
        **TASK_SPEC,
        "trainable_columns_": Columns("K"),
        "calibration_": Numbers(length=4),
        "loss_curve_": Numbers(),
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        mcm_weight: float = 0.5,
        mcm_temperature: float = 1.0,
        calibration_size: int = 5000,
        n_embeddings: int = 10,
        temperature: float = 0.01,
        gamma: float = 1.0,
        task_weight: float = 0.5,
        templates: Sequence[str] | None = None,
        threshold: float = 0.0,
        max_iter: int = 1,
        batch_size: int = 256,
        learning_rate_init: float = 1.0,
        momentum: float = 0.9,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.mcm_weight = mcm_weight
        self.mcm_temperature = mcm_temperature
        self.calibration_size = calibration_size
        self.n_embeddings = n_embeddings
        self.temperature = temperature
        self.gamma = gamma
        self.task_weight = task_weight
        self.templates = templates
        self.threshold = threshold
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @fit_context
    def fit(self, X: object, y: object = None) -> HFTTEnsembleDetector:
        """Train HFTT's columns, then calibrate both scores on the world texts.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus (``None`` = the bundled default), or every text in
            the PU form.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) or 0/1 PU labels, as for HFTT.

        Returns
        -------
        self : HFTTEnsembleDetector
            The fitted detector.
        """
        data = self._fit_data(X, y, need_world=True)
        # The HFTT member trains on the embeddings already made, one column per task item.
        items = {str(i): data.task_embeddings[data.task.owners == i]
                 for i in range(len(data.task.names))}
        member = HFTTDetector(encoder="precomputed",
                              **{name: getattr(self, name) for name in _HFTT_PARAMETERS})
        member.fit(data.world_embeddings, items)
        world = data.world_embeddings
        scores = self._member_scores(world[calibration_rows(len(world), self.calibration_size)],
                                     data.task_columns, member.trainable_columns_)
        quartiles = np.percentile(scores, [25, 50, 75], axis=0)
        spread = quartiles[2] - quartiles[0]
        if not (spread > 0).any():
            raise ValueError(
                "the world corpus gives no spread of scores to calibrate on (its "
                "inter-quartile range is 0); give a larger, more varied world corpus."
            )
        # A member that is constant over the world (MCM of one task column, whose
        # softmax is always 1) adds nothing; unit spread keeps its term at 0.
        spread = np.where(spread > 0, spread, 1.0)
        self._set_fitted({
            **space_state(data.space, data.digests),
            "task_names_": list(data.task.names),
            "task_columns_": data.task_columns,
            "trainable_columns_": member.trainable_columns_,
            "calibration_": np.column_stack([quartiles[1], spread]).ravel().tolist(),
            "loss_curve_": list(member.loss_curve_),
            "offset_": self._offset_of(self.threshold),
        })
        return self

    def _check_fitted_state(self, state: Mapping[str, Any]) -> None:
        spreads = state["calibration_"][1::2]
        if min(spreads) <= 0:
            raise ValueError(f"calibration_ is {state['calibration_']}; its inter-quartile "
                             "ranges (second and fourth entries) must be above 0.")

    def _member_scores(self, embeddings: np.ndarray, task_columns: np.ndarray,
                       trainable_columns: np.ndarray) -> np.ndarray:
        """``(n, 2)``: HFTT's log-odds and MCM's score of each row."""
        head = HFTTHead(task_columns, trainable_columns, float(self.temperature))

        def block(rows: np.ndarray) -> np.ndarray:
            return mcm_scores(_cosines(rows, task_columns) / self.mcm_temperature)

        mcm = _by_blocks(embeddings, task_columns.shape[0], block)
        return np.column_stack([head.log_odds(embeddings), mcm])

    def _score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """The blended standardised score of unit embeddings (higher = more like the task)."""
        scores = self._member_scores(embeddings, self.task_columns_, self.trainable_columns_)
        centre, spread = np.reshape(self.calibration_, (2, 2)).T
        standard = (scores - centre) / spread
        return standard @ np.array([1.0 - self.mcm_weight, self.mcm_weight])
