"""Text-embedding cache keyed by (encoder identity, text), kept in SQLite.

The encoder is frozen, so each distinct text is encoded once and reused by
every later fit, fold and grid-search candidate and -- on disk -- by every
later process and machine. ``cache_dir`` selects the store (see
:func:`encode_texts`): the persistent user cache (:func:`default_cache_dir`),
a folder, or ``False`` for this process only.

A folder holds one SQLite database, ``embeddings.sqlite``, in write-ahead-log
mode: readers never wait; each encoded batch is committed as it comes (a
killed process loses at most its current batch); a lock file per encoder
identity makes concurrent processes encode each text once. The file is
self-contained: it can be copied to another machine, or mounted there
read-only. The in-process store is a private temporary database of the same
form. A store past its limit (:func:`set_cache_limits`) deletes the blocks of
embeddings used least recently.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.progress import progress
from skhftt.space.validation import check_texts

__all__ = [
    "CACHE_DIR_ENV",
    "DEFAULT_DISK_BYTES",
    "DEFAULT_MEMORY_BYTES",
    "DISK_ENV",
    "FILE_NAME",
    "MEMORY_ENV",
    "cache_info",
    "clear_embedding_cache",
    "default_cache_dir",
    "encode_texts",
    "get_cache_limits",
    "known_encoder",
    "reset_cache_limits",
    "set_cache_limits",
]

DEFAULT_MEMORY_BYTES = 2 * 1024**3
DEFAULT_DISK_BYTES = 10 * 1024**3
MEMORY_ENV = "SKHFTT_CACHE_MEMORY_BYTES"
DISK_ENV = "SKHFTT_CACHE_DISK_BYTES"
CACHE_DIR_ENV = "SKHFTT_CACHE_DIR"
FILE_NAME = "embeddings.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS encoders (
    id INTEGER PRIMARY KEY, identity TEXT NOT NULL UNIQUE, dim INTEGER NOT NULL, modalities TEXT);
CREATE TABLE IF NOT EXISTS blocks (
    id INTEGER PRIMARY KEY, encoder INTEGER NOT NULL, used REAL NOT NULL, vectors BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS texts (
    encoder INTEGER NOT NULL, text TEXT NOT NULL, block INTEGER NOT NULL, row INTEGER NOT NULL,
    PRIMARY KEY (encoder, text)) WITHOUT ROWID;
"""
_LOOKUP = (  # (position, block, row) of the cached texts among a JSON list
    "SELECT ? + j.key, t.block, t.row FROM json_each(?) AS j "
    "CROSS JOIN texts AS t ON t.encoder = ? AND t.text = j.value"
)
_EVICT = (  # the least recently used blocks, until their bytes reach the excess
    "DELETE FROM blocks WHERE id IN (SELECT id FROM (SELECT id, SUM(length(vectors)) "
    "OVER (ORDER BY used, id) - length(vectors) AS before FROM blocks) WHERE before < ?)"
)
_CHUNK = 1 << 16  # texts per lookup
_limits: dict[str, int] = {}


def _parse_bytes(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, str)):
        raise TypeError(f"{name} must be an int or a str such as '2GiB'; got {value!r}.")
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b?)\s*", str(value), re.I)
    if match is None:
        raise ValueError(
            f"{name}={value!r} is not a size; expected bytes as an int or a str such as "
            "'500MB' or '2GiB'."
        )
    number, prefix, binary = match.groups()
    power = " kmgt".index(prefix.lower()) if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def _limit(kind: str) -> int:
    env, default = {"memory": (MEMORY_ENV, DEFAULT_MEMORY_BYTES),
                    "disk": (DISK_ENV, DEFAULT_DISK_BYTES)}[kind]  # fmt: skip
    if kind in _limits:
        return _limits[kind]
    return default if os.environ.get(env) is None else _parse_bytes(os.environ[env], name=env)


