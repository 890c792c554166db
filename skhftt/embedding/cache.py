"""Text-embedding cache keyed by (encoder identity, text).

The encoder is frozen, so the embedding of a text never changes: each distinct
text is encoded once and reused by every later fit, fold, grid-search
candidate and -- on disk -- every later process. ``cache_dir`` selects the
store of :func:`encode_texts`:

* ``None`` (the default): the **persistent user cache**, the folder named by
  the environment variable ``SKHFTT_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/skhftt``, else ``~/.cache/skhftt``. It is used for
  encoders whose identity changes whenever their embeddings would
  (``encoder.stable_identity``: every skhftt backend loaded at a known
  revision or content digest); other encoders use the in-process store.
  ``SKHFTT_CACHE_DIR=off`` turns the persistent cache off for every process;
  a folder that cannot be written falls back to the in-process store with a
  warning.
* a folder: that folder, for every encoder.
* ``False``: the in-process store only.

**In process**: a module-level store per encoder identity, shared by every
detector in the process. Its total size is bounded (2 GiB by default); when a
new block would exceed the bound, the least recently used blocks are dropped.

**On disk**: one folder per encoder identity holding immutable, memory-mapped
``.npy`` shards. Several processes (e.g. the workers of
``GridSearchCV(n_jobs=2)``) may share it: encoding takes a file lock per
identity, so a text is encoded by one process only, and shards appear by
atomic renames, so readers never see a partial shard. The folder's total size
is bounded (10 GiB by default); least recently used shards are deleted first.

Limits are set with :func:`set_cache_limits` in one process, or with the
environment variables ``SKHFTT_CACHE_MEMORY_BYTES`` and
``SKHFTT_CACHE_DISK_BYTES`` for every process started after they are set
(worker processes included). :func:`cache_info` reports what each store
holds; :func:`clear_embedding_cache` empties them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from os import PathLike, fspath
from pathlib import Path

import numpy as np
from filelock import FileLock

from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.progress import progress

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_DISK_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "DISK_ENV",
    "MAX_SHARDS",
    "MEMORY_ENV",
    "STALE_SECONDS",
    "cache_info",
    "clear_embedding_cache",
    "default_cache_dir",
    "encode_texts",
    "get_cache_limits",
    "reset_cache_limits",
    "set_cache_limits",
]

DEFAULT_MEMORY_BYTES = 2 * 1024**3
DEFAULT_DISK_BYTES = 10 * 1024**3
MEMORY_ENV = "SKHFTT_CACHE_MEMORY_BYTES"
DISK_ENV = "SKHFTT_CACHE_DISK_BYTES"
CACHE_DIR_ENV = "SKHFTT_CACHE_DIR"
MAX_SHARDS = 64
"""Shards one encoder may have in a cache folder before the smallest are merged."""
STALE_SECONDS = 3600.0
"""Age after which a temporary file left by a killed process is deleted."""

_OFF = frozenset({"0", "off", "false", "no", "none"})
_ROW_BITS = 40
_ROW_MASK = (1 << _ROW_BITS) - 1
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1024,
    "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3,
    "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}  # fmt: skip
_limit_overrides: dict[str, int] = {}


# --------------------------------------------------------------------- limits


def _parse_bytes(value: object, *, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number of bytes; got {value!r}.")
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(
                f"{name}={value!r} is not a size; expected bytes as an int or a "
                "str such as '500MB' or '2GiB'."
            )
        number = int(float(match.group(1)) * _UNITS[unit])
    else:
        raise TypeError(
            f"{name} must be an int or a str such as '2GiB'; got "
            f"{type(value).__name__} ({value!r})."
        )
    if number < 0:
        raise ValueError(f"{name} must be >= 0 bytes; got {value!r}.")
    return number


def _limit(kind: str) -> int:
    if kind in _limit_overrides:
        return _limit_overrides[kind]
    env, default = (MEMORY_ENV, DEFAULT_MEMORY_BYTES)
    if kind == "disk":
        env, default = (DISK_ENV, DEFAULT_DISK_BYTES)
    raw = os.environ.get(env)
    return default if raw is None else _parse_bytes(raw, name=env)


def set_cache_limits(*, memory: int | str | None = None, disk: int | str | None = None) -> None:
    """Bound the text-embedding caches of this process.

    Parameters
    ----------
    memory : int or str, optional
        Most bytes of embeddings the in-process store keeps, e.g. ``2**31`` or
        ``"2GiB"``. ``0`` disables it. Least recently used blocks are dropped
        first. ``None`` leaves the current limit unchanged.
    disk : int or str, optional
        Most bytes a cache folder may hold, e.g. ``"10GB"``. Least recently
        used shards are deleted first. ``0`` keeps nothing on disk. ``None``
        leaves the current limit unchanged.

    Notes
    -----
    The limits apply to this process only, until :func:`reset_cache_limits`.
    Worker processes (``GridSearchCV`` with ``n_jobs > 1``, Dask workers)
    read the environment variables ``SKHFTT_CACHE_MEMORY_BYTES`` and
    ``SKHFTT_CACHE_DISK_BYTES`` instead; set those before starting the
    workers to bound every process. Defaults: 2 GiB in memory, 10 GiB on disk.

    Examples
    --------
    >>> set_cache_limits(memory="1GiB")
    >>> get_cache_limits()["memory"]
    1073741824
    >>> reset_cache_limits()
    """
    if memory is not None:
        _limit_overrides["memory"] = _parse_bytes(memory, name="memory")
        with _MEMORY.lock:
            _MEMORY.evict(_limit_overrides["memory"])
    if disk is not None:
        _limit_overrides["disk"] = _parse_bytes(disk, name="disk")


def reset_cache_limits() -> None:
    """Forget the limits set by :func:`set_cache_limits`.

    The environment variables ``SKHFTT_CACHE_MEMORY_BYTES`` and
    ``SKHFTT_CACHE_DISK_BYTES``, or the defaults, apply again.
    """
    _limit_overrides.clear()
    with _MEMORY.lock:
        _MEMORY.evict(_limit("memory"))


def get_cache_limits() -> dict[str, int]:
    """Return the cache limits in force, in bytes: ``{"memory": ..., "disk": ...}``."""
    return {"memory": _limit("memory"), "disk": _limit("disk")}


# -------------------------------------------------------------------- folders


def default_cache_dir() -> Path | None:
    """The folder of the persistent user cache, or None when it is turned off.

    ``$SKHFTT_CACHE_DIR`` when set (``off``, ``0`` or ``false`` turn the
    persistent cache off; an empty value counts as unset), else
    ``$XDG_CACHE_HOME/skhftt`` when ``XDG_CACHE_HOME`` is an absolute path,
    else ``~/.cache/skhftt``. The folder is created on first use.

    Examples
    --------
    >>> default_cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/skhftt')
    """
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value.lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path("~/.cache").expanduser()
    return base / "skhftt"


def _selected_root(cache_dir: object) -> Path | None:
    """The folder ``cache_dir`` selects (None: the in-process store)."""
    if cache_dir is False:
        return None
    if cache_dir is None:
        return default_cache_dir()
    if isinstance(cache_dir, (str, PathLike)) and not isinstance(cache_dir, bool):
        return Path(fspath(cache_dir)).expanduser()
    raise TypeError(
        f"cache_dir must be None (the persistent user cache), False (this process "
        f"only) or a folder; got {type(cache_dir).__name__} ({cache_dir!r})."
    )


def _usable_default(root: Path) -> Path | None:
    """``root`` if the default folder can be written, else None with a warning."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK | os.X_OK):
            raise PermissionError("no permission to write there")
    except OSError as exc:
        warnings.warn(
            f"The embedding cache folder {fspath(root)!r} cannot be used "
            f"({type(exc).__name__}: {exc}); embeddings are kept in this process "
            f"only. Set {CACHE_DIR_ENV} to a writable folder, or {CACHE_DIR_ENV}=off.",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    return root


def _store_root(cache_dir: object, encoder: object) -> Path | None:
    """The folder :func:`encode_texts` uses, or None for the in-process store."""
    root = _selected_root(cache_dir)
    if cache_dir is not None or root is None:
        return root
    if not getattr(encoder, "stable_identity", False):
        return None
    return _usable_default(root)


def cache_info(cache_dir: str | PathLike[str] | bool | None = None) -> dict[str, dict]:
    """What the in-process store and a cache folder hold.

    Parameters
    ----------
    cache_dir : None, False or path-like, default=None
        The folder to describe: ``None`` the persistent user cache
        (:func:`default_cache_dir`), a path that folder, ``False`` none.

    Returns
    -------
    dict
        ``{"memory": {"encoders", "texts", "bytes", "limit"}, "disk": {"path",
        "encoders", "texts", "bytes", "limit"}}``: per store, how many encoder
        identities and texts it holds, its size in bytes and its limit.
        ``disk["path"]`` is the folder, or None when none is selected.

    Examples
    --------
    >>> info = cache_info(False)
    >>> sorted(info), info["disk"]["path"] is None
    (['disk', 'memory'], True)
    """
    root = _selected_root(cache_dir)
    with _MEMORY.lock:
        memory = {
            "encoders": sum(1 for space in _MEMORY.spaces.values() if space.blocks),
            "texts": sum(len(space.index) for space in _MEMORY.spaces.values()),
            "bytes": _MEMORY.nbytes,
            "limit": _limit("memory"),
        }
    disk: dict[str, object] = {"path": None if root is None else fspath(root)}
    encoders = texts = nbytes = 0
    if root is not None and root.is_dir():
        for space in _space_dirs(root):
            encoders += 1
            for _, size, json_path in _shard_files(space):
                nbytes += size
                try:
                    texts += len(np.load(json_path.with_suffix(".npy"), mmap_mode="r"))
                except (OSError, ValueError):
                    continue
    disk.update(encoders=encoders, texts=texts, bytes=nbytes, limit=_limit("disk"))
    return {"memory": memory, "disk": disk}


def clear_embedding_cache(cache_dir: str | PathLike[str] | bool | None = None) -> None:
    """Empty the in-process store and delete the embeddings kept in a folder.

    After ``clear_embedding_cache(cache_dir)``, ``encode_texts(...,
    cache_dir=cache_dir)`` encodes every text again.

    Parameters
    ----------
    cache_dir : None, False or path-like, default=None
        ``None``: also delete the persistent user cache
        (:func:`default_cache_dir`). A path: also delete the embeddings of
        every encoder kept under it (other files there are left alone).
        ``False``: only forget what this process holds, files stay; the
        next read of a folder then sees it as a new process would.
    """
    _MEMORY.clear()
    with _DISK_LOCK:
        _DISK_SPACES.clear()
    root = _selected_root(cache_dir)
    if root is None or not root.is_dir():
        return
    with FileLock(root / ".lock"):
        for space_dir in _space_dirs(root):
            shutil.rmtree(space_dir, ignore_errors=True)


# ------------------------------------------------------------------- encoding


def encode_texts(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    show_progress: bool | None = None,
    cache_dir: str | PathLike[str] | bool | None = None,
) -> np.ndarray:
    """Embed ``texts`` with ``encoder``, reusing embeddings computed before.

    Only texts not cached yet reach the encoder, each distinct text once, in
    batches of ``batch_size``: memory holds the result plus one batch.

    Parameters
    ----------
    encoder : Encoder
        The model; its ``identity`` (model name and revision) keys the cache,
        so a different model or revision never reuses these embeddings.
    texts : sequence of str
        Texts to embed. Repeats are allowed and encoded once.
    batch_size : int, default=256
        Texts per call to ``encoder.encode_text``.
    show_progress : bool or None, default=None
        True: a progress bar over the texts being encoded. False: nothing.
        None: report only long encodes (10,000 texts or more not cached yet,
        or still running after 10 s) on stderr, as a progress bar on a
        terminal and as one line with the time left otherwise;
        ``SKHFTT_PROGRESS=off`` silences it.
    cache_dir : None, False or path-like, default=None
        ``None``: the persistent user cache (see :func:`default_cache_dir`)
        for an encoder with ``stable_identity``, the in-process store for
        others. A path: that folder, shared between processes (created if
        missing; ``~`` is expanded). ``False``: the in-process store only.

    Returns
    -------
    ndarray of shape (len(texts), encoder.dim), float32
        Row ``i`` embeds ``texts[i]``. The array may share memory with the
        cache and then is read-only: copy it before modifying it in place.

    Examples
    --------
    >>> class Toy:
    ...     identity, dim = "toy", 2
    ...     def encode_text(self, texts, *, batch_size=256, show_progress=False):
    ...         return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)
    >>> encode_texts(Toy(), ["a", "b", "a"]).shape
    (3, 2)
    """
    identity, dim = _encoder_key(encoder)
    texts = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int; got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    root = _store_root(cache_dir, encoder)
    if not texts:
        return np.empty((0, dim), dtype=np.float32)
    if root is None:
        return _MEMORY.encode(_Job(encoder, identity, dim, int(batch_size), show_progress), texts)
    kept = f" (kept in {fspath(root)!r} for later runs)"
    job = _Job(encoder, identity, dim, int(batch_size), show_progress, kept)
    return _disk_space(root, identity, dim).encode(job, texts)


def _encoder_key(encoder: object) -> tuple[str, int]:
    identity = getattr(encoder, "identity", None)
    dim = getattr(encoder, "dim", None)
    if not isinstance(identity, str) or not identity:
        raise TypeError(
            f"encoder must have a non-empty str 'identity' naming its model and "
            f"revision; {type(encoder).__name__} has identity={identity!r}."
        )
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise TypeError(
            f"encoder must have a positive int 'dim' (embedding width); "
            f"{type(encoder).__name__} has dim={dim!r}."
        )
    return identity, int(dim)


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a sequence of str, not one str: {texts!r}.")
    result = list(texts)
    for index, text in enumerate(result):
        if not isinstance(text, str):
            raise TypeError(
                f"texts must contain only str; item {index} is {type(text).__name__} ({text!r})."
            )
    return result


@dataclass
class _Job:
    """One call's encoder and options."""

    encoder: Encoder
    identity: str
    dim: int
    batch_size: int
    show_progress: bool | None
    where: str = ""

    def batches(self, texts: Sequence[str]) -> Iterable[tuple[int, np.ndarray]]:
        """Encode ``texts`` batch by batch; yield (start row, float32 batch)."""
        with progress(
            len(texts),
            what="texts",
            unit="text",
            show=self.show_progress,
            detail=f" with {self.identity!r}{self.where}",
        ) as update:
            for start in range(0, len(texts), self.batch_size):
                chunk = list(texts[start : start + self.batch_size])
                batch = self.encoder.encode_text(
                    chunk, batch_size=self.batch_size, show_progress=False
                )
                yield start, self._check_batch(batch, len(chunk))
                update(len(chunk))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode ``texts`` into one new array, batch by batch."""
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start, batch in self.batches(texts):
            out[start : start + len(batch)] = batch
        return out

    def _check_batch(self, batch: object, n_texts: int) -> np.ndarray:
        array = np.asarray(batch, dtype=np.float32)
        if array.shape != (n_texts, self.dim):
            raise ValueError(
                f"encoder {self.identity!r} returned an array of shape "
                f"{array.shape} for {n_texts} texts; expected ({n_texts}, "
                f"{self.dim}), its declared dim."
            )
        return array


def _assemble(
    texts: list[str],
    codes: np.ndarray,
    blocks: dict[int, np.ndarray],
) -> np.ndarray:
    """Gather rows ``codes`` (block id << 40 | row) from ``blocks`` in order.

    When every row comes, in order, from one contiguous stretch of one block,
    return a read-only view instead of a copy.
    """
    block_ids = codes >> _ROW_BITS
    rows = codes & _ROW_MASK
    first = int(block_ids[0])
    if (block_ids == first).all() and (np.diff(rows) == 1).all():
        start = int(rows[0])
        view = np.asarray(blocks[first][start : start + len(texts)])
        view.flags.writeable = False
        return view
    dim = next(iter(blocks.values())).shape[1]
    out = np.empty((len(texts), dim), dtype=np.float32)
    for block_id in np.unique(block_ids):
        where = np.flatnonzero(block_ids == block_id)
        out[where] = blocks[int(block_id)][rows[where]]
    return out


def _locate(index: dict[str, int], texts: list[str]) -> np.ndarray:
    return np.fromiter((index.get(text, -1) for text in texts), np.int64, len(texts))


def _missing(texts: list[str], codes: np.ndarray) -> list[str]:
    return list(dict.fromkeys(texts[i] for i in np.flatnonzero(codes < 0)))


def _point_missing(
    codes: np.ndarray, texts: list[str], block_id: int, new_texts: list[str]
) -> None:
    """Point the missing entries of ``codes`` at block ``block_id`` of ``new_texts``."""
    where = np.flatnonzero(codes < 0)
    if len(where) == len(new_texts):  # no repeats: new_texts is texts[where], in order
        codes[where] = (block_id << _ROW_BITS) | np.arange(len(where), dtype=np.int64)
        return
    rows = {text: row for row, text in enumerate(new_texts)}
    codes[where] = [(block_id << _ROW_BITS) | rows[texts[i]] for i in where]


# ------------------------------------------------------------ in-process store


@dataclass
class _Block:
    """Embeddings of the texts encoded by one call."""

    space: str
    texts: list[str]
    embeddings: np.ndarray
    last_used: int


@dataclass
class _Space:
    """Everything cached in process for one encoder identity."""

    dim: int
    index: dict[str, int] = field(default_factory=dict)
    blocks: dict[int, _Block] = field(default_factory=dict)


class _MemoryStore:
    """The module-level in-process cache, bounded in bytes, LRU by block."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.spaces: dict[str, _Space] = {}
        self.nbytes = 0
        self._ids = itertools.count()
        self._clock = itertools.count()

    def encode(self, job: _Job, texts: list[str]) -> np.ndarray:
        with self.lock:
            space = self._space(job.identity, job.dim)
            codes = _locate(space.index, texts)
            new_texts = _missing(texts, codes)
            blocks = {bid: block.embeddings for bid, block in space.blocks.items()}
            if new_texts:
                new = job.encode(new_texts)
                new.flags.writeable = False
                block_id = self._add(job.identity, space, new_texts, new)
                blocks[block_id] = new
                _point_missing(codes, texts, block_id, new_texts)
            for block_id in np.unique(codes >> _ROW_BITS):
                if int(block_id) in space.blocks:
                    space.blocks[int(block_id)].last_used = next(self._clock)
            return _assemble(texts, codes, blocks)

    def _space(self, identity: str, dim: int) -> _Space:
        space = self.spaces.setdefault(identity, _Space(dim))
        if space.dim != dim:
            raise ValueError(
                f"The in-process cache holds embeddings of width {space.dim} for "
                f"encoder identity {identity!r}, but the encoder now has dim {dim}: "
                "an encoder's identity must change whenever its model changes. "
                "Call skhftt.embedding.cache.clear_embedding_cache() to drop the old ones."
            )
        return space

    def _add(self, identity: str, space: _Space, texts: list[str], new: np.ndarray) -> int:
        """Store ``new`` if it fits the limit; return its block id either way."""
        block_id = next(self._ids)
        limit = _limit("memory")
        if new.nbytes > limit:
            return block_id
        self.evict(limit - new.nbytes)
        space.blocks[block_id] = _Block(identity, texts, new, next(self._clock))
        for row, text in enumerate(texts):
            space.index[text] = (block_id << _ROW_BITS) | row
        self.nbytes += new.nbytes
        return block_id

    def clear(self) -> None:
        """Drop everything."""
        with self.lock:
            self.spaces.clear()
            self.nbytes = 0

    def evict(self, budget: int) -> None:
        """Drop least recently used blocks until at most ``budget`` bytes remain."""
        if self.nbytes <= budget:
            return
        candidates = sorted(
            (
                (block.last_used, bid, block)
                for space in self.spaces.values()
                for bid, block in space.blocks.items()
            ),
            key=lambda item: item[0],
        )
        for _, block_id, block in candidates:
            if self.nbytes <= budget:
                break
            space = self.spaces[block.space]
            del space.blocks[block_id]
            for text in block.texts:
                if space.index.get(text, -1) >> _ROW_BITS == block_id:
                    del space.index[text]
            self.nbytes -= block.embeddings.nbytes
            if not space.blocks:
                del self.spaces[block.space]


_MEMORY = _MemoryStore()


# --------------------------------------------------------------- on-disk store


def _space_name(identity: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", identity).strip("._")[:64]
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return f"{slug}-{digest}"


def _space_dirs(root: Path) -> list[Path]:
    return [path for path in root.iterdir() if (path / "identity.json").is_file()]


@dataclass
class _Shard:
    """One committed shard: texts (``<name>.json``) and embeddings (``.npy``)."""

    texts: list[str]
    embeddings: np.ndarray


class _DiskSpace:
    """One encoder identity's folder inside a cache directory.

    Files: ``identity.json`` (identity and width), ``.lock`` (held while
    encoding), and shards ``<name>.npy`` + ``<name>.json``. A shard is written
    under ``tmp-`` names, then renamed: first the ``.npy``, then the ``.json``,
    whose presence commits it. Shards are never modified; eviction and
    compaction delete the ``.json`` first. Readers take no lock.
    """

    def __init__(self, root: Path, identity: str, dim: int) -> None:
        self.root = root
        self.path = root / _space_name(identity)
        self.identity = identity
        self.dim = dim
        self.lock = threading.RLock()
        self.index: dict[str, int] = {}
        self.shards: dict[int, _Shard] = {}
        self.names: dict[str, int] = {}
        self._ids = itertools.count()
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_identity()

    def _write_identity(self) -> None:
        marker = self.path / "identity.json"
        if marker.is_file():
            try:
                stored = json.loads(marker.read_text("utf-8"))
            except (OSError, ValueError):
                stored = None
            if isinstance(stored, dict) and stored.get("dim") not in (None, self.dim):
                raise ValueError(
                    f"The cache folder {fspath(self.path)!r} holds embeddings of "
                    f"width {stored['dim']} for encoder identity {self.identity!r}, "
                    f"but the encoder now has dim {self.dim}: an encoder's identity "
                    "must change whenever its model changes. Delete that folder, "
                    "or call skhftt.embedding.cache.clear_embedding_cache(cache_dir)."
                )
            if isinstance(stored, dict):
                return
        payload = json.dumps({"identity": self.identity, "dim": self.dim}, indent=1)
        _atomic_write(marker, payload.encode("utf-8"))

    # -- reading

    def refresh(self) -> None:
        """Load shards committed by any process since the last look."""
        committed = {
            entry.name[: -len(".json")]
            for entry in os.scandir(self.path)
            if entry.name.endswith(".json")
            and entry.name != "identity.json"
            and not entry.name.startswith("tmp-")
        }
        for name in [name for name in self.names if name not in committed]:
            self._drop(name)
        for name in sorted(committed - self.names.keys()):
            shard = self._load(name)
            if shard is not None:
                shard_id = next(self._ids)
                self.names[name] = shard_id
                self.shards[shard_id] = shard
                for row, text in enumerate(shard.texts):
                    self.index[text] = (shard_id << _ROW_BITS) | row

    def _load(self, name: str) -> _Shard | None:
        try:
            texts = json.loads((self.path / f"{name}.json").read_text("utf-8"))
            embeddings = np.load(self.path / f"{name}.npy", mmap_mode="r")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warnings.warn(
                f"Skipping unreadable cache shard {fspath(self.path / name)!r}: "
                f"{exc}. Its texts will be encoded again.",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        if (
            not isinstance(texts, list)
            or embeddings.dtype != np.float32
            or embeddings.shape != (len(texts), self.dim)
        ):
            warnings.warn(
                f"Skipping cache shard {fspath(self.path / name)!r}: it does not "
                f"hold {self.dim}-wide float32 rows matching its texts.",
                RuntimeWarning,
                stacklevel=4,
            )
            return None
        return _Shard(texts, embeddings)

    def _drop(self, name: str) -> None:
        shard_id = self.names.pop(name)
        shard = self.shards.pop(shard_id)
        for text in shard.texts:
            if self.index.get(text, -1) >> _ROW_BITS == shard_id:
                del self.index[text]

    def _touch(self, codes: np.ndarray) -> None:
        """Mark the shards just read as recently used (their ``.json`` mtime)."""
        used = {int(shard_id) for shard_id in np.unique(codes >> _ROW_BITS)}
        for name, shard_id in self.names.items():
            if shard_id in used:
                try:
                    os.utime(self.path / f"{name}.json")
                except OSError:
                    pass

    # -- encoding

    def encode(self, job: _Job, texts: list[str]) -> np.ndarray:
        with self.lock:
            self._ensure_folder()
            self.refresh()
            codes = _locate(self.index, texts)
            blocks = self._blocks()
            if (codes < 0).any():
                with FileLock(self.path / ".lock"):
                    self.refresh()
                    codes = _locate(self.index, texts)
                    blocks = self._blocks()
                    new_texts = _missing(texts, codes)
                    if new_texts:
                        fresh_id = next(self._ids)
                        blocks[fresh_id] = self._encode_missing(job, new_texts)
                        _point_missing(codes, texts, fresh_id, new_texts)
            self._touch(codes)
            return _assemble(texts, codes, blocks)

    def _blocks(self) -> dict[int, np.ndarray]:
        return {shard_id: shard.embeddings for shard_id, shard in self.shards.items()}

    def _ensure_folder(self) -> None:
        """Recreate the folder if it was cleared since this process last looked."""
        if not (self.path / "identity.json").is_file():
            for name in list(self.names):
                self._drop(name)
            self.path.mkdir(parents=True, exist_ok=True)
            self._write_identity()

    def _encode_missing(self, job: _Job, new_texts: list[str]) -> np.ndarray:
        """Encode ``new_texts`` into a new shard; return its embeddings.

        The shard is streamed to disk batch by batch and returned memory-mapped.
        When it alone would exceed the disk limit it is kept in memory instead.
        """
        payload = json.dumps(new_texts).encode("utf-8")
        header = {
            "descr": "<f4",
            "fortran_order": False,
            "shape": (len(new_texts), job.dim),
        }
        limit = _limit("disk")
        if len(payload) + len(new_texts) * job.dim * 4 > limit:
            return job.encode(new_texts)
        name = uuid.uuid4().hex
        tmp_npy = self.path / f"tmp-{name}.npy"
        tmp_json = self.path / f"tmp-{name}.json.part"
        try:
            with open(tmp_npy, "wb") as handle:
                np.lib.format.write_array_header_1_0(handle, header)
                for _, batch in job.batches(new_texts):
                    handle.write(np.ascontiguousarray(batch, dtype="<f4").tobytes())
            tmp_json.write_bytes(payload)
            return _commit(self.root, self.path, name, limit)
        finally:
            tmp_npy.unlink(missing_ok=True)
            tmp_json.unlink(missing_ok=True)


def _atomic_write(path: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary name, then rename it to ``path``."""
    target = path.with_name(f"tmp-{uuid.uuid4().hex}-{path.name}.part")
    with open(target, "wb") as handle:
        handle.write(payload)
    os.replace(target, path)


def _commit(root: Path, space: Path, name: str, limit: int) -> np.ndarray:
    """Publish shard ``name`` of ``space``, then bound the whole cache folder.

    Returns the new shard's embeddings, memory-mapped.
    """
    npy, json_path = space / f"{name}.npy", space / f"{name}.json"
    with FileLock(root / ".lock"):
        os.replace(space / f"tmp-{name}.npy", npy)
        os.replace(space / f"tmp-{name}.json.part", json_path)
        embeddings = np.load(npy, mmap_mode="r")
        _compact(space, keep=json_path)
        _evict(root, limit, keep=json_path)
    return embeddings


def _shard_files(space: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes, ``.json`` path) of every committed shard in ``space``."""
    shards = []
    for entry in os.scandir(space):
        if (
            entry.name.endswith(".json")
            and entry.name != "identity.json"
            and not entry.name.startswith("tmp-")
        ):
            json_path = Path(entry.path)
            try:
                npy_size = json_path.with_suffix(".npy").stat().st_size
                info = entry.stat()
                shards.append((info.st_mtime, info.st_size + npy_size, json_path))
            except FileNotFoundError:
                continue
    return shards


def _delete_shard(json_path: Path) -> None:
    for path in (json_path, json_path.with_suffix(".npy")):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            continue


def _is_stale_leftover(entry: os.DirEntry[str], space: Path, now: float) -> bool:
    """A temporary file or uncommitted ``.npy`` untouched for an hour."""
    orphan = (
        entry.name.endswith(".npy") and not (space / f"{entry.name[: -len('.npy')]}.json").exists()
    )
    if not (orphan or entry.name.startswith("tmp-")):
        return False
    try:
        return now - entry.stat().st_mtime > STALE_SECONDS
    except FileNotFoundError:
        return False


def _evict(root: Path, limit: int, *, keep: Path) -> None:
    """Delete least recently used shards until ``root`` holds at most ``limit``."""
    now = time.time()
    shards = []
    for space in _space_dirs(root):
        for entry in os.scandir(space):
            if _is_stale_leftover(entry, space, now):
                Path(entry.path).unlink(missing_ok=True)
        shards.extend(_shard_files(space))
    total = sum(size for _, size, _ in shards)
    for _, size, json_path in sorted(shards, key=lambda shard: shard[0]):
        if total <= limit:
            break
        if json_path == keep:
            continue
        _delete_shard(json_path)
        total -= size


def _compact(space: Path, *, keep: Path) -> None:
    """Merge the smallest shards when ``space`` holds more than ``MAX_SHARDS``."""
    shards = sorted(
        (shard for shard in _shard_files(space) if shard[2] != keep),
        key=lambda shard: shard[1],
    )
    if len(shards) < MAX_SHARDS:
        return
    merge = [json_path for _, _, json_path in shards[: len(shards) - MAX_SHARDS // 2]]
    texts: list[str] = []
    arrays = []
    merged = []
    for json_path in merge:
        try:
            shard_texts = json.loads(json_path.read_text("utf-8"))
            array = np.load(json_path.with_suffix(".npy"), mmap_mode="r")
        except (OSError, ValueError):
            continue
        if array.ndim == 2 and len(array) == len(shard_texts):
            texts.extend(shard_texts)
            arrays.append(array)
            merged.append(json_path)
    if not arrays:
        return
    name = uuid.uuid4().hex
    tmp_npy = space / f"tmp-{name}.npy"
    width = arrays[0].shape[1]
    header = {"descr": "<f4", "fortran_order": False, "shape": (len(texts), width)}
    with open(tmp_npy, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        for array in arrays:
            handle.write(np.ascontiguousarray(array, dtype="<f4").tobytes())
    os.replace(tmp_npy, space / f"{name}.npy")
    payload = json.dumps(texts).encode("utf-8")
    _atomic_write(space / f"{name}.json", payload)
    for json_path in merged:
        _delete_shard(json_path)


_DISK_LOCK = threading.Lock()
_DISK_SPACES: dict[Path, _DiskSpace] = {}


def _disk_space(root: Path, identity: str, dim: int) -> _DiskSpace:
    if root.exists() and not root.is_dir():
        raise ValueError(f"cache_dir={fspath(root)!r} exists and is not a directory.")
    root.mkdir(parents=True, exist_ok=True)
    key = root.resolve() / _space_name(identity)
    with _DISK_LOCK:
        space = _DISK_SPACES.get(key)
        if space is None or space.dim != dim or not space.path.is_dir():
            space = _DiskSpace(root.resolve(), identity, dim)
            _DISK_SPACES[key] = space
        return space
