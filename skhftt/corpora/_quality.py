"""Low-quality images as a task: defect descriptions, and synthetic defects to check them.

The task texts describe the **defects** (blur, compression artifacts, noise,
bad exposure, ...), not clean images. A clean photograph can show anything,
and "anything" is what the world corpus already covers, so a task of clean
images would have no region of its own; a defect is a property that texts
can name independently of the content. Images that match the task are the
low-quality ones: remove the **+1s** (``unwanted="match"``).

:func:`skhftt.evaluation.corrupt_image` applies the same defects to clean
images, for a labelled check set.
"""

from __future__ import annotations

from collections.abc import Sequence

from skhftt.space.validation import check_texts

# Concept -> neutral captions of an image with that defect. One task column each.
_LOW_QUALITY_PROMPTS: dict[str, tuple[str, ...]] = {
    "blurry": (
        "a blurry photo.",
        "a blurred image where no detail is sharp.",
        "a very blurry picture.",
        "a soft, smeared photo without sharp edges.",
    ),
    "out of focus": (
        "an out-of-focus photo.",
        "a photo where the camera missed focus.",
        "a defocused picture with fuzzy shapes.",
    ),
    "motion blur": (
        "a photo with motion blur.",
        "a photo smeared by camera shake.",
        "a picture with streaks from movement during the exposure.",
    ),
    "jpeg artifacts": (
        "a photo with heavy JPEG compression artifacts.",
        "a blocky, over-compressed image.",
        "a low-quality JPEG with visible square blocks and color banding.",
    ),
    "noisy": (
        "a noisy photo.",
        "a grainy photo full of noise.",
        "a picture covered in random colored speckles of sensor noise.",
    ),
    "pixelated": (
        "a pixelated image.",
        "a low-resolution photo enlarged until the pixels show.",
        "a picture made of large square pixels.",
    ),
    "overexposed": (
        "an overexposed photo.",
        "a washed-out photo with blown-out highlights.",
        "a picture that is far too bright.",
    ),
    "underexposed": (
        "an underexposed photo.",
        "a photo that is too dark to see much.",
        "a dark, murky picture with crushed shadows.",
    ),
    "low contrast": (
        "a low-contrast photo.",
        "a flat, hazy, faded picture.",
        "a dull grey image with no contrast.",
    ),
    "glitched": (
        "a corrupted image with glitch artifacts.",
        "a glitched picture with shifted horizontal bands.",
        "a damaged image file with broken, displaced rows of pixels.",
    ),
}


def low_quality_task(concepts: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Return low-quality image detection as an HFTT task: defect -> captions.

    The task describes the defects, so images that match it are the
    low-quality ones: remove the +1s (``predict(X) == 1``, or
    ``unwanted="match"`` in :class:`skhftt.removal.rules.RemovalRule` and
    :class:`skhftt.detectors.composite.Concept`).

    Parameters
    ----------
    concepts : sequence of str, optional
        Keep only these defects, in this order. ``None`` (default) keeps all
        ten: ``"blurry"``, ``"out of focus"``, ``"motion blur"``,
        ``"jpeg artifacts"``, ``"noisy"``, ``"pixelated"``,
        ``"overexposed"``, ``"underexposed"``, ``"low contrast"``,
        ``"glitched"``.

    Returns
    -------
    dict of str to list of str
        Defect name -> three or four neutral captions of an image with that
        defect. A detector turns each defect into one task column, the
        re-normalised mean of its caption embeddings. The lists are fresh
        copies: changing them changes nothing here.

    Raises
    ------
    ValueError
        If ``concepts`` is empty, repeats a name or names an unknown defect.

    See Also
    --------
    skhftt.evaluation.make_corruption_set : The same defects applied to images,
        for a labelled check set.

    Examples
    --------
    >>> task = low_quality_task()
    >>> list(task)[:3]
    ['blurry', 'out of focus', 'motion blur']
    >>> low_quality_task(["noisy"])["noisy"][0]
    'a noisy photo.'
    """
    if concepts is None:
        names = list(_LOW_QUALITY_PROMPTS)
    else:
        names = check_texts(concepts, name="concepts")
        unknown = [name for name in names if name not in _LOW_QUALITY_PROMPTS]
        if unknown:
            raise ValueError(
                f"unknown defect {unknown[0]!r}; the defects are {list(_LOW_QUALITY_PROMPTS)}."
            )
        if len(set(names)) != len(names):
            raise ValueError(f"concepts must be distinct; got {names!r}.")
    return {name: list(_LOW_QUALITY_PROMPTS[name]) for name in names}
