"""Baselines fitted on in-distribution images: MSP, Mahalanobis and KNN.

HFTT and the zero-shot detectors (:mod:`skhftt.detectors.similarity`,
:mod:`skhftt.detectors.negative_labels`) see texts only.
The detectors here need what HFTT does without: a set of in-distribution
*images* (or their embeddings), with class labels for MSP and Mahalanobis.
They share everything else with the other detectors: the encoder
(``encoder="precomputed"`` included), the scoring chain
(``score_samples``, ``decision_function = score_samples - offset_``,
``predict`` in {+1, -1}) and its orientation (higher = more in-distribution).

With ``x`` a unit embedding:

=====================  ==================================================
detector               ``score_samples(x)``
=====================  ==================================================
MSPDetector            ``log max_c softmax(A x + b)_c``, ``(A, b)`` a
                       linear classifier fitted on the labelled images
MahalanobisDetector    ``-min_c (x - mu_c)^T P (x - mu_c)``, ``P`` the
                       inverse of the shared (shrunk) class covariance
KNNDetector            ``-(1 - s_(k)(x))``, ``s_(k)`` the k-th largest cosine
                       similarity of ``x`` to the fitted images
=====================  ==================================================

``fit(images, labels)`` (``fit(images)`` for KNN) embeds the images with the
encoder, like ``score_samples`` does. ``threshold`` is a cut-off on
``score_samples`` for all three (every score is at most 0); its default,
``"auto"``, sets ``offset_`` at fit to the cut that keeps at least 95 % of the fitted
images, as scikit-learn's outlier detectors set ``offset_`` from
``contamination``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from numbers import Integral, Real
from typing import Any, ClassVar, Literal

import numpy as np
from scipy.linalg import pinvh
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.utils import gen_batches
from sklearn.utils.metaestimators import available_if

from skhftt._sklearn_compat import Interval, StrOptions, fit_context
from skhftt.detectors.base import (
    CALIBRATION_SIZE,
    BaseTextDetector,
    _BlockScoredDetector,
    calibration_rows,
    digest,
    keep_cut,
    space_state,
)
from skhftt.detectors.fitted import Array, Columns, Count, Number
from skhftt.embedding.embedder import EmbeddingSpace
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.encoders.registry import DEFAULT_ENCODER
from skhftt.space.blocks import chunk_rows

__all__ = ["KNNDetector", "MSPDetector", "MahalanobisDetector", "kth_neighbour_similarity"]


def _fit_predict_unavailable(detector: _ImageFittedDetector) -> bool:
    raise AttributeError(
        f"{type(detector).__name__} has no fit_predict: the scores of the images it was "
        "fitted on are biased (each is its own nearest neighbour and shaped the fitted "
        "model). Use fit(id_images, ...).predict(new_images)."
    )


def _class_codes(y: object, n_samples: int, who: str) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct class labels and each sample's index into them."""
    if y is None:
        raise ValueError(
            f"{who}.fit needs the class label of every in-distribution image: fit(images, labels)."
        )
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n_samples:
        raise ValueError(
            f"y has shape {labels.shape} but X has {n_samples} images; expected one "
            "class label per image."
        )
    return np.unique(labels, return_inverse=True)


def kth_neighbour_similarity(
    queries: np.ndarray, references: np.ndarray, n_neighbors: int
) -> np.ndarray:
    """The k-th largest cosine similarity of each query to the references, exactly.

    An exact brute-force search by
    :class:`~sklearn.neighbors.NearestNeighbors` (``metric="cosine"``): the
    queries are taken in chunks sized by scikit-learn's ``working_memory``
    (:func:`sklearn.set_config`, 1 GiB by default), so the full
    ``(n_queries, n_references)`` similarity matrix is never held.

    Parameters
    ----------
    queries : ndarray of shape (n_queries, dim)
        Unit rows.
    references : ndarray of shape (n_references, dim)
        Unit rows.
    n_neighbors : int
        ``k``, from 1 to ``n_references``.

    Returns
    -------
    ndarray of shape (n_queries,), float64
        ``s_(k)``: the k-th largest of each query's similarities (the
        cosine similarity to its k-th nearest neighbour).

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors.image_fitted import kth_neighbour_similarity
    >>> references = np.eye(3)
    >>> kth_neighbour_similarity(np.array([[0.6, 0.8, 0.0]]), references, 2)
    array([0.6])
    """
    n_references = references.shape[0]
    if not 1 <= n_neighbors <= n_references:
        raise ValueError(
            f"n_neighbors={n_neighbors} must be between 1 and the {n_references} "
            "reference embeddings."
        )
    search = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", metric="cosine")
    distances, _ = search.fit(references).kneighbors(queries)
    return 1.0 - distances[:, -1].astype(np.float64)


