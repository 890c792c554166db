"""User inputs -> embeddings: the single entry point every scoring method uses.

Wherever skhftt expects images it accepts a sequence of any of:

* image file paths: ``str`` or :class:`os.PathLike` (``pathlib.Path``);
* encoded image bytes;
* PIL images;
* numpy arrays of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
  ``(H, W, 4)``: uint8, uint16 (16-bit, scaled to 8 bits), bool, or floats in
  ``[0, 1]``; also one 4-D array ``(N, H, W, C)``;
* torch tensors ``(C, H, W)`` with C in 1, 3, 4, or ``(H, W)``: uint8 or
  floats in ``[0, 1]``; also one 4-D tensor ``(N, C, H, W)``;

or a 2-D float array (or tensor) of precomputed embeddings of width ``dim``,
or texts wrapped in :class:`Texts` (embedded by the text tower: the space is
joint). A 2-D uint8, uint16 or bool array is refused: it looks like one
grayscale image, so pass ``[image]``. A 3-D array is refused as ambiguous
(one colour image, or several grayscale ones?).

Every image is decoded by :func:`skhftt.embedding.images.load_image`: EXIF
orientation applied, converted to 8-bit RGB, transparency composited over
white. So a file, the PIL image opened from it and the array of that image
embed identically.

Strings are image paths
-----------------------
In methods that take images, a ``str`` or path-like is always an image path,
whatever files exist in the working directory; texts are embedded only when
wrapped in :class:`Texts` (``Texts(["a photo of a cat", "AC/DC"])``). A path
that names no file raises :class:`FileNotFoundError` naming it; it is never
embedded as text. URLs are refused (skhftt reads local files only). In
``fit``, plain strings are texts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from os import PathLike
from typing import Any

import numpy as np

from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.images import (
    IMAGE_EXTENSIONS,
    has_image_extension,
    is_pil_image,
    is_tensor,
    load_image,
)
from skhftt.embedding.pipeline import embed_images
from skhftt.embedding.progress import progress
from skhftt.space.validation import check_embeddings, check_texts

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImagePaths",
    "Texts",
    "load_image",
    "to_embeddings",
]

_TEXTS_HINT = (
    "in methods that take images a str is always an image path; to embed texts, "
    "wrap them: skhftt.embedding.Texts([...])"
)


class Texts(list):
    """A sequence of texts, embedded as texts whatever they look like.

    In methods that take images, a plain ``str`` is an image path; wrap texts
    in ``Texts`` to score them (texts and images share the joint space).

    Parameters
    ----------
    texts : iterable of str
        The texts.

    Examples
    --------
    >>> from skhftt.embedding.inputs import Texts
    >>> Texts(["AC/DC", "a photo of a dog.jpg"])
    Texts(['AC/DC', 'a photo of a dog.jpg'])
    """

    def __init__(self, texts: Iterable[str] = ()) -> None:
        super().__init__(check_texts(texts, name="Texts", allow_empty=True))

    def __repr__(self) -> str:
        return f"Texts({list.__repr__(self)})"

    @property
    def shape(self) -> tuple[int]:
        """``(n_texts,)``.

        With a ``shape``, scikit-learn's splitters index ``Texts`` by arrays
        of positions (``texts[indices]``) rather than rebuilding a plain
        list, so the folds of ``GridSearchCV`` and ``cross_val_score`` stay
        texts when a scorer embeds them.
        """
        return (len(self),)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple) and key and key[-1] is Ellipsis:
            key = key[0] if len(key) == 2 else key[:-1]
        if isinstance(key, (int, np.integer)):
            return list.__getitem__(self, int(key))
        if isinstance(key, slice):
            return Texts(list.__getitem__(self, key))
        positions = np.asarray(key)
        if positions.dtype == bool:
            if positions.shape != (len(self),):
                raise IndexError(
                    f"a boolean mask of shape {positions.shape} indexes Texts of {len(self)}."
                )
            positions = np.flatnonzero(positions)
        elif positions.size and positions.dtype.kind not in "iu":
            raise IndexError(f"Texts are indexed by positions; got {key!r:.80}.")
        return Texts([list.__getitem__(self, int(i)) for i in positions.ravel()])


class ImagePaths(list):
    """A sequence of image file paths, checked to be paths.

    A plain list of ``str`` is read as image paths too; this wrapper only
    adds the check that every item is a ``str`` or path-like.

    Parameters
    ----------
    paths : iterable of str or path-like
        The files. Each must exist (checked when the images are embedded).

    Examples
    --------
    >>> from skhftt.embedding.inputs import ImagePaths
    >>> ImagePaths(["scans/0001", "scans/0002"])
    ImagePaths(['scans/0001', 'scans/0002'])
    """

    def __init__(self, paths: Iterable[str | PathLike[str]] = ()) -> None:
        if isinstance(paths, (str, bytes, PathLike)):
            raise TypeError(f"ImagePaths takes a sequence of paths, not a single path: {paths!r}.")
        items = list(paths)
        for index, item in enumerate(items):
            if not isinstance(item, (str, PathLike)):
                raise TypeError(
                    f"ImagePaths item {index} is {type(item).__name__} ({item!r}); "
                    "expected a str or path-like."
                )
        super().__init__(items)

    def __repr__(self) -> str:
        return f"ImagePaths({list.__repr__(self)})"


def _as_items(X: object, name: str) -> list[Any] | None:
    """``X`` as a list of per-sample inputs, or None when it is an embedding matrix."""
    if isinstance(X, (str, bytes, PathLike)) or is_pil_image(X):
        raise TypeError(
            f"{name} must be a sequence of inputs, not a single "
            f"{type(X).__name__}: wrap it in a list."
        )
    if isinstance(X, (Texts, ImagePaths)):
        return X
    if isinstance(X, np.ndarray) or is_tensor(X):
        if X.ndim == 2 and str(X.dtype).replace("torch.", "") in ("uint8", "uint16", "bool"):
            raise ValueError(
                f"{name} is a 2-D {str(X.dtype).replace('torch.', '')} array of shape "
                f"{tuple(X.shape)}: that looks like one grayscale image, not embeddings. "
                "Pass a list of images ([image]), or float embeddings."
            )
        if X.ndim == 1 and (not isinstance(X, np.ndarray) or X.dtype.kind in "OUS"):
            return X.tolist() if isinstance(X, np.ndarray) else list(X)
        if X.ndim == 4 and (not isinstance(X, np.ndarray) or X.dtype != object):
            return list(X)
        if X.ndim == 3:
            layout = "(H, W, C)" if isinstance(X, np.ndarray) else "(C, H, W)"
            raise ValueError(
                f"{name} has shape {tuple(X.shape)}: one {layout} image, or N "
                "grayscale images? Pass a list of images, or a 4-D batch."
            )
        return None
    if isinstance(X, Sequence):
        return list(X)
    if hasattr(X, "__array__"):
        if getattr(X, "ndim", None) != 1 or not hasattr(X, "tolist"):
            return None
        return X.tolist()
    if isinstance(X, Iterable):
        return list(X)
    return None


def _is_image(item: Any) -> bool:
    if isinstance(item, (str, PathLike, bytes, bytearray, memoryview)) or is_pil_image(item):
        return True
    if isinstance(item, np.ndarray) or is_tensor(item):
        return item.ndim >= 2
    return False


def _check_path(item: str | PathLike[str], index: int, name: str) -> None:
    """Fail before any encoding when an image path names no file."""
    path = os.fspath(item)
    if isinstance(item, str) and path.startswith(("http://", "https://")):
        raise ValueError(
            f"{name}[{index}] is the URL {path!r}; skhftt reads local image files only: "
            "download the images first."
        )
    expanded = os.path.expanduser(path)
    if os.path.isfile(expanded):
        return
    if os.path.isdir(expanded):
        raise FileNotFoundError(
            f"{name}[{index}]: image file {path!r} is a directory, not an image file."
        )
    hint = "" if has_image_extension(path) else f" ({_TEXTS_HINT})"
    raise FileNotFoundError(f"{name}[{index}]: image file {path!r} not found{hint}.")


def _check_images(items: Sequence[Any], name: str) -> None:
    for index, item in enumerate(items):
        if isinstance(item, (str, PathLike)):
            _check_path(item, index, name)
        elif not _is_image(item):
            raise TypeError(
                f"{name}[{index}] is {type(item).__name__} ({item!r:.80}); expected an "
                "image path, image bytes, a PIL image, an (H, W[, C]) array or a "
                "(C, H, W) tensor (texts go in skhftt.embedding.Texts)."
            )


class _Items:
    """User inputs as an image source of :func:`~skhftt.embedding.pipeline.embed_images`."""

    def __init__(self, items: list[Any], name: str) -> None:
        self.items = items
        self.name = name

    def __len__(self) -> int:
        return len(self.items)

    def item_id(self, index: int) -> None:
        return None

    def load(self, index: int) -> Any:
        item = self.items[index]
        source = f"{self.name}[{index}]"
        if isinstance(item, (str, PathLike)):
            source = f"{source} (image file {os.fspath(item)!r})"
        return load_image(item, source=source)


def _encode_images(
    encoder: Encoder,
    items: list[Any],
    *,
    batch_size: int,
    show_progress: bool | None,
    name: str,
) -> np.ndarray:
    """Decode and embed images through the one image pipeline of skhftt.

    Threads decode the images (and, when the encoder offers
    ``pixel_transform``/``encode_pixels``, also run its preprocessing) one
    batch ahead of the model; the first image that cannot be read raises.
    """
    results = []
    with progress(len(items), what="images", unit="image", show=show_progress,
                  detail=f" with {encoder.identity!r}") as update:
        for batch in embed_images(_Items(items, name), encoder, batch_size=batch_size,
                                  errors="raise"):
            results.append(batch.embeddings)
            update(len(batch))
    return np.concatenate(results)


def to_embeddings(
    X: object,
    *,
    encoder: Encoder | None,
    dim: int | None,
    batch_size: int = 256,
    show_progress: bool | None = None,
    cache_dir: str | PathLike[str] | bool | None = None,
    name: str = "X",
) -> np.ndarray:
    """Turn ``X`` into unit float32 embeddings of width ``dim``.

    Parameters
    ----------
    X : sequence of images, Texts, or array-like of shape (n_samples, dim)
        Images (paths, bytes, PIL images, arrays, tensors; a ``str`` is always
        an image path), texts wrapped in :class:`Texts`, or precomputed
        embeddings.
    encoder : Encoder or None
        The model. ``None`` means precomputed mode: ``X`` must already be
        embeddings.
    dim : int or None
        Expected width; ``None`` accepts any.
    batch_size : int, default=256
        Texts or images per encoder call. Images are decoded one batch of
        this size ahead, in threads, while the previous batch is embedded
        (:mod:`skhftt.embedding.pipeline`, as batch scoring does).
    show_progress : bool or None, default=None
        True: a progress bar. False: nothing. None: report only long
        encodes on stderr (see :func:`skhftt.embedding.cache.encode_texts`).
    cache_dir : None, False or path-like, default=None
        Where text embeddings are cached (see
        :func:`skhftt.embedding.cache.encode_texts`): ``None`` the persistent
        user cache, a folder, or ``False`` this process only.
    name : str, default="X"
        How ``X`` is called in error messages.

    Returns
    -------
    ndarray of shape (n_samples, dim)
        float32 rows of unit L2 norm, in the order of ``X``.

    Raises
    ------
    FileNotFoundError
        A path that names no file; nothing is encoded then.
    ValueError
        An unreadable image, a URL, wrong-width or non-finite embeddings.
    TypeError
        Images or texts in precomputed mode, or items of unknown type.
    """
    items = _as_items(X, name)
    if items is None:
        return check_embeddings(X, dim=dim, name=name)
    if not items:
        raise ValueError(f"{name} is empty: expected at least one input.")
    is_texts = isinstance(items, Texts)
    if not is_texts and not any(_is_image(item) for item in items):
        return check_embeddings(items, dim=dim, name=name)
    if not is_texts:
        _check_images(items, name)
    if encoder is None:
        what = "texts" if is_texts else "images"
        raise TypeError(
            f"{name} contains {what}, but encoder='precomputed' expects a 2-D array of embeddings."
        )
    if is_texts:
        result = encode_texts(
            encoder,
            check_texts(list(items), name=name),
            batch_size=batch_size,
            show_progress=show_progress,
            cache_dir=cache_dir,
        )
    else:
        result = _encode_images(
            encoder, items, batch_size=batch_size, show_progress=show_progress, name=name
        )
    return check_embeddings(result, dim=dim, name=f"embeddings of {name}")
