"""Hugging Face Hub access: fast failure when offline, and model revisions.

Loading a model by name normally goes through ``huggingface_hub``, which
retries unreachable hosts for more than a minute per file. skhftt instead
tries the local cache first and, when the model is not there, asks the Hub
once with a short timeout; an unreachable Hub is reported at once with the
model name and how to load the model from a local directory instead.

Loading is quiet unless asked otherwise (:func:`loading_progress`):
Transformers' own progress bars ("Loading weights") are hidden while a model
loads; download progress bars of ``huggingface_hub`` still show, since a
download can take minutes.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?(@[\w./-]+)?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1 << 20
_SHOW_LOADING = contextvars.ContextVar("skhftt_show_loading", default=False)
_DIGESTS: dict[Path, tuple[list[tuple[Path, int, int]], str]] = {}


class EncoderUnavailableError(OSError):
    """A named model is neither in the local cache nor downloadable now.

    Raised within seconds when the Hugging Face Hub is unreachable (no
    network, a firewall, ``HF_HUB_OFFLINE=1``) and the model was never
    downloaded on this machine. The message names the model and explains how
    to point ``encoder=`` at a local directory instead.
    """


def hub_timeout() -> float:
    """Seconds to wait for the Hub before declaring it unreachable.

    Read from the ``SKHFTT_HUB_TIMEOUT`` environment variable (default 10).
    """
    value = os.environ.get("SKHFTT_HUB_TIMEOUT", "10")
    try:
        timeout = float(value)
    except ValueError as exc:
        raise ValueError(f"SKHFTT_HUB_TIMEOUT={value!r} is not a number of seconds.") from exc
    if timeout <= 0:
        raise ValueError(f"SKHFTT_HUB_TIMEOUT={value!r} must be a positive number of seconds.")
    return timeout


def hub_offline() -> bool:
    """True when ``huggingface_hub`` was told to stay offline (``HF_HUB_OFFLINE``)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def unavailable(
    model: str, reason: str, *, cache_error: BaseException | None = None, prefix: str = ""
) -> EncoderUnavailableError:
    """Build the error raised when ``model`` can be neither found nor downloaded."""
    cached = ""
    if cache_error is not None and not isinstance(cache_error, OSError):
        first_line = (str(cache_error).strip().splitlines() or [""])[0][:200]
        kind = type(cache_error).__name__
        cached = f" (The local cache lookup said: {kind}: {first_line})"
    return EncoderUnavailableError(
        f"Cannot load the encoder model {model!r}: it is not in the local Hugging "
        f"Face cache and {reason}.{cached} On a machine with internet access, save "
        f"the model to a directory (SentenceTransformer({model!r}).save('clip-dir'), "
        f"or `hf download {model} --local-dir clip-dir`), copy that directory here "
        f"and pass encoder='{prefix}/path/to/clip-dir'. A model downloaded once stays in the "
        "Hugging Face cache (HF_HUB_CACHE) and loads offline from then on."
    )


def probe_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_error: BaseException | None = None,
    prefix: str = "",
) -> None:
    """Ask the Hub about ``repo_id`` once, with a short timeout.

    Returns when the Hub answered (the model exists, or it is gated and the
    download will say so). Raises :class:`EncoderUnavailableError` when the
    Hub is unreachable or offline mode is on, and ``ValueError`` when the Hub
    has no such model or revision. ``cache_error``, the failure of the
    attempt to load from the local cache, is quoted in the message.
    """
    if hub_offline():
        raise unavailable(
            repo_id,
            "HF_HUB_OFFLINE is set, so the Hub is not asked",
            cache_error=cache_error,
            prefix=prefix,
        )
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        HfApi().model_info(repo_id, revision=revision, timeout=hub_timeout())
    except GatedRepoError:
        return
    except RepositoryNotFoundError as exc:
        raise ValueError(
            f"{repo_id!r} is not a local model directory, and the Hugging Face Hub "
            "has no model of that name (or it is private and no token with access "
            "is configured): pass an existing model id or a local model directory "
            "as encoder=."
        ) from exc
    except RevisionNotFoundError as exc:
        raise ValueError(
            f"The Hugging Face Hub model {repo_id!r} has no revision {revision!r}."
        ) from exc
    except HfHubHTTPError as exc:
        raise unavailable(
            repo_id,
            f"the Hugging Face Hub answered with an error ({exc})",
            cache_error=cache_error,
            prefix=prefix,
        ) from exc
    except Exception as exc:
        raise unavailable(
            repo_id,
            f"the Hugging Face Hub was unreachable ({type(exc).__name__}: {exc})",
            cache_error=cache_error,
            prefix=prefix,
        ) from exc


def cached_commit(repo_id: str, *, revision: str | None = None) -> str | None:
    """The commit hash of the cached snapshot of ``repo_id``, if any.

    Looks up ``config.json`` (every Transformers model has one),
    ``modules.json`` (sentence-transformers) or ``open_clip_config.json`` in
    the local cache and returns the snapshot folder's name, which is the
    commit hash.
    """
    if revision is not None and _COMMIT.match(revision):
        return revision
    from huggingface_hub import try_to_load_from_cache

    for filename in ("config.json", "modules.json", "open_clip_config.json"):
        found = try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(found, str):
            commit = Path(found).parent.name
            if _COMMIT.match(commit):
                return commit
    return None


