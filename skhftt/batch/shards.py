"""Inputs of a scoring job, split into shards: one output file per shard.

A *shard* is the unit of work, of output and of resumption. Every input
becomes one or more shards:

=========  ==================================================  ===============
kind       input                                               one shard per
=========  ==================================================  ===============
images     a folder (searched recursively) or image files      ``shard_size``
                                                               images
list       a text file with one image path per line            ``shard_size``
                                                               lines
tar        a webdataset-style ``.tar`` (members grouped by     file
           key; the key is the id)
npy        a 2-D ``.npy`` array of embeddings (float16/32),    file
           read block by block
parquet    a ``.parquet`` file with an embedding column        file
           (list or fixed-size list of floats), or with a
           column of encoded images (img2dataset's ``jpg``,
           a Hugging Face ``Image`` column), read row group by
           row group (see :mod:`skhftt.batch.formats`)
dataset    a Hugging Face ``datasets.Dataset`` (not a path)    ``shard_size``
           with an ``Image`` or an embedding column            rows
=========  ==================================================  ===============

The kind of an input is read from its extension, or for a folder from what
it holds. A folder with an ``img_emb`` subfolder is a clip-retrieval / LAION
embedding folder (``img_emb/img_emb_<n>.npy`` with ids from
``metadata/metadata_<n>.parquet``). Otherwise every file below it counts,
hidden ones too (linked folders are followed, each real folder once), by
its extension: ``.npy``, ``.parquet`` and ``.tar`` files are shards of that
kind; every other file is an image, except the *sidecars* of an image (a
file without an image extension whose name starts like an image's in the
same folder, up to the first dot: ``0001.txt`` and ``0001.json`` beside
``0001.jpg``), which belong to it as in a webdataset ``.tar``. So a file of an
unknown extension is read as an image, scored if it is one, and an error row
if not. A folder that holds files of several kinds is refused, naming them:
no input is ever dropped. With ``kind=`` the files of that kind are read
and the others left out, as asked.

A shard file that cannot be read (empty, garbage, not a regular file) does
not stop discovery: its shard carries the error, and fails alone when it is
scored.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sklearn.utils import gen_batches

from skhftt.batch.formats import NpyFile, holds_images, image_column, open_parquet, sample_key
from skhftt.embedding.images import IMAGE_EXTENSIONS

KINDS = ("images", "list", "tar", "npy", "parquet")
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
DEFAULT_SHARD_SIZE = 10_000
_SUFFIXES = {
    "tar": frozenset({".tar"}),
    "npy": frozenset({".npy"}),
    "parquet": frozenset({".parquet"}),
    "list": LIST_EXTENSIONS,
}
_FOLDER_SHARDS = ("npy", "parquet", "tar")
_LAION_EMBEDDINGS = re.compile(r"^img_emb_(\d+)\.npy$")
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Shard:
    """One unit of a scoring job; it produces the output file ``<name>.parquet``.

    Parameters
    ----------
    kind : {"images", "list", "tar", "npy", "parquet", "dataset"}
        How the shard is read.
    name : str
        Stem of the output file; unique within a job.
    path : str
        Absolute path of the input file; for ``"images"`` the folder the
        ``items`` are relative to; empty for ``"dataset"``.
    label : str
        The input as the user named it; ids of image files start with it.
    items : tuple of str, optional
        ``"images"``: the image files, relative to ``path``.
    span : tuple of (int, int), optional
        ``"list"``: byte offset of the first line and number of paths;
        ``"dataset"``: first row and number of rows.
    metadata : str, optional
        ``"npy"``: a parquet file holding the ids of the rows, in order.
    embedding_column, id_column : str, optional
        Column names to use instead of the automatic choice.
    n_items : int, optional
        Number of rows, when known without reading the shard.
    image_column : str, optional
        ``"parquet"`` and ``"dataset"``: the column of encoded images, when
        the shard holds images rather than embeddings.
    dataset : datasets.Dataset, optional
        ``"dataset"``: the dataset the rows are read from.
    error : str, optional
        Why the shard's file cannot be read, found when it was discovered;
        scoring the shard fails with this error, and the others go on.
    """

    kind: str
    name: str
    path: str
    label: str
    items: tuple[str, ...] | None = None
    span: tuple[int, int] | None = None
    metadata: str | None = None
    embedding_column: str | None = None
    id_column: str | None = None
    n_items: int | None = None
    image_column: str | None = None
    dataset: Any = field(default=None, compare=False, repr=False)
    error: str | None = None

    @property
    def has_embeddings(self) -> bool:
        """True when the shard holds embeddings, i.e. needs no encoder."""
        return self.kind == "npy" or (
            self.kind in ("parquet", "dataset") and self.image_column is None
        )

    def fingerprint(self) -> str:
        """Digest of what the shard reads: its description and its files' sizes and times.

        A dataset is known by its own fingerprint, which ``datasets`` derives
        from its files and the transforms applied to them.
        """
        described: dict[str, Any] = {
            item.name: getattr(self, item.name) for item in fields(self) if item.name != "dataset"
        }
        described["files"] = [
            _stat_key(path) for path in (self.path, self.metadata) if path and self.items is None
        ]
        if self.dataset is not None:
            described["dataset"] = self.dataset._fingerprint
        text = json.dumps(described, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:  # a shard that fails when scored: nothing to recognise
        return None
    return stat.st_size, stat.st_mtime_ns


def natural_key(text: str) -> tuple[object, ...]:
    """Sort key that orders ``img_emb_2`` before ``img_emb_10``."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))


