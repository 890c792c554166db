"""HFTTDetector: a text-trained detector of unwanted images, as an estimator."""

from __future__ import annotations

import os
from collections.abc import Sequence
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted, check_random_state

from skhftt._device import resolve_device
from skhftt._validation import check_embeddings, check_texts, is_string_sequence
from skhftt.encoders.base import Encoder
from skhftt.encoders.cache import encode_texts
from skhftt.head import HFTTHead
from skhftt.inputs import to_embeddings
from skhftt.task import TaskItems, parse_task, task_columns
from skhftt.training import train_trainable_columns

PRECOMPUTED = "precomputed"


def _pu_labels(y: object) -> np.ndarray | None:
    """``y`` as a 0/1 vector when it is meant as PU labels, else None."""
    if is_string_sequence(y) or y is None or isinstance(y, dict):
        return None
    array = np.asarray(y)
    if array.ndim != 1 or array.size == 0 or array.dtype.kind not in "biuf":
        return None
    values = np.unique(array)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(
            "y must be PU labels with values 0 (world text) and 1 (task text); "
            f"got values {values[:10].tolist()}."
        )
    return array.astype(bool)


def _fit_predict_unavailable(detector: HFTTDetector) -> bool:
    raise AttributeError(
        "HFTTDetector has no fit_predict: it is fitted on texts and predicts on "
        "images, so fit(X).predict(X) has no meaning. Use "
        "fit(texts, in_texts).predict(images)."
    )


