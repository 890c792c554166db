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
           (list or fixed-size list of floats)
=========  ==================================================  ===============

The kind of an input is read from its extension, or for a folder from what
it holds: a folder with an ``img_emb`` subfolder is a clip-retrieval / LAION
embedding folder (``img_emb/img_emb_<n>.npy`` with ids from
``metadata/metadata_<n>.parquet``); a folder of ``.npy``, ``.parquet`` or
``.tar`` files is a folder of such shards; any other folder is a folder of
images.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from skhftt.embedding.inputs import IMAGE_EXTENSIONS

KINDS = ("images", "list", "tar", "npy", "parquet")
EMBEDDING_KINDS = frozenset({"npy", "parquet"})
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
DEFAULT_SHARD_SIZE = 10_000
_SUFFIXES = {
    "tar": frozenset({".tar"}),
    "npy": frozenset({".npy"}),
    "parquet": frozenset({".parquet"}),
    "list": LIST_EXTENSIONS,
}
_LAION_EMBEDDINGS = re.compile(r"^img_emb_(\d+)\.npy$")
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Shard:
    """One unit of a scoring job; it produces the output file ``<name>.parquet``.

    Parameters
    ----------
    kind : {"images", "list", "tar", "npy", "parquet"}
        How the shard is read.
    name : str
        Stem of the output file; unique within a job.
    path : str
        Absolute path of the input file; for ``"images"`` the folder the
        ``items`` are relative to.
    label : str
        The input as the user named it; ids of image files start with it.
    items : tuple of str, optional
        ``"images"``: the image files, relative to ``path``.
    span : tuple of (int, int), optional
        ``"list"``: byte offset of the first line and number of paths.
    metadata : str, optional
        ``"npy"``: a parquet file holding the ids of the rows, in order.
    embedding_column, id_column : str, optional
        Column names to use instead of the automatic choice.
    n_items : int, optional
        Number of rows, when known without reading the shard.
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

    @property
    def has_embeddings(self) -> bool:
        """True when the shard holds embeddings, i.e. needs no encoder."""
        return self.kind in EMBEDDING_KINDS

    def fingerprint(self) -> str:
        """Digest of what the shard reads: its description and its files' sizes and times."""
        described = asdict(self)
        described["files"] = [
            _stat_key(path) for path in (self.path, self.metadata) if path and self.items is None
        ]
        text = json.dumps(described, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _stat_key(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def natural_key(text: str) -> tuple[object, ...]:
    """Sort key that orders ``img_emb_2`` before ``img_emb_10``."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(text))


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _walk_images(folder: str) -> list[str]:
    """Image files below ``folder``, relative to it, in a stable order.

    Each folder's files come first, in natural order, then its subfolders,
    depth first. Linked folders are followed, each real folder once.
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
            if entry.is_dir():
                subfolders.append(child)
            elif _is_image(entry.name):
                found.append(child)
        pending.extend(reversed(subfolders))
    return found


def _chunks(total: int, size: int) -> Iterator[tuple[int, int, str]]:
    for index, start in enumerate(range(0, total, size)):
        yield start, min(start + size, total), f"{index:05d}"


def _image_shards(folder: str, label: str, items: Sequence[str], size: int, stem: str):
    for start, stop, suffix in _chunks(len(items), size):
        yield Shard(
            kind="images",
            name=f"{stem}-{suffix}",
            path=folder,
            label=label,
            items=tuple(items[start:stop]),
            n_items=stop - start,
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


def _file_shard(kind: str, path: Path, label: str, options: dict) -> Shard:
    absolute = path.resolve()
    shard = Shard(kind=kind, name=path.stem, path=str(absolute), label=label)
    if kind == "npy":
        from skhftt.batch.embeddings import NpyFile

        return replace(
            shard,
            metadata=_laion_metadata(absolute),
            id_column=options["id_column"],
            n_items=NpyFile.open(str(absolute)).shape[0],
        )
    if kind == "parquet":
        import pyarrow.parquet as pq

        return replace(
            shard,
            embedding_column=options["embedding_column"],
            id_column=options["id_column"],
            n_items=pq.read_metadata(absolute).num_rows,
        )
    return shard


def _shard_files(folder: Path, kind: str) -> list[Path]:
    if kind == "npy" and (folder / "img_emb").is_dir():
        folder = folder / "img_emb"
    files = [
        child
        for child in folder.iterdir()
        if child.suffix.lower() in _SUFFIXES[kind] and child.is_file()
    ]
    return sorted(files, key=lambda path: natural_key(path.name))


def _detect_folder_kind(folder: Path) -> str:
    """What a folder holds: LAION embeddings, one kind of shard file, or else images."""
    if (folder / "img_emb").is_dir():
        return "npy"
    kinds = {
        kind
        for child in folder.iterdir()
        for kind, suffixes in _SUFFIXES.items()
        if kind != "list" and child.suffix.lower() in suffixes and child.is_file()
    }
    if len(kinds) > 1:
        raise ValueError(
            f"folder {str(folder)!r} holds shards of several kinds ({', '.join(sorted(kinds))}); "
            "pass each kind separately, or choose one with kind=."
        )
    return kinds.pop() if kinds else "images"


def _folder_shards(folder: Path, label: str, kind: str | None, options: dict) -> list[Shard]:
    kind = kind or _detect_folder_kind(folder)
    if kind == "images":
        items = _walk_images(str(folder))
        if not items:
            raise ValueError(
                f"folder {label!r} contains no image files (searched recursively for "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))})."
            )
        return list(
            _image_shards(str(folder.resolve()), label, items, options["shard_size"], folder.name)
        )
    files = _shard_files(folder, kind)
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
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    kind: str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    embedding_column: str | None = None,
    id_column: str | None = None,
) -> list[Shard]:
    """Split scoring inputs into shards, in a deterministic order.

    Parameters
    ----------
    inputs : path or iterable of paths
        Folders, list files, ``.tar``, ``.npy`` or ``.parquet`` shards and
        image files, in any mix. Image files given directly are gathered
        into shards named ``images-<n>``.
    kind : {"images", "list", "tar", "npy", "parquet"}, optional
        Read every input as this kind instead of detecting it (see the
        module documentation). For a folder, the kind of the files in it.
    shard_size : int, default=10000
        Images per shard for folders, list files and loose image files.
    embedding_column : str, optional
        Name of the embedding column of parquet shards. By default the
        only column that holds lists of floats.
    id_column : str, optional
        Name of the id column of parquet shards and LAION metadata. By
        default the first of ``id``, ``key``, ``image_path``, ``url``
        present, if any.

    Returns
    -------
    list of Shard

    Raises
    ------
    FileNotFoundError
        An input that does not exist.
    ValueError
        An unknown kind, an input of unrecognisable kind, a folder without
        anything to score, or two inputs that would write the same output.
    """
    _check_kind(kind)
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int; got {shard_size!r}.")
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    options = {
        "shard_size": shard_size,
        "embedding_column": embedding_column,
        "id_column": id_column,
    }
    shards: list[Shard] = []
    loose: list[str] = []
    for item in inputs:
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
    shards.extend(_image_shards(os.getcwd(), "", loose, shard_size, "images"))
    _check_unique(shards)
    return shards


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {', '.join(KINDS)}, or None to detect it.")