class _ImageFittedDetector(_BlockScoredDetector):
    """A detector whose fit takes in-distribution images (or their embeddings)."""

    _parameter_constraints: ClassVar[dict] = {
        **{k: v for k, v in BaseTextDetector._parameter_constraints.items() if k != "templates"},
        "threshold": [StrOptions({"auto"}), Interval(Real, None, 0, closed="right")],
    }

    def _fit_embeddings(self, X: object) -> tuple[np.ndarray, EmbeddingSpace]:
        """Embed the fitting images; also the space they live in."""
        embedder = self._embedder(scoring=False)
        embeddings = embedder.embed(X)
        return embeddings, embedder.space(embeddings.shape[1])

    @available_if(_fit_predict_unavailable)
    def fit_predict(self, X: object, y: object = None) -> np.ndarray:
        """Not available: scores of the fitting images themselves are biased."""
        return self.fit(X, y).predict(X)


class MSPDetector(_ImageFittedDetector):
    """Maximum softmax probability of a classifier fitted on in-distribution images.

    A multinomial logistic regression (the linear probe of the CLIP paper)
    is fitted on the labelled in-distribution image embeddings; the score is
    the log of its largest class probability at temperature 1::

        score_samples(x) = log max_c softmax(A x + b)_c

    ``numpy.exp(score_samples(x))`` is the MSP of Hendrycks & Gimpel. The log
    is computed as ``-log1p(sum_{c != c*} exp(l_c - l_c*))``, so it keeps
    ranking inputs whose probability rounds to 1.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``, in which case ``fit`` and ``score_samples`` take
        embeddings).
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side is removed. ``"mismatch"`` (the use these
        detectors are made for): the fitted images are what a dataset
        should keep, and inputs unlike them are removed. ``"match"``:
        inputs like the fitted images are removed. Scores do not depend on
        it; removal rules and ``skhftt filter`` read it from here.
    C : float, default=1.0
        Inverse L2 regularisation strength of the logistic regression, as in
        :class:`~sklearn.linear_model.LogisticRegression`.
    max_iter : int, default=1000
        Maximum number of L-BFGS iterations.
    threshold : "auto" or float, default="auto"
        Cut-off on ``score_samples``, the log of the largest class
        probability (so at most 0): an input is +1 when its score is at
        least the cut (``offset_``). ``"auto"`` sets the cut at fit to the
        highest of the fitted images' own scores that keeps at least 95 %
        of them; those scores are optimistic (the classifier was
        fitted on the same images), so the cut keeps fewer of new
        in-distribution images. A number is the cut itself, e.g.
        ``numpy.log(0.5)`` for a largest class probability of one half;
        take one from held-out in-distribution images
        (``-threshold_at_tpr(-det.score_samples(held_out), 0.95)``, see
        :mod:`skhftt.removal.thresholds`) and apply it with
        :meth:`set_threshold`.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache (for text inputs): ``None`` is the persistent
        user cache (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path
        that directory, ``False`` this process only.
    device : str, default="auto"
        Where the encoder runs.
    verbose : int, default=0
        0 is silent, 1 shows progress bars while encoding.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels seen in fit, sorted.
    coef_ : ndarray of shape (n_classes, dim) or (1, dim)
        Weights ``A`` of the classifier; one row for two classes, as in
        :class:`~sklearn.linear_model.LogisticRegression` (the logits are
        then ``[0, a x + b]``).
    intercept_ : ndarray of shape (n_classes,) or (1,)
        Biases ``b``.
    n_iter_ : int
        L-BFGS iterations run.
    offset_ : float
        The cut on ``score_samples``: ``threshold``, or the cut that
        ``threshold="auto"`` set at fit. ``decision_function = score_samples
        - offset_``.
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity of the encoder used in fit; ``None`` when precomputed.
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    training_digests_ : dict
        ``{"images": ...}``: the SHA-256 digest of the fitted images'
        embeddings.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    skhftt.detectors.MCMDetector : The max softmax of the *zero-shot*
        classifier (the task texts' columns) at temperature ``T``; it needs
        no images.

    Notes
    -----
    The HFTT paper lists MSP among the methods that use in-distribution
    images: its numbers come from a CLIP fine-tuned on ImageNet-1k. The
    encoder here is frozen, so the classifier on top of it is what is
    fitted. The max softmax of the zero-shot classifier at ``T = 1`` on
    cosine similarities needs no image: that is
    ``MCMDetector(temperature=1.0)``.

    Fitting costs ``O(max_iter * n_images * dim * n_classes)``; on the
    1.28 million ImageNet-1k training images a subsample per class is the
    practical choice.

    References
    ----------
    .. [1] D. Hendrycks, K. Gimpel, "A Baseline for Detecting Misclassified
       and Out-of-Distribution Examples in Neural Networks", ICLR 2017.
    .. [2] A. Radford et al., "Learning Transferable Visual Models From
       Natural Language Supervision", ICML 2021 (linear probes).

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import MSPDetector
    >>> rng = np.random.default_rng(0)
    >>> centres = np.eye(8)[:2]
    >>> images = np.repeat(centres, 20, axis=0) + 0.1 * rng.normal(size=(40, 8))
    >>> det = MSPDetector(encoder="precomputed").fit(images, np.repeat(["a", "b"], 20))
    >>> det.classes_
    array(['a', 'b'], dtype='<U1')
    >>> bool(det.score_samples(centres[:1])[0] > det.score_samples(np.eye(8)[5:6])[0])
    True
    """

    _score_description: ClassVar[str] = (
        "log of the largest class probability of a linear probe on images"
    )

    _parameter_constraints: ClassVar[dict] = {
        **_ImageFittedDetector._parameter_constraints,
        "C": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, "classes_", "coef_", "intercept_", "n_iter_",
    )
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec,
        "classes_": Array(("n_classes",), kinds="biufU"),
        "coef_": Array(("n_logits", "dim")),
        "intercept_": Array(("n_logits",)),
        "n_iter_": Count(),
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        C: float = 1.0,
        max_iter: int = 1000,
        threshold: str | float = "auto",
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.C = C
        self.max_iter = max_iter
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    @fit_context
    def fit(self, X: object, y: object = None) -> MSPDetector:
        """Fit the classifier on labelled in-distribution images.

        Parameters
        ----------
        X : images or array-like of shape (n_samples, dim)
            In-distribution images in any form :meth:`embed` accepts, or
            their embeddings.
        y : array-like of shape (n_samples,)
            The class of each image (any labels; at least two classes).

        Returns
        -------
        self : MSPDetector
            The fitted detector.
        """
        embeddings, space = self._fit_embeddings(X)
        classes, codes = _class_codes(y, embeddings.shape[0], type(self).__name__)
        if classes.size < 2:
            raise ValueError(
                f"MSPDetector needs at least two classes to fit a classifier; y has only "
                f"{classes[0]!r}."
            )
        classifier = LogisticRegression(C=self.C, max_iter=self.max_iter)
        classifier.fit(embeddings, codes)
        state = {
            **space_state(space, {"images": digest(embeddings)}),
            "classes_": classes,
            "coef_": classifier.coef_,
            "intercept_": classifier.intercept_,
            "n_iter_": int(np.max(classifier.n_iter_)),
        }
        self._set_fitted({**state, "offset_": self._offset_at_fit(
            lambda: keep_cut(self._scores_with(state, embeddings)))})
        return self

    def _check_fitted_state(self, state: Mapping[str, Any]) -> None:
        n_classes, n_logits = len(state["classes_"]), len(state["coef_"])
        if n_classes < 2 or n_logits != (1 if n_classes == 2 else n_classes):
            raise ValueError(
                f"coef_ has {n_logits} rows for {n_classes} classes_; a classifier of "
                "C >= 2 classes has C rows, or 1 for two classes."
            )

    def _n_columns(self) -> int:
        return max(self.classes_.size, self.embedding_dim_)

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings.astype(np.float64) @ self.coef_.T.astype(np.float64)
        logits += self.intercept_
        if logits.shape[1] == 1:  # two classes: P(second class) = sigmoid(logit)
            logits = np.column_stack([np.zeros(logits.shape[0]), logits[:, 0]])
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        # Drop the largest entry (exactly 1) before summing: log1p keeps the tail.
        shifted[np.arange(shifted.shape[0]), logits.argmax(axis=1)] = 0.0
        return -np.log1p(shifted.sum(axis=1))