def directory_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 over the names and contents of every file in a model directory.

    Hidden files and folders (``.git``, ``.cache``) are skipped. The digest
    changes whenever a weight, config or tokenizer file changes, and does not
    depend on where the directory lives. Reading a 600 MB checkpoint takes
    well under a second from a warm disk cache; a process reads it again
    only when a file's size or modification time changed.
    """
    root = Path(path)
    files = sorted(
        file
        for file in root.rglob("*")
        if file.is_file() and not any(part.startswith(".") for part in file.relative_to(root).parts)
    )
    stamp = [(file, info.st_size, info.st_mtime_ns) for file, info in zip(
        files, map(os.stat, files), strict=True)]
    known = _DIGESTS.get(root.resolve())
    if known is not None and known[0] == stamp:
        return known[1]
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    _DIGESTS[root.resolve()] = (stamp, digest.hexdigest())
    return digest.hexdigest()


def split_revision(name: str) -> tuple[str, str | None]:
    """Split ``"<model>@<revision>"`` into (model, revision); an existing path keeps its "@"."""
    if "@" in name and not Path(name).expanduser().exists():
        model, revision = name.rsplit("@", 1)
        return model, revision
    return name, None


def pretrained_identity(backend: str, spec: str) -> str | None:
    """The identity of the model :func:`load_pretrained` would load, found without loading it.

    Returns
    -------
    str or None
        ``"<backend>:<directory name>@sha256:<16 hex>"`` for a model
        directory, ``"<backend>:<hub id>@<commit>"`` for a Hub id whose
        snapshot is in the local cache (or pinned to a commit); None when
        only loading can tell (a Hub id not cached, a directory whose digest
        is not the revision asked for).
    """
    name, revision = split_revision(spec)
    directory = Path(name).expanduser()
    if directory.is_dir():
        digest = f"sha256:{directory_digest(directory)[:16]}"
        if revision not in (None, digest):
            return None
        return f"{backend}:{directory.resolve().name}@{digest}"
    if looks_like_path(name) or not HUB_ID.match(spec):
        return None
    commit = cached_commit(name, revision=revision)
    return None if commit is None else f"{backend}:{name}@{commit}"


def looks_like_path(spec: str) -> bool:
    """True for a spec written as a path (``/``, ``.``, ``~``, a backslash)."""
    return spec.startswith(("/", ".", "~")) or "\\" in spec or os.path.isabs(spec)


def model_location(spec: str, *, prefix: str = "", forms: str) -> Path | str:
    """An existing model directory, or a Hub id; anything else is an error.

    A string that looks like a path but is not a directory is an error,
    never a Hub lookup. ``prefix`` (e.g. ``"blip:"``) and ``forms`` (the
    accepted forms, for the message) only shape the error messages.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    shown = f"encoder={prefix + spec!r}"
    if path.exists():
        raise ValueError(
            f"{shown} is a file; expected a model directory (with config.json) or "
            "a Hugging Face model id."
        )
    if looks_like_path(spec):
        raise ValueError(f"{shown}: there is no model directory {str(path.absolute())!r}.")
    if not HUB_ID.match(spec):
        raise ValueError(f"{shown} is neither a model directory nor a model id; {forms}.")
    return spec


@contextlib.contextmanager
def loading_progress(show: bool) -> Iterator[None]:
    """Within the block, show (True) or hide (False) model-loading progress bars."""
    token = _SHOW_LOADING.set(bool(show))
    try:
        yield
    finally:
        _SHOW_LOADING.reset(token)


def _disabled_bar(factory: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    return factory(*args, **{**kwargs, "disable": True})


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide Transformers' own progress bars for the block, unless loading is shown.

    A Transformers tqdm hook, set for the block and then restored, leaves the
    user's progress-bar settings as they were.
    """
    try:
        from transformers.utils.logging import set_tqdm_hook
    except ImportError:  # Transformers < 5 has no hook, nor the "Loading weights" bar
        set_tqdm_hook = None
    if _SHOW_LOADING.get() or set_tqdm_hook is None:
        yield
        return
    previous = set_tqdm_hook(_disabled_bar)
    try:
        yield
    finally:
        set_tqdm_hook(previous)


def load_pretrained(
    name: str, revision: str | None, load: Callable[..., Any], *, prefix: str = ""
) -> tuple[Any, str, str | None]:
    """Load a directory, or a Hub id from the local cache first, failing fast offline.

    ``load(**kwargs)`` loads the model; it gets ``revision`` and
    ``local_files_only`` for a Hub id and nothing for a directory. Returns
    ``(loaded, label, revision)``: the result, the name shown in the
    encoder identity, and the directory's content digest or the cached Hub
    commit.
    """
    directory = Path(name)
    if directory.is_dir():
        digest = f"sha256:{directory_digest(directory)[:16]}"
        if revision is not None and revision != digest:
            raise ValueError(
                f"The model directory {name!r} has content digest {digest}, but revision "
                f"{revision!r} was expected: its files changed."
            )
        with quiet_transformers():
            return load(), directory.name, digest
    try:
        with quiet_transformers():
            loaded = load(revision=revision, local_files_only=True)
    except Exception as cache_error:
        probe_hub(name, revision=revision, cache_error=cache_error, prefix=prefix)
        with quiet_transformers():
            loaded = load(revision=revision)
    return loaded, name, cached_commit(name, revision=revision) or revision
