"""ImageNet-1k class names, WordNet ids and the 80 CLIP prompt templates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from typing import Literal, NamedTuple

from skhftt.corpora._world import _split_template
from skhftt.space.validation import check_texts


class ImageNetClasses(NamedTuple):
    """The 1000 ImageNet-1k classes in canonical order.

    Attributes
    ----------
    names : list of str
        Readable class names (the curated names of the CLIP zero-shot
        evaluation), e.g. ``"tench"``, ``"great white shark"``. Two names
        occur twice ("missile", "sunglasses"), as in the source list.
    wnids : list of str
        WordNet ids, e.g. ``"n01440764"``: the folder names of the ImageNet
        train/val directories. ``wnids[i]`` is class index ``i``.
    """

    names: list[str]
    wnids: list[str]


def _read_lines(name: str) -> tuple[str, ...]:
    text = (resources.files("skhftt.corpora") / "data" / name).read_text("utf-8")
    return tuple(line for line in text.splitlines() if line.strip())


@lru_cache(maxsize=1)
def _imagenet_data() -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    names = _read_lines("imagenet_classnames.txt")
    wnids = tuple(line.split()[0] for line in _read_lines("imagenet_wnids.txt"))
    templates = _read_lines("imagenet_templates.txt")
    return names, wnids, templates


def imagenet_classes() -> ImageNetClasses:
    """Return the ImageNet-1k class names and WordNet ids, in class-index order.

    Returns
    -------
    ImageNetClasses
        A named tuple ``(names, wnids)`` of two lists of 1000 str.

    Examples
    --------
    >>> names, wnids = imagenet_classes()
    >>> names[0], wnids[0]
    ('tench', 'n01440764')
    >>> len(names)
    1000
    """
    names, wnids, _ = _imagenet_data()
    return ImageNetClasses(list(names), list(wnids))


def imagenet_templates() -> list[str]:
    """Return the 80 CLIP prompt templates for ImageNet, each with one ``{}``.

    Examples
    --------
    >>> templates = imagenet_templates()
    >>> len(templates), templates[0]
    (80, 'a bad photo of a {}.')
    """
    return list(_imagenet_data()[2])


def templated_task(names: Iterable[str], templates: Sequence[str] | str) -> dict[str, list[str]]:
    """Expand class names into prompts: one task item per class.

    Parameters
    ----------
    names : iterable of str
        Class names. They must be distinct, since they become the keys.
    templates : str or sequence of str
        One template or several, each with exactly one ``{}`` slot.

    Returns
    -------
    dict of str to list of str
        ``name -> [template.format(name) for template in templates]``, in the
        order of ``names``. A detector turns each class into one task column,
        the re-normalised mean of its prompt embeddings.

    Examples
    --------
    >>> templated_task(["cat", "dog"], ["a photo of a {}.", "a drawing of a {}."])
    ... # doctest: +NORMALIZE_WHITESPACE
    {'cat': ['a photo of a cat.', 'a drawing of a cat.'],
     'dog': ['a photo of a dog.', 'a drawing of a dog.']}
    """
    names = check_texts(names, name="names")
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ValueError(f"names must be distinct; repeated: {repeated[:5]!r}.")
    return _expand(names, names, _check_templates(templates))


def _check_templates(templates: Sequence[str] | str) -> list[tuple[str, str]]:
    templates = [templates] if isinstance(templates, str) else list(templates)
    if not templates:
        raise ValueError("templates is empty: expected at least one template.")
    return [_split_template(template) for template in templates]


def _expand(
    keys: Sequence[str], names: Sequence[str], templates: list[tuple[str, str]]
) -> dict[str, list[str]]:
    return {
        key: [f"{prefix}{name}{suffix}" for prefix, suffix in templates]
        for key, name in zip(keys, names, strict=True)
    }


def imagenet_task(
    templates: Literal["all"] | Sequence[str] | str = "all",
    *,
    key: Literal["name", "wnid"] = "name",
) -> dict[str, list[str]]:
    """Return ImageNet-1k as an HFTT task: 1000 classes, each with its prompts.

    Parameters
    ----------
    templates : "all", str or sequence of str, default="all"
        ``"all"`` uses the 80 CLIP templates (:func:`imagenet_templates`).
        Otherwise one template or a list of templates, each with one ``{}``.
    key : {"name", "wnid"}, default="name"
        What the keys of the result are. ``"name"`` gives readable class
        names; the two names that occur twice in the source list
        ("missile", "sunglasses") get their WordNet id appended, e.g.
        ``"missile (n03773504)"``, so that the task keeps all 1000 classes.
        ``"wnid"`` keys by WordNet id (the ImageNet folder names).

    Returns
    -------
    dict of str to list of str
        1000 entries in class-index order. The prompts always use the plain
        class name, e.g. ``"a bad photo of a tench."``.

    Examples
    --------
    >>> task = imagenet_task()
    >>> len(task), len(task["tench"])
    (1000, 80)
    >>> imagenet_task(["a photo of a {}."], key="wnid")["n01440764"]
    ['a photo of a tench.']
    """
    names, wnids, all_templates = _imagenet_data()
    chosen = _check_templates(
        all_templates if isinstance(templates, str) and templates == "all" else templates
    )
    if key == "wnid":
        keys = list(wnids)
    elif key == "name":
        counts = Counter(names)
        keys = [
            name if counts[name] == 1 else f"{name} ({wnid})"
            for name, wnid in zip(names, wnids, strict=True)
        ]
    else:
        raise ValueError(f"key must be 'name' or 'wnid'; got {key!r}.")
    return _expand(keys, names, chosen)
