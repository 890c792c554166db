"""HFTT whose out-columns are mined negative labels *and* trained columns.

:class:`NegLabelHFTTDetector` puts NegLabel's (or CSP's) negative labels
beside HFTT's trainable columns, in one softmax head, and trains the
trainable columns with the HFTT loss while the negatives are present.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from numbers import Integral, Real
from typing import ClassVar, Literal

import numpy as np
import torch
from sklearn.utils.validation import check_random_state

from skhftt._sklearn_compat import Interval, StrOptions, fit_context
from skhftt.detectors.base import BaseTextDetector, space_state
from skhftt.detectors.zero_shot import (
    CSPDetector,
    NegLabelDetector,
    _by_blocks,
    _cosines,
    grouped_log_odds,
)
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.space.objective import focal_weights, log_p_in_out, normalize_rows, task_logsumexp
from skhftt.space.training import train_trainable_columns

__all__ = ["INITS", "NegLabelHFTTDetector", "train_beside_negatives"]

INITS = ("world", "hftt", "normal")


def train_beside_negatives(
    task_embeddings: np.ndarray,
    world_embeddings: np.ndarray,
    task_columns: np.ndarray,
    negative_columns: np.ndarray,
    initial_columns: np.ndarray,
    *,
    temperature: float,
    gamma: float,
    task_weight: float,
    max_iter: int,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    device: torch.device,
    random_state: np.random.RandomState,
) -> tuple[np.ndarray, list[float]]:
    """Train columns V with the HFTT loss in the head ``[W | N, V]``.

    The out-side of the softmax is the fixed negatives N and the trainable
    columns V; ``P_out`` is their total share. N is fixed, so each text's
    ``logsumexp`` against N is a constant, computed once and entered as one
    extra logit beside V's: the step costs what an HFTT step costs.

    Returns
    -------
    columns : ndarray of shape (K, d)
        Trained unit rows, float32.
    loss_curve : list of float
        Mean minibatch loss of each epoch.
    """
    trainable = torch.nn.Parameter(torch.tensor(initial_columns, dtype=torch.float32,
                                                device=device))
    optimizer = torch.optim.SGD([trainable], lr=learning_rate, momentum=momentum)
    with torch.no_grad():
        # Copies: the cached embeddings are read-only arrays.
        task, world, columns, negatives = (
            torch.tensor(array, dtype=torch.float32, device=device)
            for array in (task_embeddings, world_embeddings, task_columns, negative_columns)
        )
        task_lse = task_logsumexp(task, columns, temperature)
        world_lse = task_logsumexp(world, columns, temperature)
        task_neg = task_logsumexp(task, negatives, temperature)[:, None]
        world_neg = task_logsumexp(world, negatives, temperature)[:, None]
    curve = []
    for _ in range(max_iter):
        order = torch.from_numpy(random_state.permutation(world.shape[0])).to(device)
        total, n_batches = 0.0, 0
        for batch in order.split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            unit = normalize_rows(trainable)
            task_log_p_in, _ = log_p_in_out(
                task_lse, torch.cat([task @ unit.T / temperature, task_neg], dim=1))
            world_log_p_in, world_log_p_out = log_p_in_out(
                world_lse[batch],
                torch.cat([world[batch] @ unit.T / temperature, world_neg[batch]], dim=1))
            beta = focal_weights(world_log_p_in, gamma)
            loss = (task_weight * -task_log_p_in.mean()
                    + (1.0 - task_weight) * -(beta * world_log_p_out).sum())
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            n_batches += 1
        curve.append(total / n_batches)
    with torch.no_grad():
        return normalize_rows(trainable).cpu().numpy().astype(np.float32), curve


def trained_share(
    embeddings: np.ndarray, negative_columns: np.ndarray, trainable_columns: np.ndarray,
    temperature: float,
) -> np.ndarray:
    """Per row, the trained columns' share of the out-side softmax mass, in [0, 1]."""
    def block(rows: np.ndarray) -> np.ndarray:
        trained = _lse(_cosines(rows, trainable_columns) / temperature)
        mined = _lse(_cosines(rows, negative_columns) / temperature)
        return np.exp(trained - np.logaddexp(trained, mined))

    return _by_blocks(embeddings, len(negative_columns) + len(trainable_columns), block)


def _lse(logits: np.ndarray) -> np.ndarray:
    peak = logits.max(axis=1)
    return np.log(np.exp(logits - peak[:, None]).sum(axis=1)) + peak