def _walk(folder: str) -> list[str]:
    """Every file below ``folder`` (anything but a folder), relative to it, in a stable order.

    Each folder's files come first, in natural order, then its subfolders,
    depth first. Hidden files are included; linked folders are followed,
    each real folder once.
    """
    found: list[str] = []
    pending = [""]
    seen: set[str] = set()
    while pending:
        relative = pending.pop()
        real = os.path.realpath(os.path.join(folder, relative))
        if real in seen:
            continue
        seen.add(real)
        with os.scandir(real) as entries:
            ordered = sorted(entries, key=lambda entry: natural_key(entry.name))
        subfolders = []
        for entry in ordered:
            child = os.path.join(relative, entry.name) if relative else entry.name
            (subfolders if entry.is_dir() else found).append(child)
        pending.extend(reversed(subfolders))
    return found


def _kind_of(name: str) -> str | None:
    """A shard kind or ``"images"`` by extension; None for an unknown extension."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in IMAGE_EXTENSIONS:
        return "images"
    return next((kind for kind in _FOLDER_SHARDS if suffix in _SUFFIXES[kind]), None)


def _file_kinds(files: Sequence[str]) -> dict[str, list[str]]:
    """The files of a folder by kind: shards by extension, every other file an image,
    except the sidecars of images (see the module documentation)."""
    kinds = {name: _kind_of(name) for name in files}
    images = {sample_key(name)[0] for name, kind in kinds.items() if kind == "images"}
    by_kind: dict[str, list[str]] = {kind: [] for kind in ("images", *_FOLDER_SHARDS)}
    for name, kind in kinds.items():
        if kind is None and sample_key(name)[0] not in images:
            kind = "images"  # read as an image: scored if it is one, an error row if not
        if kind is not None:
            by_kind[kind].append(name)
    return by_kind


def _gather(items: Sequence[str], size: int) -> Iterator[tuple[slice, str]]:
    for index, rows in enumerate(gen_batches(len(items), size)):
        yield rows, f"{index:05d}"


def _image_shards(folder: str, label: str, items: Sequence[str], size: int, stem: str):
    for rows, suffix in _gather(items, size):
        yield Shard(
            kind="images",
            name=f"{stem}-{suffix}",
            path=folder,
            label=label,
            items=tuple(items[rows]),
            n_items=rows.stop - rows.start,
        )


def _list_shards(path: str, label: str, size: int) -> Iterator[Shard]:
    """Shards of ``size`` non-blank lines, located by byte offset (nothing kept in memory)."""
    stem = Path(path).stem
    start_offset, count, index, offset = 0, 0, 0, 0
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                if count == 0:
                    start_offset = offset
                count += 1
                if count == size:
                    yield _list_shard(path, label, stem, index, start_offset, count)
                    index, count = index + 1, 0
            offset += len(line)
    if count:
        yield _list_shard(path, label, stem, index, start_offset, count)


def _list_shard(path: str, label: str, stem: str, index: int, offset: int, count: int) -> Shard:
    return Shard(
        kind="list",
        name=f"{stem}-{index:05d}",
        path=path,
        label=label,
        span=(offset, count),
        n_items=count,
    )


def _laion_metadata(npy: Path) -> str | None:
    """``metadata/metadata_<n>.parquet`` beside ``img_emb/img_emb_<n>.npy``, if present."""
    match = _LAION_EMBEDDINGS.match(npy.name)
    if match is None:
        return None
    candidate = npy.parent.parent / "metadata" / f"metadata_{match.group(1)}.parquet"
    return str(candidate) if candidate.is_file() else None


def _content(schema: Any, label: str, options: dict) -> dict[str, str | None]:
    """The columns a table is read by: its images, or else its embeddings."""
    images = holds_images(schema, embedding_column=options["embedding_column"],
                          image_column=options["image_column"])
    return {
        "embedding_column": None if images else options["embedding_column"],
        "image_column": image_column(schema, options["image_column"], label) if images else None,
        "id_column": options["id_column"],
    }


def _file_shard(kind: str, path: Path, label: str, options: dict) -> Shard:
    """The shard of a file; a file that cannot be read gives a shard that carries why."""
    absolute = path.resolve()
    shard = Shard(kind=kind, name=path.stem, path=str(absolute), label=label)
    if not absolute.is_file():  # never open a FIFO or a device: it could block
        return replace(shard, error=f"{label!r} is not a regular file (a dangling link, a "
                                    "device, a pipe?)")
    try:
        if kind == "npy":
            return replace(
                shard,
                metadata=_laion_metadata(absolute),
                id_column=options["id_column"],
                n_items=NpyFile.open(str(absolute)).shape[0],
            )
        if kind == "parquet":
            handle = open_parquet(str(absolute))
            return replace(shard, n_items=handle.metadata.num_rows,
                           **_content(handle.schema_arrow, label, options))
    except (ValueError, OSError) as exc:  # this shard fails alone, when it is scored
        return replace(shard, error=str(exc))
    return shard


def _dataset_types() -> tuple[type, type, type] | None:
    """``datasets``' Dataset, DatasetDict and IterableDataset, if it has been imported.

    An object can only be a dataset if its module is loaded: checking
    ``sys.modules`` keeps ``datasets`` an optional dependency.
    """
    module = sys.modules.get("datasets")
    if module is None:
        return None
    return module.Dataset, module.DatasetDict, module.IterableDataset


def is_dataset(item: object) -> bool:
    """Whether ``item`` is a Hugging Face ``datasets.Dataset``."""
    types = _dataset_types()
    return types is not None and isinstance(item, types[0])


def _check_not_other_dataset(item: object) -> None:
    types = _dataset_types()
    if types is None:
        return
    if isinstance(item, types[1]):
        raise TypeError(
            f"a DatasetDict holds several splits ({', '.join(item)}); pass one of them, "
            "e.g. dataset['train']."
        )
    if isinstance(item, types[2]):
        raise TypeError(
            "a streaming IterableDataset cannot be split into resumable shards; load it with "
            "streaming=False, or score the parquet files it streams from."
        )


_UNSAFE = re.compile(r"[^\w.-]+")


def _dataset_label(dataset: Any) -> str:
    """``<name>-<split>`` of a dataset, as far as known, safe as a file name."""
    parts = [dataset.info.dataset_name, None if dataset.split is None else str(dataset.split)]
    label = "-".join(_UNSAFE.sub("_", part) for part in parts if part)
    return label or "dataset"


def _dataset_shards(dataset: Any, options: dict) -> list[Shard]:
    label = _dataset_label(dataset)
    if len(dataset) == 0:
        raise ValueError(f"dataset {label!r} has no rows.")
    content = _content(dataset.features.arrow_schema, label, options)
    return [
        Shard(kind="dataset", name=f"{label}-{suffix}", path="", label=label,
              span=(rows.start, rows.stop - rows.start), n_items=rows.stop - rows.start,
              dataset=dataset, **content)
        for rows, suffix in _gather(range(len(dataset)), options["shard_size"])
    ]


def _laion_files(folder: Path) -> list[Path]:
    files = [child for child in (folder / "img_emb").iterdir()
             if child.suffix.lower() == ".npy"]
    return sorted(files, key=lambda path: natural_key(path.name))


def _described(kind: str, names: list[str]) -> str:
    what = ("image file(s) (or files of other extensions, read as images)" if kind == "images"
            else f"{kind} shard(s)")
    shown = ", ".join(repr(name) for name in names[:3])
    return f"{len(names)} {what} ({shown}{', ...' if len(names) > 3 else ''})"


def _folder_shards(folder: Path, label: str, kind: str | None, options: dict) -> list[Shard]:
    if kind in (None, "npy") and (folder / "img_emb").is_dir():
        kind, files = "npy", _laion_files(folder)
    else:
        walked = _walk(str(folder))
        by_kind = _file_kinds(walked)
        if kind is None:
            found = [name for name, names in by_kind.items() if names]
            if len(found) > 1:
                raise ValueError(
                    f"folder {label!r} holds "
                    f"{' and '.join(_described(name, by_kind[name]) for name in found)}; "
                    "a folder is scored as one kind: pass the files of each kind "
                    "separately, or choose one kind with kind= (--kind), which leaves the "
                    "others out."
                )
            kind = found[0] if found else "images"
        if kind == "images":
            items = by_kind["images"]
            if not items:
                raise ValueError(f"folder {label!r} contains no image files (every file but "
                                 ".npy, .parquet and .tar shards is read as an image).")
            return list(_image_shards(str(folder.resolve()), label, items,
                                      options["shard_size"], folder.name))
        if kind == "list":
            by_kind[kind] = [name for name in walked
                             if os.path.splitext(name)[1].lower() in LIST_EXTENSIONS]
        files = [folder / name for name in by_kind[kind]]
    if not files:
        raise ValueError(
            f"folder {label!r} contains no {kind} shards (files ending in "
            f"{', '.join(sorted(_SUFFIXES[kind]))})."
        )
    return [shard for path in files for shard in _file_shards(path, str(path), kind, options)]


def _file_kind(path: Path, label: str) -> str:
    suffix = path.suffix.lower()
    for kind, suffixes in _SUFFIXES.items():
        if suffix in suffixes:
            return kind
    if suffix in IMAGE_EXTENSIONS:
        return "images"
    raise ValueError(
        f"cannot tell what kind of input {label!r} is from its extension {suffix!r}: "
        "expected a folder, an image, .npy, .parquet, .tar or a list file "
        f"({', '.join(sorted(LIST_EXTENSIONS))}); or name the kind (one of {', '.join(KINDS)})."
    )


def _file_shards(path: Path, label: str, kind: str, options: dict) -> list[Shard]:
    if kind != "list":
        return [_file_shard(kind, path, label, options)]
    shards = list(_list_shards(str(path.resolve()), label, options["shard_size"]))
    if not shards:
        raise ValueError(f"list file {label!r} contains no paths.")
    return shards


def _check_unique(shards: list[Shard]) -> None:
    seen: dict[str, Shard] = {}
    for shard in shards:
        other = seen.setdefault(shard.name, shard)
        if other is not shard:
            raise ValueError(
                f"inputs {other.label or other.path!r} and {shard.label or shard.path!r} would "
                f"both write {shard.name}.parquet; score them into separate output folders."
            )


def discover_shards(
    inputs: str | os.PathLike[str] | Any | Iterable[str | os.PathLike[str] | Any],
    *,
    kind: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    embedding_column: str | None = None,
    id_column: str | None = None,
    image_column: str | None = None,
) -> list[Shard]:
    """Split scoring inputs into shards, in a deterministic order.

    Parameters
    ----------
    inputs : path, datasets.Dataset, or iterable of them
        Folders, list files, ``.tar``, ``.npy`` or ``.parquet`` shards,
        image files and Hugging Face datasets, in any mix. Image files given
        directly are gathered into shards named ``images-<n>``; a dataset
        into shards named ``<dataset name>-<split>-<n>`` (``dataset-<n>``
        when it has neither).
    kind : {"images", "list", "tar", "npy", "parquet"}, optional
        Read every path as this kind instead of detecting it (see the
        module documentation). For a folder, the kind of the files in it.
    shard_size : int, default=10000
        Images per shard for folders, list files and loose image files;
        rows per shard for datasets.
    embedding_column : str, optional
        Name of the embedding column of parquet shards and datasets. By
        default the only column that holds lists of floats.
    id_column : str, optional
        Name of the id column of parquet shards, datasets and LAION
        metadata. By default the first of ``id``, ``key``, ``image_path``,
        ``url`` present, if any.
    image_column : str, optional
        Name of the column of encoded images of parquet shards and
        datasets. By default the only such column (see
        :mod:`skhftt.batch.formats`).

    Returns
    -------
    list of Shard

    Raises
    ------
    FileNotFoundError
        An input that does not exist.
    ValueError
        An unknown kind, an input of unrecognisable kind, a folder or table
        without anything to score, or two inputs that would write the same
        output.
    TypeError
        A ``DatasetDict`` or a streaming ``IterableDataset``.
    """
    _check_kind(kind)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int; got {shard_size!r}.")
    _check_not_other_dataset(inputs)
    if isinstance(inputs, (str, os.PathLike)) or is_dataset(inputs):
        inputs = [inputs]
    options = {
        "shard_size": shard_size,
        "embedding_column": embedding_column,
        "id_column": id_column,
        "image_column": image_column,
    }
    shards: list[Shard] = []
    loose: list[str] = []
    for item in inputs:
        _check_not_other_dataset(item)
        if is_dataset(item):
            shards.extend(_dataset_shards(item, options))
            continue
        label = os.fspath(item)
        path = Path(label).expanduser()
        if path.is_dir():
            shards.extend(_folder_shards(path, label, kind, options))
        elif not path.exists():
            raise FileNotFoundError(f"input {label!r} not found.")
        elif (kind or _file_kind(path, label)) == "images":
            loose.append(str(path))
        else:
            shards.extend(_file_shards(path, label, kind or _file_kind(path, label), options))
    if not shards and not loose:
        raise ValueError("no inputs to score: pass at least one folder or file.")
    if loose:
        shards.extend(_image_shards(os.getcwd(), "", loose, shard_size, "images"))
    _check_unique(shards)
    return shards


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {', '.join(KINDS)}, or None to detect it.")
