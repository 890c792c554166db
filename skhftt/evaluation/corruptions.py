"""Synthetic image defects: labelled check sets for low-quality detectors.

:func:`corrupt_image` applies the defects that
:func:`skhftt.corpora.low_quality_task` describes in text to clean images, and
:func:`make_corruption_set` makes a labelled check set (clean vs corrupted)
from images one already has, to measure a detector or to calibrate its
removal threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any

import numpy as np

from skhftt.embedding.images import load_image

__all__ = ["CORRUPTIONS", "corrupt_image", "make_corruption_set"]

# Per kind, the parameter at severities 1..5. Lengths in pixels are for a
# 224-pixel short side (CLIP's input) and scale with the image.
_BLUR_RADIUS = (1.0, 2.0, 3.0, 4.5, 6.0)
_MOTION_LENGTH = (5, 9, 15, 21, 31)
_JPEG_QUALITY = (25, 15, 10, 7, 5)
_NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
_PIXEL_SIDE = (64, 48, 32, 24, 16)
_OVER_GAIN = (1.5, 1.8, 2.2, 2.7, 3.5)
_UNDER_GAIN = (0.5, 0.35, 0.25, 0.15, 0.08)
_CONTRAST = (0.6, 0.45, 0.3, 0.2, 0.1)
_GLITCH_BANDS = (2, 4, 6, 9, 12)
_REFERENCE_SIDE = 224


def _pixels(image: Any) -> np.ndarray:
    return np.asarray(image, dtype=np.float64) / 255.0


def _from_pixels(values: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8))


def _scale(image: Any) -> float:
    return min(image.size) / _REFERENCE_SIDE


def _blurry(image: Any, level: int, rng: np.random.Generator) -> Any:
    from PIL import ImageFilter

    return image.filter(ImageFilter.GaussianBlur(_BLUR_RADIUS[level] * _scale(image)))


def _motion_blur(image: Any, level: int, rng: np.random.Generator) -> Any:
    from scipy.ndimage import uniform_filter1d

    length = max(2, round(_MOTION_LENGTH[level] * _scale(image)))
    return _from_pixels(uniform_filter1d(_pixels(image), length, axis=1, mode="nearest"))


def _jpeg_artifacts(image: Any, level: int, rng: np.random.Generator) -> Any:
    from io import BytesIO

    from PIL import Image

    buffer = BytesIO()
    image.save(buffer, format="JPEG", quality=_JPEG_QUALITY[level])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def _noisy(image: Any, level: int, rng: np.random.Generator) -> Any:
    values = _pixels(image)
    return _from_pixels(values + _NOISE_SIGMA[level] * rng.standard_normal(values.shape))


def _pixelated(image: Any, level: int, rng: np.random.Generator) -> Any:
    from PIL import Image

    factor = max(1.0, min(image.size) / _PIXEL_SIDE[level])
    small = (max(1, round(image.width / factor)), max(1, round(image.height / factor)))
    return image.resize(small, Image.Resampling.BOX).resize(image.size, Image.Resampling.NEAREST)


def _overexposed(image: Any, level: int, rng: np.random.Generator) -> Any:
    return _from_pixels(_pixels(image) * _OVER_GAIN[level])


def _underexposed(image: Any, level: int, rng: np.random.Generator) -> Any:
    return _from_pixels(_pixels(image) * _UNDER_GAIN[level])


def _low_contrast(image: Any, level: int, rng: np.random.Generator) -> Any:
    values = _pixels(image)
    mean = values.mean()
    return _from_pixels(mean + _CONTRAST[level] * (values - mean))


def _glitched(image: Any, level: int, rng: np.random.Generator) -> Any:
    from PIL import Image

    values = np.asarray(image).copy()
    height, width = values.shape[:2]
    for _ in range(_GLITCH_BANDS[level]):
        top = int(rng.integers(0, height))
        rows = slice(top, top + int(rng.integers(1, max(2, height // 10))))
        band = np.roll(values[rows], int(rng.integers(-width // 3, width // 3 + 1)), axis=1)
        values[rows] = band[:, :, rng.permutation(3)]
    return Image.fromarray(values)


_CORRUPTIONS: dict[str, Callable[[Any, int, np.random.Generator], Any]] = {
    "blurry": _blurry,
    "motion blur": _motion_blur,
    "jpeg artifacts": _jpeg_artifacts,
    "noisy": _noisy,
    "pixelated": _pixelated,
    "overexposed": _overexposed,
    "underexposed": _underexposed,
    "low contrast": _low_contrast,
    "glitched": _glitched,
}

CORRUPTIONS: tuple[str, ...] = tuple(_CORRUPTIONS)
"""The kinds :func:`corrupt_image` applies (defects of the low-quality task texts)."""


def corrupt_image(
    image: Any,
    kind: str,
    *,
    severity: int = 3,
    random_state: int | np.random.Generator | None = None,
) -> Any:
    """Apply one synthetic defect to an image.

    With clean images of one's own, this makes a labelled check set for a
    low-quality detector: the clean images (``y = 0``) against their
    corrupted copies (``y = 1``). Synthetic defects are a proxy: real
    low-quality images mix defects and come from real cameras and codecs.

    ========================  ==================================================
    kind                      what it does (severity 1 to 5)
    ========================  ==================================================
    ``"blurry"``              Gaussian blur, radius 1 to 6 px
    ``"motion blur"``         horizontal box blur, 5 to 31 px long
    ``"jpeg artifacts"``      JPEG re-encoding at quality 25 to 5
    ``"noisy"``               additive Gaussian noise, sigma 0.08 to 0.38
                              (pixel values in [0, 1])
    ``"pixelated"``           box-downscaled to a short side of 64 to 16 px,
                              enlarged back with nearest-neighbour sampling
    ``"overexposed"``         pixel values times 1.5 to 3.5, clipped
    ``"underexposed"``        pixel values times 0.5 to 0.08
    ``"low contrast"``        contrast around the mean scaled by 0.6 to 0.1
    ``"glitched"``            2 to 12 horizontal bands shifted sideways, their
                              colour channels permuted
    ========================  ==================================================

    Lengths in pixels are for an image whose short side is 224 pixels
    (CLIP's input size) and scale with the image, so a defect looks the same
    after the encoder resizes it.

    Parameters
    ----------
    image : str, path-like, PIL image, ndarray or torch tensor
        Any image :func:`skhftt.embedding.images.load_image` reads; it is converted
        to RGB first.
    kind : str
        One of :data:`CORRUPTIONS` (listed above).
    severity : int, default=3
        From 1 (mild) to 5 (strong).
    random_state : int, numpy Generator or None, default=None
        Seeds the random defects (``"noisy"``, ``"glitched"``).

    Returns
    -------
    PIL.Image.Image
        A new RGB image of the same size.

    Raises
    ------
    ValueError
        An unknown ``kind`` or a ``severity`` outside 1 to 5.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.full((48, 64, 3), 128, dtype=np.uint8)
    >>> corrupt_image(image, "underexposed", severity=5).getpixel((0, 0))
    (10, 10, 10)
    """
    _check_kind(kind)
    level = _check_severity(severity)
    rng = np.random.default_rng(random_state)
    return _CORRUPTIONS[kind](load_image(image, source="image"), level, rng)


def _check_kind(kind: object) -> None:
    if kind not in _CORRUPTIONS:
        raise ValueError(f"unknown corruption kind {kind!r}; the kinds are {list(CORRUPTIONS)}.")


def _check_severity(severity: object) -> int:
    """Index 0..4 of a severity 1..5."""
    if isinstance(severity, bool) or not isinstance(severity, Integral) or not 1 <= severity <= 5:
        raise ValueError(f"severity must be an int from 1 to 5; got {severity!r}.")
    return int(severity) - 1


def make_corruption_set(
    clean: Sequence[Any],
    *,
    kinds: Sequence[str] | None = None,
    severity: int = 3,
    random_state: int | np.random.Generator | None = None,
) -> tuple[list[Any], np.ndarray, list[str]]:
    """A labelled check set: clean images and one corrupted copy of each per defect.

    Use it to measure a low-quality detector, or to calibrate its removal
    threshold, on images like one's own. Everything is held in memory: a few
    hundred clean images at a time.

    Parameters
    ----------
    clean : sequence of images
        Clean images, in any form :func:`corrupt_image` reads.
    kinds : sequence of str, optional
        Defects to apply, from :data:`CORRUPTIONS`; ``None`` (default) applies
        all of them.
    severity : int, default=3
        From 1 (mild) to 5 (strong), for every copy.
    random_state : int, numpy Generator or None, default=None
        Seeds the random defects.

    Returns
    -------
    images : list of PIL.Image.Image
        The clean images (as RGB) first, then, defect by defect, one copy of
        each clean image: ``len(clean) * (1 + len(kinds))`` images.
    y : ndarray of shape (n_images,), int
        0 for a clean image, 1 for a corrupted copy: the task's side of
        :func:`~skhftt.corpora.low_quality_task` is 1, as :func:`~skhftt.evaluation.ood_metrics`
        expects.
    image_kinds : list of str
        ``"clean"`` or the defect of each image.

    Examples
    --------
    >>> import numpy as np
    >>> images, y, image_kinds = make_corruption_set(
    ...     [np.zeros((32, 32, 3), np.uint8)], kinds=["noisy", "pixelated"], random_state=0)
    >>> y.tolist(), image_kinds
    ([0, 1, 1], ['clean', 'noisy', 'pixelated'])
    """
    chosen = list(CORRUPTIONS if kinds is None else kinds)
    if isinstance(kinds, str) or not chosen:
        raise ValueError(f"kinds must be a non-empty list of corruption kinds; got {kinds!r}.")
    for kind in chosen:
        _check_kind(kind)
    originals = [load_image(image, source=f"clean image {index}")
                 for index, image in enumerate(clean)]
    if not originals:
        raise ValueError("clean is empty: expected at least one clean image.")
    level = _check_severity(severity)
    rng = np.random.default_rng(random_state)
    images, image_kinds = list(originals), ["clean"] * len(originals)
    for kind in chosen:
        images.extend(_CORRUPTIONS[kind](image, level, rng) for image in originals)
        image_kinds.extend([kind] * len(originals))
    return images, np.array([kind != "clean" for kind in image_kinds], dtype=int), image_kinds
