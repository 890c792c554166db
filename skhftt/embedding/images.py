"""Image decoding: every image input becomes an RGB PIL image the same way.

:func:`load_image` is the one decoder of the package: the scoring methods,
the batch readers, the corruptions and the encoders all call it, so a file,
its bytes, the PIL image opened from it and the array of that image embed
identically. It accepts

* image file paths (``str`` or :class:`os.PathLike`), read whatever their name;
* encoded image bytes (``bytes``, ``bytearray``, ``memoryview``) or a binary
  file object, e.g. a tar member or a download;
* PIL images;
* numpy arrays of shape ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or
  ``(H, W, 4)``: uint8, uint16 (16-bit, scaled to 8 bits), bool, or floats
  in ``[0, 1]``;
* torch tensors ``(C, H, W)`` with C in 1, 3, 4, or ``(H, W)``: uint8 or
  floats in ``[0, 1]``.

Every image is converted the same way: EXIF orientation applied
(:func:`PIL.ImageOps.exif_transpose`); grayscale, palette, CMYK and 16-bit
images converted to 8-bit RGB; transparency composited over white (as
Transformers' CLIP processors do).

:data:`IMAGE_EXTENSIONS` is the package's one list of image file
extensions: the files ``skhftt score`` and ``skhftt explain`` pick up in a
folder, and the image members of a webdataset ``.tar``.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

__all__ = ["IMAGE_EXTENSIONS", "has_image_extension", "load_image"]

IMAGE_EXTENSIONS = frozenset(
    {
        ".avif", ".bmp", ".dib", ".gif", ".heic", ".heif", ".ico", ".j2k", ".jfif",
        ".jp2", ".jpe", ".jpeg", ".jpg", ".pbm", ".pgm", ".png", ".pnm", ".ppm",
        ".tga", ".tif", ".tiff", ".webp",
    }
)  # fmt: skip
"""Lower-case extensions (with the dot) of the image files skhftt reads.

Pillow reads all of them except HEIC/HEIF, which need the ``pillow-heif``
package, and AVIF before Pillow 11.3, which needs ``pillow-avif-plugin``;
installed plugins are used automatically. A listed file that cannot be
decoded is reported as an error for that file, never skipped silently.
"""

# Extensions whose decoder is an optional Pillow plugin: (module, pip package).
_PLUGINS = {
    ".heic": ("pillow_heif", "pillow-heif"),
    ".heif": ("pillow_heif", "pillow-heif"),
    ".avif": ("pillow_avif", "pillow-avif-plugin"),
}
_PLUGIN_LOCK = threading.Lock()
_plugins_registered = False
_ERRORS = ("raise", "return")


def has_image_extension(name: str | PathLike[str]) -> bool:
    """Whether ``name`` ends with one of :data:`IMAGE_EXTENSIONS` (any case).

    Examples
    --------
    >>> has_image_extension("photos/Cat.JPG"), has_image_extension("notes.txt")
    (True, False)
    """
    return os.path.splitext(os.fspath(name))[1].lower() in IMAGE_EXTENSIONS


def _register_plugins() -> bool:
    """Register the installed optional decoders once; True if any is new."""
    global _plugins_registered
    with _PLUGIN_LOCK:
        if _plugins_registered:
            return False
        _plugins_registered = True
        registered = False
        try:
            import pillow_heif
        except ImportError:
            pass
        else:
            pillow_heif.register_heif_opener()
            registered = True
        from PIL import features

        if not features.check("avif"):
            try:
                import pillow_avif  # noqa: F401  (registers itself on import)
            except ImportError:
                pass
            else:
                registered = True
        return registered


def _plugin_hint(name: str) -> str:
    """Say which package decodes ``name``'s format when it is an absent plugin."""
    extension = os.path.splitext(name)[1].lower()
    if extension not in _PLUGINS:
        return ""
    module, package = _PLUGINS[extension]
    if extension == ".avif":
        from PIL import features

        if features.check("avif"):
            return ""
    try:
        __import__(module)
    except ImportError:
        return f" ({extension} files need the {package} package: pip install {package})"
    return ""


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


def _pil_from_array(array: np.ndarray, *, source: str) -> Image:
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


def _pil_from_tensor(tensor: Any, *, source: str) -> Image:
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


def _to_rgb(image: Image, *, source: str) -> Image:
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


def _read(opener: Callable[[], Any]) -> Image:
    from PIL import Image

    with Image.open(opener()) as opened:
        opened.load()
    return opened