def set_cache_limits(*, memory: int | str | None = None, disk: int | str | None = None) -> None:
    """Bound the text-embedding stores of this process.

    Parameters
    ----------
    memory : int or str, optional
        Most bytes the in-process store keeps, e.g. ``2**31`` or ``"2GiB"``
        (default 2 GiB); ``0`` keeps nothing. ``None`` leaves it unchanged.
    disk : int or str, optional
        Most bytes a cache folder's database keeps, e.g. ``"10GB"`` (default
        10 GiB); ``0`` keeps nothing. ``None`` leaves it unchanged.

    Notes
    -----
    The limits hold in this process until :func:`reset_cache_limits`.
    Worker processes (``GridSearchCV(n_jobs=2)``, Dask) read the environment
    variables ``SKHFTT_CACHE_MEMORY_BYTES`` and ``SKHFTT_CACHE_DISK_BYTES``.

    Examples
    --------
    >>> set_cache_limits(memory="1GiB")
    >>> get_cache_limits()["memory"]
    1073741824
    >>> reset_cache_limits()
    """
    for kind, value in (("memory", memory), ("disk", disk)):
        if value is not None:
            _limits[kind] = _parse_bytes(value, name=kind)


def reset_cache_limits() -> None:
    """Forget :func:`set_cache_limits`: the environment, or the defaults, apply again."""
    _limits.clear()


def get_cache_limits() -> dict[str, int]:
    """Return the limits in force, in bytes: ``{"memory": ..., "disk": ...}``."""
    return {"memory": _limit("memory"), "disk": _limit("disk")}


def default_cache_dir() -> Path | None:
    """The folder of the persistent user cache, or None when it is turned off.

    ``$SKHFTT_CACHE_DIR`` when set (``off``, ``0``, ``false``, ``no`` or
    ``none`` turn the persistent cache off; empty counts as unset), else
    ``$XDG_CACHE_HOME/skhftt`` when ``XDG_CACHE_HOME`` is an absolute path,
    else ``~/.cache/skhftt``. The folder is created on first use.

    Examples
    --------
    >>> default_cache_dir()  # doctest: +SKIP
    PosixPath('/home/me/.cache/skhftt')
    """
    value = os.environ.get(CACHE_DIR_ENV, "").strip()
    if value.lower() in {"0", "off", "false", "no", "none"}:
        return None
    if value:
        return Path(value).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return (Path(xdg) if os.path.isabs(xdg) else Path("~/.cache").expanduser()) / "skhftt"


def _selected_root(cache_dir: object) -> Path | None:
    """The folder ``cache_dir`` selects (None: the in-process store)."""
    if cache_dir is None:
        return default_cache_dir()
    if isinstance(cache_dir, (str, os.PathLike)):
        return Path(os.fspath(cache_dir)).expanduser()
    if cache_dir is False:
        return None
    raise TypeError(
        f"cache_dir must be None (the persistent user cache), False (this process "
        f"only) or a folder; got {type(cache_dir).__name__} ({cache_dir!r})."
    )


