"""User inputs -> embeddings: the single entry point every scoring method uses.

Wherever skhftt expects images it accepts a sequence of any of:

* image file paths: ``str`` or :class:`os.PathLike` (``pathlib.Path``);
* PIL images;
* numpy arrays of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
  ``(H, W, 4)``: uint8, uint16 (16-bit, scaled to 8 bits), bool, or floats in
  ``[0, 1]``; also one 4-D array ``(N, H, W, C)``;
* torch tensors ``(C, H, W)`` with C in 1, 3, 4, or ``(H, W)``: uint8 or
  floats in ``[0, 1]``; also one 4-D tensor ``(N, C, H, W)``;
* texts (embedded by the text tower: the space is joint);

or a 2-D float array (or tensor) of precomputed embeddings of width ``dim``.
A 2-D uint8, uint16 or bool array is refused: it looks like one grayscale
image, so pass ``[image]``. A 3-D array is refused as ambiguous (one colour
image, or several grayscale ones?).

Every image becomes an RGB PIL image the same way, whatever its form:
EXIF orientation applied (:func:`PIL.ImageOps.exif_transpose`); grayscale,
palette, CMYK and 16-bit images converted to 8-bit RGB; transparency
composited over white (as Transformers' CLIP processors do). So a file, the
PIL image opened from it and the array of that image embed identically.

How a ``str`` is read
---------------------
A plain ``str`` item is an **image path** when

1. it names an existing file, or
2. it looks like a path: it has no line break and it ends with an image
   file extension (``.jpg``, ``.png``, ``.webp``, ... any case), or starts
   with ``/``, ``~/``, ``./``, ``../`` or a drive (``C:\\``), or contains
   ``/`` or ``\\`` and no whitespace.

Otherwise it is a **text**. A path-like string that does not exist raises
:class:`FileNotFoundError` naming it; it is never embedded as text. Wrap a
sequence in :class:`Texts` or :class:`ImagePaths` to override the rule:
``Texts(["AC/DC", "photo.jpg"])`` embeds both as texts,
``ImagePaths(["scan_0001"])`` reads an extension-less file. URLs are
refused (skhftt reads local files only). A sequence may mix texts and
images; each is embedded by its own tower and the rows keep the input
order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from os import PathLike
from typing import Any

import numpy as np

from skhftt.embedding.cache import encode_texts
from skhftt.embedding.encoders.base import Encoder
from skhftt.space.validation import check_embeddings, check_texts

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImagePaths",
    "Texts",
    "is_image_path",
    "load_image",
    "looks_like_path",
    "to_embeddings",
]

IMAGE_EXTENSIONS = frozenset(
    {
        ".bmp", ".dib", ".gif", ".ico", ".jfif", ".jp2", ".j2k", ".jpe", ".jpeg",
        ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm", ".tga", ".tif", ".tiff",
        ".webp", ".avif", ".heic", ".heif",
    }
)  # fmt: skip
_PATH_START = re.compile(r"^(~[\w.-]*[/\\]|\.{1,2}[/\\]|[/\\]|[A-Za-z]:[/\\])")
_MAX_DECODE_THREADS = 8


class Texts(list):
    """A sequence of texts, embedded as texts whatever they look like.

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
        if isinstance(texts, str):
            raise TypeError(f"Texts takes a sequence of texts, not a single string: {texts!r}.")
        items = list(texts)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(
                    f"Texts item {index} is {type(item).__name__} ({item!r:.80}); expected a str."
                )
        super().__init__(items)

    def __repr__(self) -> str:
        return f"Texts({list.__repr__(self)})"