def _open(opener: Callable[[], Any], *, source: str, name: str) -> Image:
    """Open and fully decode an encoded image; ``opener()`` gives a path or a stream."""
    from PIL import Image, UnidentifiedImageError

    try:
        try:
            return _read(opener)
        except UnidentifiedImageError:
            # An optional decoder (HEIF, AVIF on old Pillow) may be installed but not registered.
            if not _register_plugins():
                raise
            return _read(opener)
    except UnidentifiedImageError as exc:
        raise ValueError(
            f"{source} is not a readable image: Pillow recognises no image format "
            f"in it, or it is corrupt{_plugin_hint(name)}."
        ) from exc
    except Image.DecompressionBombError as exc:
        raise ValueError(f"{source} is not decoded: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"{source} is not a readable image: {exc}") from exc


def _check_path(path: str | PathLike[str], *, source: str) -> str:
    expanded = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(expanded):
        what = "is a directory, not an image file" if os.path.isdir(expanded) else "not found"
        raise FileNotFoundError(f"{source} {what}.")
    return expanded


def _decode(item: Any, source: str | None) -> Image:
    from PIL import Image

    if isinstance(item, (str, PathLike)):
        source = source or f"image file {os.fspath(item)!r}"
        path = _check_path(item, source=source)
        return _to_rgb(_open(lambda: path, source=source, name=path), source=source)
    if isinstance(item, (bytes, bytearray, memoryview)):
        source = source or "image bytes"
        data = bytes(item)
        return _to_rgb(_open(lambda: io.BytesIO(data), source=source, name=""), source=source)
    if isinstance(item, Image.Image):
        return _to_rgb(item, source=source or "a PIL image")
    if isinstance(item, np.ndarray):
        source = source or "an image array"
        return _to_rgb(_pil_from_array(item, source=source), source=source)
    if is_tensor(item):
        source = source or "an image tensor"
        return _to_rgb(_pil_from_tensor(item, source=source), source=source)
    if hasattr(item, "read"):
        name = getattr(item, "name", None)
        name = os.fspath(name) if isinstance(name, (str, PathLike)) else ""
        source = source or (f"image stream {name!r}" if name else "an image stream")
        data = item.read()  # from where the stream stands; Pillow would rewind it
        return _to_rgb(_open(lambda: io.BytesIO(data), source=source, name=name), source=source)
    raise TypeError(
        f"{source or 'the item'} is {type(item).__name__}; expected an image path, image "
        "bytes, a PIL image, an (H, W[, C]) array or a (C, H, W) tensor."
    )


@overload
def load_image(
    item: Any, *, source: str | None = None, errors: Literal["raise"] = "raise"
) -> Image: ...


@overload
def load_image(
    item: Any, *, source: str | None = None, errors: Literal["return"]
) -> Image | Exception: ...


def load_image(
    item: Any, *, source: str | None = None, errors: Literal["raise", "return"] = "raise"
) -> Image | Exception:
    """Decode one image input into an RGB PIL image.

    Parameters
    ----------
    item : str, path-like, bytes, binary file, PIL image, ndarray or torch tensor
        A file path (read whatever its name), encoded image bytes or a binary
        file object, a PIL image, an array of shape ``(H, W[, C])`` or a tensor
        of shape ``(C, H, W)`` / ``(H, W)``.
    source : str, optional
        How to name the item in error messages, e.g. ``"X[3] (image file
        'a.jpg')"`` or ``"tar member 'x/0001.jpg'"``. By default the path, or
        the kind of item.
    errors : {"raise", "return"}, default="raise"
        What a bad item does. ``"raise"``: raise the error. ``"return"``:
        return the exception instead of raising it, for batch jobs that
        record the failure of one item and go on with the others.

    Returns
    -------
    PIL.Image.Image or Exception
        Mode ``"RGB"``, EXIF orientation applied, alpha composited over white.
        With ``errors="return"``, the exception (whose message names the item)
        when the item cannot be decoded.

    Raises
    ------
    FileNotFoundError
        A path that names no file (or a directory).
    ValueError
        A file or bytes that are not a readable image, or an array with an
        unusable shape or value range.
    TypeError
        An item of an unknown type.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((4, 6), dtype=np.uint8)).size
    (6, 4)
    >>> error = load_image("no-such-file.jpg", errors="return")
    >>> type(error).__name__, str(error)
    ('FileNotFoundError', "image file 'no-such-file.jpg' not found.")
    """
    if errors not in _ERRORS:
        raise ValueError(f"errors={errors!r} is not one of {list(_ERRORS)}.")
    if errors == "raise":
        return _decode(item, source)
    try:
        return _decode(item, source)
    except Exception as exc:  # any failure is this item's, never the job's
        return exc


def is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor, without importing torch."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def is_pil_image(value: object) -> bool:
    """Whether ``value`` is a PIL image, without importing PIL."""
    import sys

    pil_image = sys.modules.get("PIL.Image")
    return pil_image is not None and isinstance(value, pil_image.Image)