def _writable(root: Path) -> bool:
    path = root / FILE_NAME
    return os.access(root, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


@contextlib.contextmanager
def _transaction(con: sqlite3.Connection, kind: str = "IMMEDIATE") -> Iterator[None]:
    """A read snapshot (``kind=""``) or a write transaction, rolled back on error."""
    con.execute(f"BEGIN {kind}")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@dataclass
class _Store:
    """A database: this process's (``kind="memory"``) or a folder's (``"disk"``)."""

    con: sqlite3.Connection
    kind: str
    where: str
    writable: bool = True
    touch_every: float = 0.0  # seconds; on disk, the last use is recorded to the hour

    @classmethod
    def open(cls, root: Path | None) -> _Store | None:
        """Open folder ``root``'s database (None: a new temporary one).

        A folder this process cannot write is opened read-only, as an
        immutable snapshot; None when it holds no database.
        """
        if root is None or _writable(root):
            con = sqlite3.connect("" if root is None else root / FILE_NAME, timeout=60,
                                  isolation_level=None, check_same_thread=False)
            if con.execute("PRAGMA page_count").fetchone()[0] == 0:  # before any table
                con.execute("PRAGMA auto_vacuum = INCREMENTAL")
            con.executescript("PRAGMA synchronous = OFF" if root is None else
                              "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL")
            con.executescript(_SCHEMA)
        elif (root / FILE_NAME).is_file():
            uri = f"{(root / FILE_NAME).resolve().as_uri()}?mode=ro&immutable=1"
            con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        else:
            return None
        con.execute(f"PRAGMA mmap_size = {1 << 40}")
        if root is None:
            return cls(con, "memory", "of this process")
        return cls(con, "disk", repr(os.fspath(root / FILE_NAME)), _writable(root), 3600.0)

    def encoder_id(self, job: _Job, *, register: bool) -> int | None:
        """The encoder's row id (None: not there); ``register`` adds it if missing."""
        if register:
            with _transaction(self.con):
                self.con.execute(
                    "INSERT INTO encoders (identity, dim, modalities) VALUES (?, ?, ?) ON "
                    "CONFLICT (identity) DO UPDATE SET modalities = excluded.modalities "
                    "WHERE excluded.modalities IS NOT NULL",
                    (job.identity, job.dim, job.modalities),
                )
        row = self.con.execute(
            "SELECT id, dim FROM encoders WHERE identity = ?", (job.identity,)
        ).fetchone()
        if row is not None and row[1] != job.dim:
            raise ValueError(
                f"The embedding cache {self.where} holds embeddings of width {row[1]} for "
                f"encoder identity {job.identity!r}, but the encoder now has dim {job.dim}: "
                "an encoder's identity must change whenever its model changes. Call "
                "skhftt.embedding.cache.clear_embedding_cache(cache_dir) to drop the old ones."
            )
        return None if row is None else row[0]

    def read(self, encoder: int | None, texts: list[str], out: np.ndarray,
             todo: np.ndarray) -> np.ndarray:
        """Copy the cached rows of ``texts[todo]`` into ``out[todo]``; return the others."""
        if encoder is None or not len(todo):
            return todo
        with _transaction(self.con, ""):
            found = []
            for start in range(0, len(todo), _CHUNK):
                wanted = json.dumps([texts[i] for i in todo[start : start + _CHUNK]])
                found += self.con.execute(_LOOKUP, (start, wanted, encoder)).fetchall()
            hits = np.array(found, dtype=np.int64).reshape(-1, 3)
            hits = hits[np.argsort(hits[:, 1], kind="stable")]
            blocks, starts = np.unique(hits[:, 1], return_index=True)
            for block, part in zip(blocks.tolist(), np.split(hits, starts[1:]), strict=False):
                (blob,) = self.con.execute(
                    "SELECT vectors FROM blocks WHERE id = ?", (block,)
                ).fetchone()
                rows = np.frombuffer(blob, dtype="<f4").reshape(-1, out.shape[1])
                out[todo[part[:, 0]]] = rows[part[:, 2]]
        if len(blocks) and self.writable:
            now = time.time()
            with _transaction(self.con):
                self.con.execute(
                    "UPDATE blocks SET used = ? WHERE id IN (SELECT value FROM json_each(?)) "
                    "AND used <= ?", (now, json.dumps(blocks.tolist()), now - self.touch_every),
                )
        missing = np.ones(len(todo), dtype=bool)
        missing[hits[:, 0]] = False
        return todo[missing]

    def fill(self, job: _Job, texts: list[str], out: np.ndarray, todo: np.ndarray,
             lock: contextlib.AbstractContextManager) -> np.ndarray:
        """Fill ``out[todo]`` with the embeddings of ``texts[todo]``, encoding what is missing.

        Returns the positions left unfilled: none, unless the store is read-only.
        """
        todo = self.read(self.encoder_id(job, register=False), texts, out, todo)
        if not len(todo) or not self.writable:
            return todo
        with lock:
            encoder = self.encoder_id(job, register=True)
            todo = self.read(encoder, texts, out, todo)
            new = list(dict.fromkeys(texts[i] for i in todo))
            index = {text: row for row, text in enumerate(new)}
            rows = np.fromiter((index[texts[i]] for i in todo), np.int64, len(todo))
            order = np.argsort(rows, kind="stable")
            rows, todo = rows[order], todo[order]
            where = f" (kept in {self.where} for later runs)" if self.kind == "disk" else ""
            for start, batch in job.batches(new, where):
                with _transaction(self.con):  # each batch committed as it comes
                    block = self.con.execute(
                        "INSERT INTO blocks (encoder, used, vectors) VALUES (?, ?, ?)",
                        (encoder, time.time(), batch.astype("<f4").tobytes()),
                    ).lastrowid
                    self.con.executemany(
                        "INSERT OR REPLACE INTO texts VALUES (?, ?, ?, ?)",
                        ((encoder, new[start + row], block, row) for row in range(len(batch))),
                    )
                low, high = np.searchsorted(rows, [start, start + len(batch)])
                out[todo[low:high]] = batch[rows[low:high] - start]
        while (excess := self.nbytes() - _limit(self.kind)) > 0 and self.count("blocks"):
            with _transaction(self.con):  # evict the least recently used blocks
                self.con.execute(_EVICT, (excess,))
                self.con.execute("DELETE FROM texts WHERE block NOT IN (SELECT id FROM blocks)")
            self.con.executescript("PRAGMA incremental_vacuum")
        return todo[:0]

    def nbytes(self) -> int:
        """Bytes in the database's pages in use."""
        pages, free, size = (self.con.execute(f"PRAGMA {name}").fetchone()[0]
                             for name in ("page_count", "freelist_count", "page_size"))
        return (pages - free) * size

    def count(self, what: str) -> int:
        """Rows of a table, or distinct encoders with embeddings (``"encoders"``)."""
        table = "(SELECT DISTINCT encoder FROM blocks)" if what == "encoders" else what
        return self.con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


_MEMORY_LOCK = threading.RLock()
_MEMORY: dict[int, _Store] = {}


def _memory() -> _Store:
    """This process's store (a forked child opens its own); hold ``_MEMORY_LOCK``."""
    if os.getpid() not in _MEMORY:
        _MEMORY[os.getpid()] = _Store.open(None)
    return _MEMORY[os.getpid()]


@contextlib.contextmanager
def _disk(root: Path | None, *, create: bool = True) -> Iterator[_Store | None]:
    """Folder ``root``'s store; None without a folder, or a database (and ``create``)."""
    exists = root is not None and (create or (root / FILE_NAME).is_file())
    store = _Store.open(root) if exists else None
    try:
        yield store
    finally:
        if store is not None:
            store.con.close()


def _delete_database(root: Path) -> bool:
    """Delete the folder's database; whether that could be done."""
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{root / FILE_NAME}{suffix}").unlink(missing_ok=True)
    except OSError:
        return False
    return True


def known_encoder(
    identity: str, *, cache_dir: str | os.PathLike[str] | bool | None = None
) -> tuple[int, tuple[str, ...]] | None:
    """The width and modalities the cache recorded for an encoder identity.

    Lets a caller that knows an encoder's identity without loading its model
    (:func:`skhftt.embedding.encoders.registry.peek_identity`) load the model
    only when something must be encoded.

    Parameters
    ----------
    identity : str
        The encoder identity.
    cache_dir : None, False or path-like, default=None
        The cache folder to look in, as for :func:`encode_texts`.

    Returns
    -------
    (int, tuple of str) or None
        ``(dim, modalities)``; None when nothing is recorded, no folder is
        selected (``False``) or the database cannot be read.
    """
    query = "SELECT dim, modalities FROM encoders WHERE identity = ?"
    try:
        with _disk(_selected_root(cache_dir), create=False) as store:
            row = None if store is None else store.con.execute(query, (identity,)).fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None or row[1] is None else (row[0], tuple(row[1].split(",")))


def cache_info(cache_dir: str | os.PathLike[str] | bool | None = None) -> dict[str, dict]:
    """What the in-process store and a cache folder hold.

    Parameters
    ----------
    cache_dir : None, False or path-like, default=None
        The folder to describe: ``None`` the persistent user cache, a path
        that folder, ``False`` none.

    Returns
    -------
    dict
        ``{"memory": {"encoders", "texts", "bytes", "limit"}, "disk": {"path",
        "encoders", "texts", "bytes", "limit"}}``: per store, how many encoder
        identities and texts it holds, its size and its limit in bytes;
        ``disk["path"]`` is the folder, or None.

    Examples
    --------
    >>> info = cache_info(False)
    >>> sorted(info), info["disk"]["path"] is None
    (['disk', 'memory'], True)
    """

    def stats(store: _Store | None, kind: str) -> dict[str, int]:
        counts = {what: 0 if store is None else store.count(what) for what in ("encoders", "texts")}
        return {**counts, "bytes": 0 if store is None else store.nbytes(), "limit": _limit(kind)}

    root = _selected_root(cache_dir)
    with _MEMORY_LOCK:
        memory = stats(_memory(), "memory")
    with _disk(root, create=False) as store:
        disk = stats(store, "disk")
    return {"memory": memory, "disk": {"path": None if root is None else os.fspath(root), **disk}}


def clear_embedding_cache(cache_dir: str | os.PathLike[str] | bool | None = None) -> None:
    """Empty the in-process store and delete the embeddings kept in a folder.

    Parameters
    ----------
    cache_dir : None, False or path-like, default=None
        ``None``: also empty the persistent user cache. A path: also empty
        the database in that folder (a damaged one is deleted; other files
        are left alone). ``False``: only the in-process store.
    """
    with _MEMORY_LOCK:
        for store in _MEMORY.values():
            store.con.close()
        _MEMORY.clear()
    root = _selected_root(cache_dir)
    try:
        with _disk(root, create=False) as store:
            if store is not None:
                with _transaction(store.con):
                    store.con.execute("DELETE FROM texts")
                    store.con.execute("DELETE FROM blocks")
                    store.con.execute("DELETE FROM encoders")
                store.con.executescript("PRAGMA incremental_vacuum")
    except sqlite3.DatabaseError as exc:
        if type(exc) is not sqlite3.DatabaseError:  # locked, read-only: not damaged
            raise
        _delete_database(root)


def encode_texts(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int = 256,
    show_progress: bool | None = None,
    cache_dir: str | os.PathLike[str] | bool | None = None,
) -> np.ndarray:
    """Embed ``texts`` with ``encoder``, reusing embeddings computed before.

    Only texts not cached yet reach the encoder, each distinct text once, in
    batches of ``batch_size``; each batch is stored as soon as it is encoded.

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
        None: report only long encodes (10,000 texts or more, or still
        running after 10 s) on stderr; ``SKHFTT_PROGRESS=off`` silences it.
    cache_dir : None, False or path-like, default=None
        ``None``: the persistent user cache (:func:`default_cache_dir`) for an
        encoder with ``stable_identity``, the in-process store for others. A
        path: that folder, shared between processes (created if missing); a
        folder this process cannot write is only read, and what it lacks is
        kept in process. ``False``: the in-process store only.

    Returns
    -------
    ndarray of shape (len(texts), encoder.dim), float32
        Row ``i`` embeds ``texts[i]``; a new array.

    Raises
    ------
    OSError
        The folder's database cannot be used (locked for a minute, disk full,
        damaged and not deletable); the message names it.

    Warns
    -----
    RuntimeWarning
        The database was damaged (it is deleted and made again), or a
        read-only folder lacks some texts (they are kept in this process).

    Examples
    --------
    >>> class Toy:
    ...     identity, dim = "toy", 2
    ...     def encode_text(self, texts, *, batch_size=256, show_progress=False):
    ...         return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)
    >>> encode_texts(Toy(), ["a", "b", "a"]).shape
    (3, 2)
    """
    job = _Job.of(encoder, batch_size, show_progress)
    texts = check_texts(texts, name="texts", allow_empty=True)
    root = _store_root(cache_dir, encoder)
    out = np.empty((len(texts), job.dim), dtype=np.float32)
    todo = np.arange(len(texts))
    if root is not None and texts:
        todo = _fill_from_disk(root, job, texts, out)
    if len(todo):
        with _MEMORY_LOCK:
            _memory().fill(job, texts, out, todo, contextlib.nullcontext())
    return out


def _store_root(cache_dir: object, encoder: object) -> Path | None:
    """The folder :func:`encode_texts` uses, or None for the in-process store."""
    root = _selected_root(cache_dir)
    if root is None or (cache_dir is None and not getattr(encoder, "stable_identity", False)):
        return None
    if cache_dir is not None and root.exists() and not root.is_dir():
        raise ValueError(f"cache_dir={os.fspath(root)!r} exists and is not a directory.")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if cache_dir is not None:
            raise
        warnings.warn(
            f"The embedding cache folder {os.fspath(root)!r} cannot be used "
            f"({type(exc).__name__}: {exc}); embeddings are kept in this process only. "
            f"Set {CACHE_DIR_ENV} to a writable folder, or {CACHE_DIR_ENV}=off.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return root


def _fill_from_disk(root: Path, job: _Job, texts: list[str], out: np.ndarray, *,
                    retry: bool = True) -> np.ndarray:
    """Fill ``out`` from the folder's database; return the positions it could not fill.

    A damaged database is deleted and made again, once.
    """
    path = os.fspath(root / FILE_NAME)
    digest = hashlib.sha256(job.identity.encode()).hexdigest()[:16]
    lock = FileLock(root / f"embeddings-{digest}.lock")
    try:
        with _disk(root) as store:
            todo = np.arange(len(texts))
            if store is not None:
                todo = store.fill(job, texts, out, todo, lock)
    except sqlite3.DatabaseError as exc:
        # A plain DatabaseError: not a database, or a damaged one; others are operational.
        damaged = type(exc) is sqlite3.DatabaseError
        if not (retry and damaged and _writable(root) and _delete_database(root)):
            raise OSError(
                f"The embedding cache {path!r} cannot be used ({exc}): delete that file to "
                f"start afresh, or keep embeddings in process (cache_dir=False, "
                f"{CACHE_DIR_ENV}=off)."
            ) from exc
        warnings.warn(
            f"The embedding cache {path!r} was damaged ({exc}); it was deleted and its "
            "texts are encoded again.",
            RuntimeWarning,
            stacklevel=3,
        )
        return _fill_from_disk(root, job, texts, out, retry=False)
    if len(todo):
        warnings.warn(
            f"The embedding cache folder {os.fspath(root)!r} is read-only and lacks "
            f"{len(todo):,} of these texts: they are encoded and kept in this process only.",
            RuntimeWarning,
            stacklevel=3,
        )
    return todo


@dataclass
class _Job:
    """An encoder and the options of one call."""

    encoder: Encoder
    identity: str
    dim: int
    modalities: str | None
    batch_size: int
    show_progress: bool | None

    @classmethod
    def of(cls, encoder: Encoder, batch_size: object, show_progress: bool | None) -> _Job:
        """Check the encoder and ``batch_size``."""
        identity, dim = getattr(encoder, "identity", None), getattr(encoder, "dim", None)
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
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"batch_size must be an int; got {batch_size!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
        modalities = getattr(encoder, "modalities", None)
        return cls(encoder, identity, int(dim), None if modalities is None else ",".join(
            modalities), int(batch_size), show_progress)

    def batches(self, texts: Sequence[str], where: str) -> Iterator[tuple[int, np.ndarray]]:
        """Encode ``texts`` batch by batch; yield (start row, float32 batch)."""
        detail = f" with {self.identity!r}{where}"
        with progress(len(texts), what="texts", unit="text", show=self.show_progress,
                      detail=detail) as update:  # fmt: skip
            for start in range(0, len(texts), self.batch_size):
                chunk = list(texts[start : start + self.batch_size])
                batch = np.asarray(self.encoder.encode_text(
                    chunk, batch_size=self.batch_size, show_progress=False), dtype=np.float32)
                if batch.shape != (len(chunk), self.dim):
                    raise ValueError(
                        f"encoder {self.identity!r} returned an array of shape {batch.shape} "
                        f"for {len(chunk)} texts; expected ({len(chunk)}, {self.dim}), its "
                        "declared dim."
                    )
                yield start, batch
                update(len(chunk))