class ImagePaths(list):
    """A sequence of image file paths, read as images whatever they look like.

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


def looks_like_path(text: str) -> bool:
    """Whether a string that is not an existing file reads as a path (rule 2)."""
    if "\n" in text or "\r" in text:
        return False
    if os.path.splitext(text)[1].lower() in IMAGE_EXTENSIONS:
        return True
    if _PATH_START.match(text):
        return True
    return ("/" in text or "\\" in text) and not any(c.isspace() for c in text)


def is_image_path(text: str) -> bool:
    """Apply the str rule: True for an image path, False for a text.

    Raises
    ------
    FileNotFoundError
        ``text`` looks like a path but names no existing file.
    """
    expanded = os.path.expanduser(text)
    if os.path.isfile(expanded):
        return True
    if not looks_like_path(text):
        return False
    if text.startswith(("http://", "https://")):
        raise ValueError(
            f"{text!r} is a URL; skhftt reads local image files only. Download "
            "the images first, or wrap the sequence in skhftt.embedding.inputs.Texts to "
            "embed it as text."
        )
    what = "a directory, not an image file" if os.path.isdir(expanded) else "not found"
    raise FileNotFoundError(
        f"Image file {text!r} {what}. A string that looks like a path is read as "
        "an image path; wrap the sequence in skhftt.embedding.inputs.Texts to embed such "
        "strings as texts."
    )


def _check_path(path: str | PathLike[str]) -> str:
    expanded = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(expanded):
        what = "is a directory, not an image file" if os.path.isdir(expanded) else "not found"
        raise FileNotFoundError(f"Image file {os.fspath(path)!r} {what}.")
    return expanded


def _array_to_uint8(array: np.ndarray, *, source: str) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if array.size and not (np.isfinite(array).all() and 0 <= array.min() and array.max() <= 1):
            raise ValueError(
                f"{source} is a float image with values outside [0, 1] (min "
                f"{np.nanmin(array):.4g}, max {np.nanmax(array):.4g}); float images "
                "must be scaled to [0, 1], or pass uint8 values 0-255."
            )
        return np.round(array * 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.size and (array.min() < 0 or array.max() > 255):
            raise ValueError(
                f"{source} has {array.dtype} values outside 0-255 (min {array.min()}, "
                f"max {array.max()}); pass uint8, uint16 (16-bit) or floats in [0, 1]."
            )
        return array.astype(np.uint8)
    raise TypeError(f"{source} has dtype {array.dtype}; expected uint8, uint16, bool or float.")


def _pil_from_array(array: np.ndarray, *, source: str) -> Any:
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(
            f"{source} has shape {array.shape}; expected an image of shape (H, W), "
            "(H, W, 1), (H, W, 3) or (H, W, 4)."
        )
    if min(array.shape[:2]) == 0:
        raise ValueError(f"{source} has shape {array.shape}: an image without pixels.")
    return Image.fromarray(np.ascontiguousarray(_array_to_uint8(array, source=source)))


def _pil_from_tensor(tensor: Any, *, source: str) -> Any:
    if tensor.ndim == 3:
        if tensor.shape[0] not in (1, 3, 4):
            raise ValueError(
                f"{source} is a tensor of shape {tuple(tensor.shape)}; image tensors "
                "must be channels-first (C, H, W) with C in 1, 3, 4, or (H, W)."
            )
        tensor = tensor.permute(1, 2, 0)
    elif tensor.ndim != 2:
        raise ValueError(
            f"{source} is a tensor of shape {tuple(tensor.shape)}; expected (C, H, W) or (H, W)."
        )
    return _pil_from_array(tensor.detach().cpu().numpy(), source=source)


def _to_rgb(image: Any, *, source: str) -> Any:
    from PIL import ExifTags, Image, ImageOps

    if image.getexif().get(ExifTags.Base.Orientation, 1) != 1:
        image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode.startswith("I") or mode == "F":
        array = np.asarray(image)
        if mode != "F":
            array = np.clip(array, 0, 65535).astype(np.uint16)
        return _pil_from_array(array, source=source).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except ValueError as exc:
        raise ValueError(f"{source} has image mode {mode!r}, which has no RGB form.") from exc


def load_image(item: Any, *, source: str | None = None) -> Any:
    """Decode one image input into an RGB PIL image.

    Parameters
    ----------
    item : str, path-like, PIL image, ndarray or torch tensor
        A file path (read whatever it looks like), a PIL image, an array of
        shape ``(H, W[, C])`` or a tensor of shape ``(C, H, W)`` / ``(H, W)``.
    source : str, optional
        How to name the item in error messages.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"``, EXIF orientation applied, alpha composited over white.

    Raises
    ------
    FileNotFoundError
        A path that names no file.
    ValueError
        A file that is not a readable image, or an array with an unusable
        shape or value range.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(item, (str, PathLike)):
        path = _check_path(item)
        source = source or f"image file {os.fspath(item)!r}"
        try:
            with Image.open(path) as opened:
                opened.load()
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"{source} is not a readable image: {exc}") from exc
        return _to_rgb(opened, source=source)
    if isinstance(item, Image.Image):
        return _to_rgb(item, source=source or "a PIL image")
    if isinstance(item, np.ndarray):
        source = source or "an image array"
        return _to_rgb(_pil_from_array(item, source=source), source=source)
    if _is_tensor(item):
        source = source or "an image tensor"
        return _to_rgb(_pil_from_tensor(item, source=source), source=source)
    raise TypeError(
        f"{source or 'the item'} is {type(item).__name__}; expected an image path, a "
        "PIL image, an (H, W[, C]) array or a (C, H, W) tensor."
    )