def _ledoit_wolf_shrinkage(covariance: np.ndarray, fourth_moment: float, n_samples: int) -> float:
    """Ledoit-Wolf shrinkage of a centred sample covariance, from its sufficient statistics.

    ``covariance`` is ``R^T R / n`` and ``fourth_moment`` is ``sum_i |r_i|^4``
    over the centred rows ``r_i``; the result equals
    :func:`sklearn.covariance.ledoit_wolf_shrinkage` on ``R`` with
    ``assume_centered=True``, without holding ``R`` in memory.
    """
    dim = covariance.shape[0]
    mu = np.trace(covariance) / dim
    squared_norm = float(np.sum(covariance**2))
    delta = (squared_norm - dim * mu**2) / dim
    beta = min((fourth_moment / n_samples - squared_norm) / (dim * n_samples), delta)
    return 0.0 if beta <= 0 else float(beta / delta)


class MahalanobisDetector(_ImageFittedDetector):
    """Mahalanobis distance to the nearest class of the in-distribution images.

    Class-conditional Gaussians with a shared covariance are fitted on the
    labelled in-distribution image embeddings: class means ``mu_c`` and the
    pooled within-class covariance ``S = (1/n) sum_i (x_i - mu_y_i)(x_i -
    mu_y_i)^T``, shrunk towards a multiple of the identity. The score is the
    negative squared Mahalanobis distance to the closest class mean::

        score_samples(x) = -min_c (x - mu_c)^T P (x - mu_c)

    with ``P`` the (pseudo-)inverse of the shrunk covariance.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``, in which case ``fit`` and ``score_samples`` take
        embeddings).
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side is removed. ``"mismatch"`` (the use these
        detectors are made for): the fitted images are what a dataset
        should keep, and inputs unlike them are removed. ``"match"``:
        inputs like the fitted images are removed. Scores do not depend on
        it; removal rules and ``skhftt filter`` read it from here.
    shrinkage : "auto" or float, default="auto"
        Weight ``a`` in ``(1 - a) S + a (trace(S) / dim) I``. ``"auto"`` is
        the Ledoit-Wolf estimate, near 0 when there are many more images
        than dimensions and larger when there are few; 0 keeps ``S`` as it
        is (then inverted as a pseudo-inverse, so fewer images than
        dimensions still work).
    threshold : "auto" or float, default="auto"
        Cut-off on ``score_samples``, minus a squared Mahalanobis distance
        (so at most 0): an input is +1 when its score is at least the cut
        (``offset_``). ``"auto"`` sets the cut at fit to the highest of the
        fitted images' own scores that keeps at least 95 % of them; those
        scores are optimistic (the means and covariance were fitted
        on the same images), so the cut keeps fewer of new in-distribution
        images. A number is the cut itself; take one from held-out
        in-distribution images
        (``-threshold_at_tpr(-det.score_samples(held_out), 0.95)``, see
        :mod:`skhftt.removal.thresholds`) and apply it with
        :meth:`set_threshold`.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache (for text inputs): ``None`` is the persistent
        user cache (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path
        that directory, ``False`` this process only.
    device : str, default="auto"
        Where the encoder runs.
    verbose : int, default=0
        0 is silent, 1 shows progress bars while encoding.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels seen in fit, sorted.
    means_ : ndarray of shape (n_classes, dim)
        Class means ``mu_c``, in the order of ``classes_``.
    covariance_ : ndarray of shape (dim, dim)
        The shrunk shared covariance.
    precision_ : ndarray of shape (dim, dim)
        ``P``: its pseudo-inverse by :func:`scipy.linalg.pinvh`
        (eigenvalues below ``dim * eps`` times the largest are dropped).
    shrinkage_ : float
        The shrinkage ``a`` used.
    offset_ : float
        The cut on ``score_samples``: ``threshold``, or the cut that
        ``threshold="auto"`` set at fit. ``decision_function = score_samples
        - offset_``.
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity of the encoder used in fit; ``None`` when precomputed.
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    training_digests_ : dict
        ``{"images": ...}``: the SHA-256 digest of the fitted images'
        embeddings.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    MSPDetector : A linear classifier on the same labelled images.
    KNNDetector : The distance to the nearest images themselves, without labels.

    Notes
    -----
    The score is the squared distance of Lee et al.; its square root ranks
    inputs identically. Inputs are unit embeddings, like everything skhftt
    scores. The statistics are accumulated over blocks of images (sized by
    scikit-learn's ``working_memory``), so fitting needs ``O(dim^2 +
    n_classes * dim)`` memory beyond the embeddings and one block.

    References
    ----------
    .. [1] K. Lee, K. Lee, H. Lee, J. Shin, "A Simple Unified Framework for
       Detecting Out-of-Distribution Samples and Adversarial Attacks",
       NeurIPS 2018.
    .. [2] O. Ledoit, M. Wolf, "A well-conditioned estimator for
       large-dimensional covariance matrices", J. Multivariate Analysis, 2004.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import MahalanobisDetector
    >>> rng = np.random.default_rng(0)
    >>> images = np.repeat(np.eye(8)[:2], 20, axis=0) + 0.1 * rng.normal(size=(40, 8))
    >>> det = MahalanobisDetector(encoder="precomputed").fit(images, np.repeat([0, 1], 20))
    >>> det.means_.shape, det.covariance_.shape
    ((2, 8), (8, 8))
    >>> bool(det.score_samples(np.eye(8)[:1])[0] > det.score_samples(np.eye(8)[5:6])[0])
    True
    """

    _score_description: ClassVar[str] = (
        "minus the squared Mahalanobis distance to the nearest class mean"
    )

    _parameter_constraints: ClassVar[dict] = {
        **_ImageFittedDetector._parameter_constraints,
        "shrinkage": [StrOptions({"auto"}), Interval(Real, 0, 1, closed="both")],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes,
        "classes_", "means_", "covariance_", "precision_", "shrinkage_",
    )
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec,
        "classes_": Array(("n_classes",), kinds="biufU"),
        "means_": Array(("n_classes", "dim")),
        "covariance_": Array(("dim", "dim")),
        "precision_": Array(("dim", "dim")),
        "shrinkage_": Number(low=0.0, high=1.0),
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        shrinkage: str | float = "auto",
        threshold: str | float = "auto",
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.shrinkage = shrinkage
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    @fit_context
    def fit(self, X: object, y: object = None) -> MahalanobisDetector:
        """Fit the class means and the shared covariance.

        Parameters
        ----------
        X : images or array-like of shape (n_samples, dim)
            In-distribution images in any form :meth:`embed` accepts, or
            their embeddings.
        y : array-like of shape (n_samples,)
            The class of each image (any labels).

        Returns
        -------
        self : MahalanobisDetector
            The fitted detector.
        """
        embeddings, space = self._fit_embeddings(X)
        n_samples, dim = embeddings.shape
        classes, codes = _class_codes(y, n_samples, type(self).__name__)
        blocks = list(gen_batches(n_samples, chunk_rows(8 * dim)))  # float64 copies of images
        means = np.zeros((classes.size, dim))
        for block in blocks:
            np.add.at(means, codes[block], embeddings[block].astype(np.float64))
        means /= np.bincount(codes, minlength=classes.size)[:, None]
        scatter = np.zeros((dim, dim))
        fourth_moment = 0.0
        for block in blocks:
            centred = embeddings[block].astype(np.float64) - means[codes[block]]
            scatter += centred.T @ centred
            fourth_moment += float(np.sum(np.sum(centred**2, axis=1) ** 2))
        covariance = scatter / n_samples
        if self.shrinkage == "auto":
            shrinkage = _ledoit_wolf_shrinkage(covariance, fourth_moment, n_samples)
        else:
            shrinkage = float(self.shrinkage)
        target = np.trace(covariance) / dim
        covariance = (1.0 - shrinkage) * covariance + shrinkage * target * np.eye(dim)
        state = {
            **space_state(space, {"images": digest(embeddings)}),
            "classes_": classes,
            "means_": means,
            "covariance_": covariance,
            "precision_": pinvh(covariance),
            "shrinkage_": shrinkage,
        }
        self._set_fitted({**state, "offset_": self._offset_at_fit(
            lambda: keep_cut(self._scores_with(state, embeddings)))})
        return self

    def _set_fitted(self, attributes: Mapping[str, Any]) -> None:
        super()._set_fitted(attributes)
        # mu_c^T P mu_c, the constant part of every class's squared distance.
        self._mean_terms = np.sum((self.means_ @ self.precision_) * self.means_, axis=1)

    def _n_columns(self) -> int:
        return max(self.classes_.size, self.embedding_dim_)

    def _score_block(self, embeddings: np.ndarray) -> np.ndarray:
        x = embeddings.astype(np.float64)
        projected = x @ self.precision_
        # (x - mu)^T P (x - mu) = x^T P x - 2 x^T P mu + mu^T P mu, for every class at once.
        squared = (
            np.sum(projected * x, axis=1, keepdims=True)
            - 2.0 * projected @ self.means_.T
            + self._mean_terms
        )
        return -np.maximum(squared.min(axis=1), 0.0)