class NegLabelHFTTDetector(BaseTextDetector):
    """HFTT with mined negative labels in its head: NegLabel's negatives plus trained columns.

    The head's out-columns are the negative labels that ``negatives`` mines
    (NegLabel's WordNet negatives by default, or CSP's) and
    ``n_embeddings`` columns trained with the HFTT loss on the world corpus,
    in one softmax with the task columns::

        logits = [x W^T, x N^T, x V^T] / T,   P_out = softmax mass on N and V

    and ``score_samples`` is the log-odds ``log P_in - log P_out``.

    The negatives are mined as by :class:`NegLabelDetector` (``negatives=
    "neglabel"``) or :class:`CSPDetector` (``"csp"``) at their defaults,
    with the pool, count and percentile given here.

    **Initialisation.** With the negatives present at ``T = 0.01``, columns
    drawn from N(0, 1) sit at cosine ~0 from every text while the nearest
    negative is at 0.3-0.6: their share of a world text's out-mass is about
    ``e^-30``, so they receive no gradient and never move (``init="normal"``
    shows it). ``init="world"`` (default) starts them at ``n_embeddings``
    random world-corpus embeddings, where they hold the softmax of their
    neighbours and train; ``init="hftt"`` first trains plain HFTT columns
    (no negatives) and continues with the negatives present, which helps
    only where no negative is close to the world texts. ``trained_share_``
    reports, on the world corpus, how much of the out-mass the trained
    columns carry.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`.
    negatives : {"neglabel", "csp"}, default="neglabel"
        Whose mining gives the negative labels: NegLabel's WordNet pool or
        CSP's conjugated pool (with CSP's exclusions).
    candidates : "wordnet" or mapping, default="wordnet"
        The pool, as for those detectors' ``candidates``: ``"wordnet"``, or a
        mapping ``part -> texts or embeddings`` (for
        ``encoder="precomputed"``; such a detector saves with joblib only).
    n_negatives : int or float, default=0.15
        Negative labels: a fraction of each part of the pool, or a count.
    percentile : float, default=95.0
        Percentile of a candidate's similarities to the task columns that
        measures its closeness to the task.
    n_embeddings : int, default=10
        Number K of trained columns.
    init : {"world", "hftt", "normal"}, default="world"
        How the trained columns start (see above).
    temperature : float, default=0.01
        Softmax temperature T of the head.
    gamma : float, default=1.0
        Focal exponent of the world-text weights, as for HFTT.
    task_weight : float, default=0.5
        Weight of the task term of the loss.
    templates : list of str, default=None
        Prompt templates with one ``{}`` for the task.
    threshold : float, default=0.5
        Probability ``P_in`` from which an input is predicted +1.
    max_iter : int, default=1
        Epochs over the world corpus with the negatives present (and, for
        ``init="hftt"``, of the plain HFTT stage before).
    batch_size : int, default=256
        World texts per step.
    learning_rate_init : float, default=1.0
        SGD learning rate.
    momentum : float, default=0.9
        SGD momentum.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache, as for HFTT.
    device : str, default="auto"
        Where training and encoding run.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial columns and the shuffling.
    verbose : int, default=0
        0 is silent, 1 shows progress bars.

    Attributes
    ----------
    task_columns_ : ndarray of shape (n_task_columns, dim)
        Task columns W.
    negative_columns_ : ndarray of shape (n_negatives, dim)
        Mined negative labels N.
    negative_labels_ : list of str or None
        Their texts, None for candidates given as embeddings.
    trainable_columns_ : ndarray of shape (n_embeddings, dim)
        Trained columns V.
    trained_share_ : float
        Mean over the world corpus of the trained columns' share of the
        out-side mass: near 0 means they carry nothing (the negatives do
        all the work).
    loss_curve_ : list of float
        Mean loss of each epoch with the negatives present.
    task_names_ : list of str
        Name of each task column.
    embedding_dim_, encoder_identity_, encoder_spec_ : int, str or None
        The embedding space, as for HFTT.
    offset_ : float
        Log-odds of ``threshold``.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    skhftt.HFTTDetector : The paper's method, without negatives.
    skhftt.detectors.NegLabelDetector : The negatives, without training.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import NegLabelHFTTDetector
    >>> rng = np.random.default_rng(0)
    >>> task, world = rng.normal(size=(4, 32)), rng.normal(size=(400, 32))
    >>> pool = {"noun": rng.normal(size=(300, 32))}
    >>> det = NegLabelHFTTDetector(encoder="precomputed", candidates=pool, n_negatives=0.1,
    ...                            random_state=0).fit(world, task)
    >>> det.negative_columns_.shape, det.trainable_columns_.shape
    ((30, 32), (10, 32))
    >>> det.predict(np.vstack([task[:2], -task[:2]]))
    array([ 1,  1, -1, -1])
    """

    _parameter_constraints: ClassVar[dict] = {
        **BaseTextDetector._parameter_constraints,
        "negatives": [StrOptions({"neglabel", "csp"})],
        "candidates": [StrOptions({"wordnet"}), Mapping],
        "n_negatives": [
            Interval(Integral, 1, None, closed="left"),
            Interval(Real, 0, 1, closed="neither"),
        ],
        "percentile": [Interval(Real, 0, 100, closed="both")],
        "n_embeddings": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions(set(INITS))],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "gamma": [Interval(Real, 0, None, closed="left")],
        "task_weight": [Interval(Real, 0, 1, closed="neither")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    }
    _threshold_kind: ClassVar[Literal["log_odds", "score"]] = "log_odds"
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, "task_names_", "task_columns_",
        "negative_columns_", "negative_labels_", "trainable_columns_", "trained_share_",
        "loss_curve_",
    )

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        negatives: str = "neglabel",
        candidates: str | Mapping[str, object] = "wordnet",
        n_negatives: int | float = 0.15,
        percentile: float = 95.0,
        n_embeddings: int = 10,
        init: str = "world",
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
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.negatives = negatives
        self.candidates = candidates
        self.n_negatives = n_negatives
        self.percentile = percentile
        self.n_embeddings = n_embeddings
        self.init = init
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
    def fit(self, X: object, y: object = None) -> NegLabelHFTTDetector:
        """Mine the negatives, then train the columns beside them.

        Parameters
        ----------
        X : sequence of str, array-like of shape (n_samples, dim) or None
            World corpus (``None`` = the bundled default), or every text in
            the PU form. The negatives come from ``negatives``' own pool.
        y : sequence of str, mapping, array-like
            Task texts (``in_texts``) or 0/1 PU labels, as for HFTT.

        Returns
        -------
        self : NegLabelHFTTDetector
            The fitted detector.
        """
        embedder = self._embedder(scoring=False)
        device = embedder.torch_device()
        data = self._fit_data(X, y, need_world=True)
        rng = check_random_state(self.random_state)
        miner = (NegLabelDetector if self.negatives == "neglabel" else CSPDetector)(
            encoder=self.encoder, candidates=self.candidates, n_negatives=self.n_negatives,
            percentile=self.percentile, n_groups=1,
        )
        mined = miner._mine(data)
        negatives = mined["negative_columns_"]
        settings = {
            "temperature": self.temperature, "gamma": self.gamma,
            "task_weight": self.task_weight, "max_iter": self.max_iter,
            "batch_size": self.batch_size, "learning_rate": self.learning_rate_init,
            "momentum": self.momentum, "device": device, "random_state": rng,
        }
        world = data.world_embeddings
        if self.init == "hftt":
            initial = train_trainable_columns(
                data.task_embeddings, world, data.task_columns,
                n_embeddings=self.n_embeddings, verbose=self.verbose, **settings,
            ).trainable_columns
        elif self.init == "world":
            if len(world) < self.n_embeddings:
                raise ValueError(
                    f"init='world' starts the {self.n_embeddings} columns at world texts, "
                    f"but the world corpus has {len(world)}."
                )
            initial = world[rng.choice(len(world), self.n_embeddings, replace=False)]
        else:
            initial = rng.standard_normal((self.n_embeddings, world.shape[1]))
        columns, curve = train_beside_negatives(
            data.task_embeddings, world, data.task_columns, negatives, initial, **settings)
        if not np.isfinite(columns).all():
            raise ValueError(
                "training diverged: the trainable columns are not finite; lower "
                f"learning_rate_init (got {self.learning_rate_init!r})."
            )
        share = float(trained_share(world, negatives, columns, self.temperature).mean())
        self._set_fitted({
            **space_state(data.space),
            "task_names_": list(data.task.names),
            "task_columns_": data.task_columns,
            "negative_columns_": negatives,
            "negative_labels_": mined["negative_labels_"],
            "trainable_columns_": columns,
            "trained_share_": share,
            "loss_curve_": curve,
            "offset_": self._offset_of(self.threshold),
        })
        return self

    def score_samples(self, X: object) -> np.ndarray:
        """Log-odds ``log P_in - log P_out`` of the one-softmax head.

        Parameters
        ----------
        X : images, texts or embeddings
            See :meth:`embed`.

        Returns
        -------
        scores : ndarray of shape (n_samples,), float64
        """
        embeddings = self.embed(X)
        width = len(self.task_columns_) + len(self.negative_columns_) + self.n_embeddings
        return _by_blocks(embeddings, width, self._score_block)

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        return grouped_log_odds(embeddings, self.task_columns_, self.negative_columns_,
                                n_groups=1, temperature=self.temperature,
                                extra_columns=self.trainable_columns_)