def _is_tensor(value: Any) -> bool:
    torch = _torch_if_imported()
    return torch is not None and isinstance(value, torch.Tensor)


def _torch_if_imported() -> Any:
    import sys

    return sys.modules.get("torch")


def _is_pil(value: Any) -> bool:
    import sys

    pil_image = sys.modules.get("PIL.Image")
    return pil_image is not None and isinstance(value, pil_image.Image)


def _as_items(X: object, name: str) -> list[Any] | None:
    """``X`` as a list of per-sample inputs, or None when it is an embedding matrix."""
    if isinstance(X, (str, bytes, PathLike)) or _is_pil(X):
        raise TypeError(
            f"{name} must be a sequence of inputs, not a single "
            f"{type(X).__name__}: wrap it in a list."
        )
    if isinstance(X, (Texts, ImagePaths)):
        return X
    if isinstance(X, np.ndarray) or _is_tensor(X):
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
        items = list(X)
    elif hasattr(X, "__array__"):
        if getattr(X, "ndim", None) != 1 or not hasattr(X, "tolist"):
            return None
        items = X.tolist()
    elif isinstance(X, Iterable):
        items = list(X)
    else:
        return None
    return items


def _is_input(item: Any) -> bool:
    return isinstance(item, (str, PathLike)) or _is_pil(item) or _is_image_array(item)


def _is_image_array(item: Any) -> bool:
    if isinstance(item, np.ndarray):
        return item.ndim >= 2
    return _is_tensor(item) and item.ndim >= 2


def _classify(items: Sequence[Any], name: str) -> tuple[list[int], list[int]]:
    """Split item indices into (texts, images), applying the str rule."""
    text_rows: list[int] = []
    image_rows: list[int] = []
    forced_texts = isinstance(items, Texts)
    forced_paths = isinstance(items, ImagePaths)
    for index, item in enumerate(items):
        if forced_texts:
            text_rows.append(index)
        elif forced_paths or isinstance(item, PathLike):
            try:
                _check_path(item)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"{name}[{index}]: {exc}") from None
            image_rows.append(index)
        elif isinstance(item, str):
            try:
                (image_rows if is_image_path(item) else text_rows).append(index)
            except (FileNotFoundError, ValueError) as exc:
                raise type(exc)(f"{name}[{index}]: {exc}") from None
        elif _is_pil(item) or _is_image_array(item):
            image_rows.append(index)
        else:
            raise TypeError(
                f"{name}[{index}] is {type(item).__name__} ({item!r:.80}); expected an "
                "image path, a PIL image, an (H, W[, C]) array, a (C, H, W) tensor "
                "or a text."
            )
    return text_rows, image_rows


def _load_indexed(item: Any, index: int, name: str, transform: Any) -> Any:
    source = f"{name}[{index}]"
    if isinstance(item, (str, PathLike)):
        source = f"{source} (image file {os.fspath(item)!r})"
    image = load_image(item, source=source)
    return image if transform is None else transform(image)


def _pixel_transform(encoder: Encoder) -> Any:
    """The encoder's picklable image preprocessing, when it offers one."""
    if not (hasattr(encoder, "pixel_transform") and hasattr(encoder, "encode_pixels")):
        return None
    return encoder.pixel_transform()