class KNNDetector(_ImageFittedDetector):
    """Distance to the k-th nearest in-distribution image, by cosine.

    The unit embeddings of the in-distribution images are kept; an input's
    score is minus the cosine distance to its ``k``-th nearest one::

        score_samples(x) = -(1 - s_(k)(x))

    where ``s_(k)(x)`` is the k-th largest cosine similarity of ``x`` to the
    fitted images. Sun et al. use the Euclidean distance between unit
    vectors, ``sqrt(2 - 2 s)``, which ranks inputs identically:
    ``sqrt(-2 * score_samples(x))`` is their distance.

    Parameters
    ----------
    encoder : str or Encoder, default="openai/clip-vit-base-patch16"
        The joint embedding model, as for :class:`~skhftt.HFTTDetector`
        (a model name or local directory, an encoder object, or
        ``"precomputed"``, in which case ``fit`` and ``score_samples`` take
        embeddings).
    unwanted : {"mismatch", "match"}, default="mismatch"
        The job: which side is removed. ``"mismatch"`` (the use these
        detectors are made for): the fitted images are what a dataset
        should keep, and inputs unlike them are removed. ``"match"``:
        inputs like the fitted images are removed. Scores do not depend on
        it; removal rules and ``skhftt filter`` read it from here.
    n_neighbors : int, default=10
        ``k``. Sun et al. use ``k = 1000`` with the 1.28 million ImageNet-1k
        training images and ``k = 10`` with a 1 % sample of them: ``k``
        should grow with the number of fitted images.
    threshold : "auto" or float, default="auto"
        Cut-off on ``score_samples``, minus a cosine distance (so from -2
        to 0): an input is +1 when its score is at least the cut
        (``offset_``). ``"auto"`` sets the cut at fit by leave-one-out: at
        most 5,000 of the fitted images (a sample seeded with 0) are each
        scored against the others -- by their ``k + 1``-th nearest fitted
        image, since each is its own nearest -- and the cut keeps at least
        95 % of them (with ``n_neighbors`` equal to the number of fitted
        images none is left to hold out, and their own, optimistic scores
        set it). A number is the cut itself; take one from held-out
        in-distribution images (``-threshold_at_tpr(-det.score_samples(held_out), 0.95)``,
        see :mod:`skhftt.removal.thresholds`) and apply it with
        :meth:`set_threshold`.
    encode_batch_size : int, default=256
        Inputs per encoder forward pass.
    cache_dir : str, path-like, None or False, default=None
        Text-embedding cache (for text inputs): ``None`` is the persistent
        user cache (``SKHFTT_CACHE_DIR``, else ``~/.cache/skhftt``), a path
        that directory, ``False`` this process only.
    device : str, default="auto"
        Where the encoder runs.
    verbose : int, default=0
        0 is silent, 1 shows progress bars while encoding.

    Attributes
    ----------
    reference_embeddings_ : ndarray of shape (n_references, dim)
        The fitted images' unit embeddings (float32). The fitted detector
        holds them all, so it is as large as they are.
    offset_ : float
        The cut on ``score_samples``: ``threshold``, or the cut that
        ``threshold="auto"`` set at fit. ``decision_function = score_samples
        - offset_``.
    embedding_dim_ : int
        Width of the embedding space.
    encoder_identity_ : str or None
        Identity of the encoder used in fit; ``None`` when precomputed.
    encoder_spec_ : str or None
        The ``encoder`` spec, a local model directory made absolute; None
        for an encoder object.
    training_digests_ : dict
        ``{"images": ...}``: the SHA-256 digest of the fitted images'
        embeddings.
    n_features_in_ : int
        Width of the embeddings seen in fit; only with
        ``encoder="precomputed"``.

    See Also
    --------
    kth_neighbour_similarity : The exact search it runs.

    Notes
    -----
    The search is exact (:class:`~sklearn.neighbors.NearestNeighbors`,
    brute force, cosine): scoring ``n`` inputs costs ``n * n_references *
    dim`` multiply-adds; the similarity matrix is held in chunks of
    scikit-learn's ``working_memory``, beside a normalised copy of the
    references. ``threshold="auto"`` adds the search of the (at most 5,000)
    held-out images to the fit.

    References
    ----------
    .. [1] Y. Sun, Y. Ming, X. Zhu, Y. Li, "Out-of-Distribution Detection
       with Deep Nearest Neighbors", ICML 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skhftt.detectors import KNNDetector
    >>> det = KNNDetector(encoder="precomputed", n_neighbors=2).fit(np.eye(3))
    >>> det.score_samples(np.array([[0.6, 0.8, 0.0], [0.0, 0.0, 1.0]])).round(2)
    array([-0.4, -1. ])
    """

    _score_description: ClassVar[str] = "minus the cosine distance to the k-th nearest fitted image"

    _parameter_constraints: ClassVar[dict] = {
        **_ImageFittedDetector._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
    }
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *BaseTextDetector._fitted_attributes, "reference_embeddings_",
    )
    _fitted_spec: ClassVar[dict] = {
        **BaseTextDetector._fitted_spec,
        "reference_embeddings_": Columns("n_references"),
    }

    def __init__(
        self,
        *,
        encoder: str | Encoder = DEFAULT_ENCODER,
        unwanted: Literal["mismatch", "match"] = "mismatch",
        n_neighbors: int = 10,
        threshold: str | float = "auto",
        encode_batch_size: int = 256,
        cache_dir: str | os.PathLike[str] | Literal[False] | None = None,
        device: str = "auto",
        verbose: int = 0,
    ) -> None:
        self.encoder = encoder
        self.unwanted = unwanted
        self.n_neighbors = n_neighbors
        self.threshold = threshold
        self.encode_batch_size = encode_batch_size
        self.cache_dir = cache_dir
        self.device = device
        self.verbose = verbose

    @fit_context
    def fit(self, X: object, y: object = None) -> KNNDetector:
        """Keep the unit embeddings of the in-distribution images.

        Parameters
        ----------
        X : images or array-like of shape (n_samples, dim)
            In-distribution images in any form :meth:`embed` accepts, or
            their embeddings.
        y : None
            Ignored: class labels play no part.

        Returns
        -------
        self : KNNDetector
            The fitted detector.
        """
        embeddings, space = self._fit_embeddings(X)
        n_images = embeddings.shape[0]
        if self.n_neighbors > n_images:
            raise ValueError(
                f"n_neighbors={self.n_neighbors} exceeds the {n_images} "
                "in-distribution images given to fit."
            )
        self._set_fitted({
            **space_state(space, {"images": digest(embeddings)}),
            "reference_embeddings_": embeddings,
            "offset_": self._offset_at_fit(lambda: self._held_out_offset(embeddings)),
        })
        return self

    def _held_out_offset(self, embeddings: np.ndarray) -> float:
        """The cut that keeps at least 95 % of a sample of the fitted images, each held out."""
        n_images = embeddings.shape[0]
        sample = embeddings[calibration_rows(n_images, CALIBRATION_SIZE)]
        # Each image is its own nearest neighbour: the k + 1-th is the k-th of the others,
        # unless there are no others to spare.
        k = min(self.n_neighbors + 1, n_images)
        with config_context(assume_finite=True):
            held_out = kth_neighbour_similarity(sample, embeddings, k)
        return keep_cut(held_out - 1.0)

    def _check_fitted_state(self, state: Mapping[str, Any]) -> None:
        n_references = len(state["reference_embeddings_"])
        if self.n_neighbors > n_references:
            raise ValueError(f"n_neighbors={self.n_neighbors} exceeds the {n_references} rows "
                             "of reference_embeddings_.")

    def _score_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """Minus the cosine distance to the ``n_neighbors``-th nearest fitted image (<= 0)."""
        # The references were validated when they were fitted.
        with config_context(assume_finite=True):
            similarity = kth_neighbour_similarity(
                embeddings, self.reference_embeddings_, self.n_neighbors
            )
        return similarity - 1.0