class HFTTDetector(OutlierMixin, BaseEstimator):
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
        Probability ``P_in`` above which an input is predicted +1. Sets
        ``offset_ = log(threshold / (1 - threshold))``.
    max_iter : int, default=1
        Number of epochs over the world corpus.
    batch_size : int, default=256
        World texts per optimisation step.
    learning_rate_init : float, default=1.0
        SGD learning rate.
    momentum : float, default=0.9
        SGD momentum.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str or path-like, default=None
        Directory of an on-disk text-embedding cache shared between
        processes (e.g. ``GridSearchCV(n_jobs=2)``); ``None`` caches in
        process only.
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
    task_columns_ : ndarray of shape (n_task_columns, dim)
        Fixed task columns W (unit rows).
    trainable_columns_ : ndarray of shape (n_embeddings, dim)
        Trained columns V (unit rows).
    task_names_ : list of str
        Name of each task column (the text or the class name).
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity (model and revision) of the encoder the detector was fitted
        with; ``None`` for ``encoder="precomputed"``. Scoring with another
        encoder is refused.
    offset_ : float
        Offset used to define the decision function from the raw scores:
        ``decision_function = score_samples - offset_``. It is the log-odds
        of ``threshold``, so that ``decision_function > 0`` exactly when
        ``P_in > threshold``.
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
    .. [1] S. Lee, B. Kim, J. Kim, S. Yun, "Textual Training for the
       Hassle-Free Removal of Unwanted Visual Data", NeurIPS 2024.
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

    _parameter_constraints: ClassVar[dict] = {
        "encoder": [str, HasMethods(["encode_text", "encode_image"])],
        "n_embeddings": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "task_weight": [Interval(Real, 0, 1, closed="neither")],
        "templates": [None, list, tuple],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "encode_batch_size": [Interval(Integral, 1, None, closed="left")],
        "cache_dir": [None, str, os.PathLike],
        "device": [str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = "openai/clip-vit-base-patch16",
        n_embeddings: int = 10,
        temperature: float = 0.01,
        gamma: float = 1.0,
        task_weight: float = 0.5,
        templates: Sequence[str] | None = None,
        threshold: float = 0.5,
        max_iter: int = 1,
        batch_size: int = 256,
        learning_rate_init: float = 1.0,
        momentum: float = 0.9,
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
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

    # ------------------------------------------------------------------ fit

    @_fit_context(prefer_skip_nested_validation=True)
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
        encoder = self._resolve_encoder()
        labels = _pu_labels(y)
        if labels is not None:
            world, task = self._split_pu(X, labels)
        elif y is None:
            raise ValueError(
                "HFTTDetector.fit needs the task: pass in_texts as the second "
                "argument (texts, a mapping class -> prompts, or task embeddings), "
                "or 0/1 PU labels y."
            )
        else:
            world, task = X, parse_task(y, templates=self.templates)

        task_embeddings = self._embed_task(task, encoder)
        world_embeddings = self._embed_world(world, encoder, dim=task_embeddings.shape[1])
        columns = task_columns(task_embeddings, task.owners, len(task.names))

        device = resolve_device(self.device)
        result = train_trainable_columns(
            task_embeddings,
            world_embeddings,
            columns,
            n_embeddings=self.n_embeddings,
            temperature=self.temperature,
            gamma=self.gamma,
            task_weight=self.task_weight,
            max_iter=self.max_iter,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate_init,
            momentum=self.momentum,
            device=device,
            random_state=check_random_state(self.random_state),
            verbose=self.verbose,
        )
        self.head_ = HFTTHead(columns, result.trainable_columns, float(self.temperature))
        self.task_names_ = list(task.names)
        self.embedding_dim_ = int(columns.shape[1])
        self.encoder_identity_ = None if encoder is None else str(encoder.identity)
        self.offset_ = float(np.log(self.threshold) - np.log1p(-self.threshold))
        self.n_iter_ = int(self.max_iter)
        self.loss_curve_ = result.loss_curve
        self.history_ = result.history
        self.device_ = str(device)
        if encoder is None:
            self.n_features_in_ = self.embedding_dim_
        return self

    def _resolve_encoder(self) -> Encoder | None:
        if not isinstance(self.encoder, str):
            return self.encoder
        if self.encoder == PRECOMPUTED:
            return None
        from skhftt.encoders import resolve_encoder

        return resolve_encoder(self.encoder, device=self.device)

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

    def _encode_fit_texts(self, texts: list[str], encoder: Encoder | None, name: str):
        if encoder is None:
            raise TypeError(
                f"{name} contains texts, but encoder='precomputed' expects embeddings; "
                "pass arrays of embeddings or choose a model as encoder."
            )
        embeddings = encode_texts(
            encoder,
            texts,
            batch_size=self.encode_batch_size,
            show_progress=self.verbose >= 1,
            cache_dir=self.cache_dir,
        )
        return check_embeddings(embeddings, name=f"embeddings of {name}")

    def _embed_task(self, task: TaskItems, encoder: Encoder | None) -> np.ndarray:
        if task.are_texts:
            return self._encode_fit_texts(task.prompts, encoder, "in_texts")
        return check_embeddings(np.concatenate(task.prompts), name="in_texts")

    def _embed_world(self, world: object, encoder: Encoder | None, *, dim: int) -> np.ndarray:
        if world is None:
            if encoder is None:
                raise ValueError(
                    "encoder='precomputed' has no bundled world corpus: pass the "
                    "world corpus embeddings as X."
                )
            from skhftt.corpora import load_world_corpus

            world = load_world_corpus()
        if is_string_sequence(world) or (isinstance(world, Sequence) and not world):
            texts = check_texts(world, name="the world corpus X")
            embeddings = self._encode_fit_texts(texts, encoder, "the world corpus X")
        else:
            embeddings = check_embeddings(world, name="the world corpus X")
        if embeddings.shape[1] != dim:
            raise ValueError(
                f"the world corpus X has embeddings of width {embeddings.shape[1]} "
                f"but the task embeddings have width {dim}."
            )
        return embeddings

    # -------------------------------------------------------------- scoring

    def _scoring_encoder(self) -> Encoder | None:
        encoder = self._resolve_encoder()
        if encoder is None:
            return None
        identity = str(encoder.identity)
        if self.encoder_identity_ is not None and identity != self.encoder_identity_:
            raise ValueError(
                f"this detector was fitted in the space of {self.encoder_identity_!r} "
                f"but its encoder is now {identity!r}; embeddings of different models "
                "are not comparable."
            )
        if int(encoder.dim) != self.embedding_dim_:
            raise ValueError(
                f"encoder {identity!r} embeds into width {encoder.dim}, but the "
                f"detector works in width {self.embedding_dim_}."
            )
        return encoder

    def embed(self, X: object) -> np.ndarray:
        """Embed inputs into the detector's space.

        Parameters
        ----------
        X : images, texts or embeddings
            Anything :func:`skhftt.inputs.to_embeddings` accepts: image
            paths, PIL images, arrays, tensors, texts, or a 2-D array of
            precomputed embeddings of width ``embedding_dim_``.

        Returns
        -------
        ndarray of shape (n_samples, embedding_dim_)
            Unit float32 rows.
        """
        check_is_fitted(self)
        return to_embeddings(
            X,
            encoder=self._scoring_encoder(),
            dim=self.embedding_dim_,
            batch_size=self.encode_batch_size,
            show_progress=self.verbose >= 1,
            cache_dir=self.cache_dir,
        )

    def score_samples(self, X: object) -> np.ndarray:
        """Log-odds ``log P_in - log P_out``: higher means more like the task.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Finite float64 log-odds; they do not saturate where ``P_in``
            rounds to 1.
        """
        embeddings = self.embed(X)
        return self.head_.log_odds(embeddings)

    def decision_function(self, X: object) -> np.ndarray:
        """``score_samples(X) - offset_``: positive for the task (+1).

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

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        labels : ndarray of shape (n_samples,), int
        """
        return np.where(self.decision_function(X) > 0, 1, -1)

    def predict_proba(self, X: object) -> np.ndarray:
        """``[P_out, P_in]`` per input; rows sum to one.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            Column 0 is ``P_out`` (outside the task), column 1 ``P_in``.
        """
        log_odds = self.score_samples(X)
        return np.column_stack([expit(-log_odds), expit(log_odds)])

    # ---------------------------------------------------------------- views

    @property
    def task_columns_(self) -> np.ndarray:
        """Fixed task columns W, ``(n_task_columns, dim)``."""
        return self.head_.task_columns

    @property
    def trainable_columns_(self) -> np.ndarray:
        """Trained columns V, ``(n_embeddings, dim)``."""
        return self.head_.trainable_columns

    @available_if(_fit_predict_unavailable)
    def fit_predict(self, X: object, y: object = None) -> np.ndarray:
        """Not available: HFTT is fitted on texts and applied to images."""
        return self.fit(X, y).predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        precomputed = isinstance(self.encoder, str) and self.encoder == PRECOMPUTED
        tags.input_tags.two_d_array = precomputed
        tags.input_tags.string = not precomputed
        return tags

    # ---------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the fitted detector without pickle (JSON + arrays).

        See :func:`skhftt.persistence.save_detector`.
        """
        from skhftt.persistence import save_detector

        save_detector(self, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], *, encoder: str | Encoder | None = None
    ) -> HFTTDetector:
        """Load a detector written by :meth:`save`.

        See :func:`skhftt.persistence.load_detector`.
        """
        from skhftt.persistence import load_detector

        return load_detector(path, encoder=encoder)