def _encode_images(
    encoder: Encoder,
    items: list[Any],
    rows: list[int],
    *,
    batch_size: int,
    show_progress: bool,
    name: str,
) -> np.ndarray:
    """Decode and embed images in chunks, preparing the next chunk meanwhile.

    Threads decode the images (and, when the encoder offers
    ``pixel_transform``/``encode_pixels``, also run its preprocessing; PIL
    and numpy release the GIL for both) one chunk ahead of the model.
    """
    import torch
    from tqdm.auto import tqdm

    transform = _pixel_transform(encoder)

    chunks = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]
    threads = max(1, min(_MAX_DECODE_THREADS, os.cpu_count() or 1))
    results = []
    with (
        ThreadPoolExecutor(max_workers=threads) as pool,
        tqdm(total=len(rows), disable=not show_progress, desc="Images", unit="img") as bar,
    ):

        def submit(chunk: list[int]) -> list[Future[Any]]:
            return [pool.submit(_load_indexed, items[i], i, name, transform) for i in chunk]

        pending = submit(chunks[0])
        for position in range(len(chunks)):
            images = [future.result() for future in pending]
            if position + 1 < len(chunks):
                pending = submit(chunks[position + 1])
            if transform is None:
                results.append(encoder.encode_image(images, batch_size=batch_size))
            else:
                results.append(encoder.encode_pixels(torch.stack(images)))
            bar.update(len(images))
    return np.concatenate(results)


def to_embeddings(
    X: object,
    *,
    encoder: Encoder | None,
    dim: int | None,
    batch_size: int = 256,
    show_progress: bool = False,
    cache_dir: str | PathLike[str] | None = None,
    name: str = "X",
) -> np.ndarray:
    """Turn ``X`` into unit float32 embeddings of width ``dim``.

    Parameters
    ----------
    X : sequence of images or texts, or array-like of shape (n_samples, dim)
        Image paths, PIL images, arrays, tensors, texts (see the module
        documentation for the rule that tells a path from a text, and the
        :class:`Texts` / :class:`ImagePaths` wrappers), or precomputed
        embeddings.
    encoder : Encoder or None
        The model. ``None`` means precomputed mode: ``X`` must already be
        embeddings.
    dim : int or None
        Expected width; ``None`` accepts any.
    batch_size : int, default=256
        Texts or images per encoder call. Images are decoded one chunk of
        this size ahead, in threads, while the previous chunk is embedded.
    show_progress : bool, default=False
        Show a progress bar.
    cache_dir : str or path-like, optional
        On-disk text-embedding cache.
    name : str, default="X"
        How ``X`` is called in error messages.

    Returns
    -------
    ndarray of shape (n_samples, dim)
        float32 rows of unit L2 norm, in the order of ``X``.

    Raises
    ------
    FileNotFoundError
        A path (or path-like string) that names no file.
    ValueError
        An unreadable image, wrong-width or non-finite embeddings.
    TypeError
        Images or texts in precomputed mode, or items of unknown type.
    """
    items = _as_items(X, name)
    if items is None:
        return check_embeddings(X, dim=dim, name=name)
    if not items:
        raise ValueError(f"{name} is empty: expected at least one input.")
    if not any(_is_input(item) for item in items):
        return check_embeddings(items, dim=dim, name=name)
    text_rows, image_rows = _classify(items, name)
    if encoder is None:
        what = "texts" if text_rows else "images"
        raise TypeError(
            f"{name} contains {what}, but encoder='precomputed' expects a 2-D array of embeddings."
        )
    parts: list[tuple[list[int], np.ndarray]] = []
    if text_rows:
        texts = check_texts([items[i] for i in text_rows], name=name)
        embeddings = encode_texts(
            encoder,
            texts,
            batch_size=batch_size,
            show_progress=show_progress,
            cache_dir=cache_dir,
        )
        parts.append((text_rows, embeddings))
    if image_rows:
        embeddings = _encode_images(
            encoder,
            items,
            image_rows,
            batch_size=batch_size,
            show_progress=show_progress,
            name=name,
        )
        parts.append((image_rows, embeddings))
    if len(parts) == 1:
        result = parts[0][1]
    else:
        width = parts[0][1].shape[1]
        result = np.empty((len(items), width), dtype=np.float32)
        for rows, embeddings in parts:
            result[rows] = embeddings
    return check_embeddings(result, dim=dim, name=f"embeddings of {name}")
