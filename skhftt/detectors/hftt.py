"""HFTTDetector: a text-trained detector of unwanted images, as an estimator."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from sklearn.utils.validation import check_random_state

from skhftt._sklearn_compat import Interval, StrOptions, fit_context
from skhftt.detectors.base import TEMPERATURE, BaseTextDetector, space_state
from skhftt.detectors.fitted import Columns, Count, Names, Number, Numbers, Records, Text
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.space.head import MIN_TEMPERATURE, HFTTHead
from skhftt.space.training import train_trainable_columns

__all__ = ["HFTTDetector"]

# What a saved head holds, as "head_.<part>" entries of the fitted state.
_HEAD_PARTS = ("task_columns", "trainable_columns", "temperature")


class HFTTDetector(BaseTextDetector):
    """Detect images that match (or do not match) a task described in text.

    HFTT learns, from texts alone, ``n_embeddings`` extra columns that sit
    beside the task columns in a joint text-image embedding space (CLIP). An
    image whose softmax mass falls on the task columns matches the task
    (+1); one whose mass falls on the learned columns is outside it (-1).

    The conventions are scikit-learn's novelty detectors (like
    :class:`~sklearn.ensemble.IsolationForest`): higher scores mean "more
    like the task", +1 is an inlier. Which side is unwanted depends on the
    job:

    * **Out-of-distribution removal** (task texts = the classes you want to
      keep, e.g. ImageNet): the unwanted images are the -1s.
    * **Hateful / unwanted content removal** (task texts = descriptions of
      the unwanted content): the unwanted images are the +1s.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model: a model name or local directory, a spec
        such as ``"open_clip:ViT-B-16/openai"``, an object with
        ``encode_text``/``encode_image``, or ``"precomputed"``, in which case
        every input (world texts, task texts, images) is already an
        embedding and no model is ever loaded.
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side of the task is removed. ``"mismatch"``: the
        task lists what a dataset should keep (e.g. ImageNet's classes),
        and inputs that do not match it are removed. ``"match"``: the task
        describes what must go (e.g. hateful symbols), and inputs that
        match it are removed. Scores do not depend on it; removal rules,
        ``skhftt filter`` and several-concept scoring read it from here.
    n_embeddings : int, default=10
        Number K of trainable columns.
    temperature : float, default=0.01
        Softmax temperature T of the head.
    gamma : float, default=1.0
        Focal exponent of the world-text weights; 0 weighs all world texts
        equally, larger values focus on world texts that still look like the
        task (the world corpus is unlabelled and contains task-like texts).
    task_weight : float, default=0.5
        Weight lambda of the task term of the loss; the world term gets
        ``1 - task_weight``. 0.5 is the weighting of the reference code.
    templates : list of str, default=None
        Prompt templates with one ``{}`` placeholder. When given, every task
        text is a class name, expanded into one prompt per template, and the
        class's column is the re-normalised mean of its prompt embeddings.
    threshold : float, default=0.5
        Probability ``P_in`` (strictly between 0 and 1) from which an input
        is predicted +1 (``P_in >= threshold``). Sets ``offset_ =
        log(threshold / (1 - threshold))``; :meth:`set_threshold` moves it
        after fitting.
    max_iter : int, default=1
        Number of epochs over the world corpus.
    batch_size : int, default=256
        World texts per optimisation step.
    learning_rate_init : float, default=1.0
        SGD learning rate of the first epoch.
    learning_rate : {"constant", "cosine"}, default="cosine"
        Learning-rate schedule over the ``max_iter`` epochs. ``"cosine"``
        anneals it from ``learning_rate_init`` towards 0, stepped once per
        epoch as in the reference code (no effect at one epoch);
        ``"constant"`` keeps ``learning_rate_init``.
    momentum : float, default=0.9
        SGD momentum.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache, shared between processes (e.g.
        ``GridSearchCV(n_jobs=2)``) and runs: ``None`` is the persistent
        user cache (the directory ``SKHFTT_CACHE_DIR`` names, else
        ``~/.cache/skhftt``), a path is that directory, ``False`` caches in
        this process only.
    device : str, default="auto"
        Where training and encoding run: ``"auto"`` (CUDA, then MPS, then
        CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial trainable columns and the shuffling of the world
        corpus. Pass an int for reproducible fits.
    verbose : int, default=0
        0 is silent, 1 shows progress bars, 2 also prints the loss per epoch.

    Attributes
    ----------
    head_ : HFTTHead
        The fitted head: task columns, trained columns and temperature.
        Numpy arrays only; it scores embeddings without torch.
        ``task_columns_`` and ``trainable_columns_`` are views of its
        arrays.
    task_names_ : list of str
        Name of each task column (the text or the class name).
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity (model and revision) of the encoder the detector was fitted
        with; ``None`` for ``encoder="precomputed"``. Scoring with another
        encoder is refused.
    encoder_spec_ : str or None
        The ``encoder`` spec as fitted, with a local model directory made
        absolute, so that the detector finds its model from any working
        directory (see :func:`skhftt.embedding.embedder.spec_kind`); None
        for an encoder object.
    training_digests_ : dict
        SHA-256 digests of what the detector was fitted on: ``"task"`` (the
        task prompts) and ``"world"`` (the world corpus).
    offset_ : float
        Offset used to define the decision function from the raw scores:
        ``decision_function = score_samples - offset_``. It is the log-odds
        of ``threshold``, so that ``decision_function >= 0`` exactly when
        ``P_in >= threshold``.
    n_iter_ : int
        Number of epochs run.
    loss_curve_ : list of float
        Mean loss of each epoch.
    history_ : list of dict
        Per-epoch records: epoch, loss, n_batches, duration_s.
    device_ : str
        Device the training ran on.
    n_features_in_ : int
        Width of the embeddings seen in :meth:`fit`; only set when
        ``encoder="precomputed"``.

    See Also
    --------
    sklearn.ensemble.IsolationForest : The estimator whose conventions these are.

    Notes
    -----
    Training is cheap: the encoder is frozen, each text is embedded once,
    and the logits of every training text against the fixed task columns
    are computed once; a step only multiplies by the K trainable columns.

    Scores are the log-odds ``log P_in - log P_out``, computed in log space.
    At T = 0.01 ``P_in`` rounds to exactly 1.0 for inputs that clearly match
    the task, so ranking by probabilities would create ties; the log-odds
    never saturate.

    With PU labels, use a stratified splitter in model selection
    (``cv=StratifiedKFold(shuffle=True)``): scikit-learn stratifies by
    default only for classifiers, and a fold without task texts cannot be
    fitted.

    References
    ----------
    .. [1] S. Lee, J. Mok, S. Park, Y. Shin, D. Jung, S. Yoon, "Textual
       Training for the Hassle-Free Removal of Unwanted Visual Data",
       NeurIPS 2024.
    .. [2] T.-Y. Lin, P. Goyal, R. Girshick, K. He, P. Dollár, "Focal Loss
       for Dense Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt import HFTTDetector
    >>> rng = np.random.default_rng(0)
    >>> task = rng.normal(size=(5, 32))             # task text embeddings
    >>> world = rng.normal(size=(500, 32))          # world corpus embeddings
    >>> det = HFTTDetector(encoder="precomputed", random_state=0).fit(world, task)
    >>> det.predict(np.vstack([task[:2], -task[:2]]))
    array([ 1,  1, -1, -1])
    """

    _score_description: ClassVar[str] = (
        "HFTT log-odds log P_in - log P_out (higher = more like the task)"
    )

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "n_embeddings": [Interval(Integral, 1, None, closed="left")],
        "temperature": [TEMPERATURE],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "task_weight": [Interval(Real, 0, 1, closed="neither")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "learning_rate": [StrOptions({"constant", "cosine"})],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    }
    _threshold_kind: ClassVar[Literal["log_odds", "score"]] = "log_odds"
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes,
        "task_names_", "head_", "n_iter_", "loss_curve_", "history_", "device_",
    )
    # The saved state: the head's parts are saved as "head_.<part>".
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec,
        "task_names_": Names("C"),
        "head_.task_columns": Columns("C"),
        "head_.trainable_columns": Columns("K"),
        "head_.temperature": Number(low=MIN_TEMPERATURE),
        "n_iter_": Count(),
        "loss_curve_": Numbers(),
        "history_": Records(),
        "device_": Text(),
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        n_embeddings: int = 10,
        temperature: float = 0.01,
        gamma: float = 1.0,
        task_weight: float = 0.5,
        templates: Sequence[str] | None = None,
        threshold: float = 0.5,
        max_iter: int = 1,
        batch_size: int = 256,
        learning_rate_init: float = 1.0,
        learning_rate: str = "cosine",
        momentum: float = 0.9,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.n_embeddings = n_embeddings
        self.temperature = temperature
        self.gamma = gamma
        self.task_weight = task_weight
        self.templates = templates
        self.threshold = threshold
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit

    @fit_context
    def fit(self, X: object, y: object = None) -> HFTTDetector:
        """Learn the trainable columns from texts (or text embeddings).

        Two forms:

        * ``fit(texts, in_texts)``: ``texts`` is the world corpus (``None``
          = the bundled default corpus) and ``in_texts`` the task: a list of
          texts (one column each; class names when ``templates`` is set), a
          mapping class -> prompts (one averaged column per class), or, for
          ``encoder="precomputed"``, a 2-D array of task embeddings or a
          mapping class -> 2-D array of prompt embeddings.
        * ``fit(X, y)`` with PU labels: ``X`` a sequence of texts (or an
          array of embeddings), ``y`` a 0/1 vector of the same length; 1 marks
          a task text, 0 a world text. This form works with ``Pipeline``,
          ``cross_val_score`` and ``GridSearchCV``.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus, or every text in the PU form.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) or 0/1 PU labels.

        Returns
        -------
        self : HFTTDetector
            The fitted detector.
        """
        device = self._embedder(scoring=False).torch_device()
        data = self._fit_data(X, y, need_world=True)
        columns = data.task_columns
        result = train_trainable_columns(
            data.task_embeddings,
            data.world_embeddings,
            columns,
            n_embeddings=self.n_embeddings,
            temperature=self.temperature,
            gamma=self.gamma,
            task_weight=self.task_weight,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate_init,
            learning_rate_schedule=self.learning_rate,
            momentum=self.momentum,
            device=device,
            random_state=check_random_state(self.random_state),
            verbose=self.verbose,
        )
        if not np.isfinite(result.trainable_columns).all():
            raise ValueError(
                "training diverged: the trainable columns are not finite; lower "
                f"learning_rate_init (got {self.learning_rate_init!r})."
            )
        self._set_fitted({
            **space_state(data.space, data.digests),
            "task_names_": list(data.task.names),
            "head_": HFTTHead(columns, result.trainable_columns, float(self.temperature)),
            "offset_": self._offset_of(self.threshold),
            "n_iter_": int(self.max_iter),
            "loss_curve_": list(result.loss_curve),
            "history_": list(result.history),
            "device_": str(device),
        })
        return self

    def _score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Log-odds ``log P_in - log P_out`` of unit embeddings; they do not saturate."""
        return self.head_.log_odds(embeddings)

    # ---------------------------------------------------------------- views

    @property
    def task_columns_(self) -> np.ndarray:
        """Fixed task columns W, ``(n_task_columns, dim)``."""
        return self.head_.task_columns

    @property
    def trainable_columns_(self) -> np.ndarray:
        """Trained columns V, ``(n_embeddings, dim)``."""
        return self.head_.trainable_columns

    # ---------------------------------------------------------- persistence

    def _fitted_state(self) -> dict[str, Any]:
        state = super()._fitted_state()
        head = state.pop("head_")
        return {**state, **{f"head_.{part}": getattr(head, part) for part in _HEAD_PARTS}}

    def _set_fitted_state(self, state: Mapping[str, Any]) -> None:
        attributes = dict(state)
        task, trainable, temperature = (attributes.pop(f"head_.{part}") for part in _HEAD_PARTS)
        self._set_fitted({**attributes, "head_": HFTTHead(task, trainable, float(temperature))})
