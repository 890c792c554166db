"""Behaviour shared by the encoders that wrap a torch model named by a spec.

A :class:`TorchEncoder` is a light handle: its name, device and precision
describe the model; the weights live in a per-process cache, so every handle
(and every GridSearchCV candidate) for the same model and device shares one
copy. Pickling keeps the description and the resolved revision only; the
weights are loaded again, at exactly that revision, on first use.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from skhftt.embedding.encoders._hub import split_revision

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


@dataclass(frozen=True)
class LoadedModel:
    """A model in the process cache, with what identifies it.

    ``label`` is the name shown in the identity: the Hub id, or a local
    directory's base name (its ``revision`` is then a content digest, so the
    identity does not change when the directory is moved).
    """

    model: Any
    label: str
    revision: str | None
    dim: int


_MODELS: dict[tuple[str, str, str | None, str], LoadedModel] = {}
_LOCK = threading.RLock()


def cached_model(
    backend: str,
    name: str,
    revision: str | None,
    device: torch.device,
    load: Callable[[], LoadedModel],
) -> LoadedModel:
    """Return the cached model for (backend, name, revision, device), loading it once.

    A model loaded without a pinned revision is also filed under the revision
    it resolved to, so that a handle re-created from a pickle (which pins the
    revision) finds the same copy.
    """
    key = (backend, name, revision, str(device))
    with _LOCK:
        loaded = _MODELS.get(key)
        if loaded is None:
            loaded = load()
            _MODELS[key] = loaded
            if loaded.revision is not None:
                _MODELS.setdefault((backend, name, loaded.revision, str(device)), loaded)
        return loaded


def clear_model_cache() -> None:
    """Forget every loaded model, so that the next use loads it from disk again."""
    with _LOCK:
        _MODELS.clear()


def loaded_models() -> list[dict[str, str | None]]:
    """The models in the process cache, one entry per model in memory.

    Returns
    -------
    list of dict
        ``{"backend", "name", "revision", "device"}`` of each distinct loaded
        model, in loading order. ``revision`` is the one it was loaded at.
    """
    seen: set[int] = set()
    models = []
    with _LOCK:
        for (backend, name, _, device), loaded in _MODELS.items():
            if id(loaded) not in seen:
                seen.add(id(loaded))
                models.append({
                    "backend": backend,
                    "name": name,
                    "revision": loaded.revision,
                    "device": device,
                })
    return models


def check_precision(precision: object) -> str:
    """Validate a ``precision`` argument."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {list(PRECISIONS)}.")
    return str(precision)


def unit_rows(embeddings: Any, *, what: str) -> np.ndarray:
    """Return ``embeddings`` as float32 rows of unit L2 norm.

    Rows are normalised again in float32, because a model run under fp16
    autocast normalises in half precision.
    """
    array = np.asarray(embeddings, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"the model returned {what} of shape {array.shape}; expected 2-D.")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if not np.isfinite(array).all() or (norms == 0).any():
        raise ValueError(
            f"the model returned non-finite or all-zero {what}; with precision='fp16' "
            "this can be an overflow, try precision='bf16' or 'fp32'."
        )
    return array / norms


def pil_images(images: Any) -> list[Any]:
    """``images`` as a list, checked to be PIL images (``encode_image``'s input).

    Raises
    ------
    TypeError
        An item is not a PIL image; the message points to ``to_embeddings``,
        which decodes paths, arrays and tensors.
    """
    from PIL import Image

    images = list(images)
    for index, image in enumerate(images):
        if not isinstance(image, Image.Image):
            raise TypeError(
                f"encode_image expects PIL images; item {index} is "
                f"{type(image).__name__}. skhftt.embedding.inputs.to_embeddings accepts "
                "paths, arrays and tensors."
            )
    return images


class TorchEncoder:
    """Base class: a named torch model that embeds texts and images.

    Subclasses set ``backend`` and implement ``_load`` (weights, revision,
    width) and the two ``encode_*`` methods.

    Parameters
    ----------
    name : str or path-like
        The model, in the backend's own terms; ``"<name>@<revision>"`` pins a
        revision, and an existing directory is used by its absolute path.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype of the forward pass. ``"auto"`` is fp16 on CUDA and
        fp32 elsewhere. Outputs are always float32.
    revision : str, optional
        Pin a revision (a Hub commit, branch or tag; for a local directory
        the content digest it must have).

    Attributes
    ----------
    identity : str
        ``"<backend>:<name>@<revision>"``; see :class:`~skhftt.embedding.encoders.Encoder`.
    revision : str or None
        The revision the weights were loaded at.
    dim : int
        Width of the embeddings.
    """

    backend: ClassVar[str] = ""

    def __init__(
        self,
        name: str | Path,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        revision: str | None = None,
    ) -> None:
        from skhftt.embedding.device import resolve_device

        name = str(name)
        if revision is None:
            name, revision = split_revision(name)
        directory = Path(name).expanduser()
        if directory.is_dir():
            name = str(directory.resolve())
        self.name = name
        self.device = device
        self.precision = check_precision(precision)
        self._device = resolve_device(device)
        loaded = cached_model(
            self.backend, name, revision, self._device, lambda: self._load(revision)
        )
        self._set_loaded(loaded)

    def _load(self, revision: str | None) -> LoadedModel:
        raise NotImplementedError

    def _batched_embed(
        self,
        items: list[Any],
        *,
        batch_size: int,
        show_progress: bool,
        kind: str,
        embed_batch: Callable[[list[Any]], torch.Tensor],
    ) -> np.ndarray:
        """Run ``embed_batch`` over batches of ``items``; float32 unit rows."""
        from tqdm.auto import tqdm

        chunks = []
        with self.inference_context():
            for start in tqdm(
                range(0, len(items), batch_size), disable=not show_progress, desc=f"{kind}s"
            ):
                chunks.append(embed_batch(items[start : start + batch_size]).float().cpu().numpy())
        if not chunks:
            return np.empty((0, self.dim), dtype=np.float32)
        return unit_rows(np.concatenate(chunks), what=f"{kind.lower()} embeddings")

    def _set_loaded(self, loaded: LoadedModel) -> None:
        self._model = loaded.model
        self.revision = loaded.revision
        self.dim = loaded.dim
        suffix = f"@{loaded.revision}" if loaded.revision else ""
        self.identity = f"{self.backend}:{loaded.label}{suffix}"

    @property
    def stable_identity(self) -> bool:
        """True when the identity pins the weights (a Hub commit or a content digest).

        Text embeddings of such an encoder may be kept in the persistent
        user cache (see :mod:`skhftt.embedding.cache`).
        """
        return self.revision is not None

    @property
    def model(self) -> Any:
        """The loaded model; after unpickling, loaded again at the recorded revision."""
        from skhftt.embedding.device import resolve_device

        if self._model is None:
            self._device = resolve_device(self.device)
            revision = self.revision
            loaded = cached_model(
                self.backend, self.name, revision, self._device, lambda: self._load(revision)
            )
            if loaded.revision != revision or loaded.dim != self.dim:
                raise ValueError(
                    f"The encoder {self.identity!r} changed since it was saved: "
                    f"{self.backend}:{self.name} now has revision {loaded.revision!r} "
                    f"and width {loaded.dim}. Embeddings from the two would not be "
                    "comparable; restore the original model files."
                )
            self._model = loaded.model
        return self._model

    @contextlib.contextmanager
    def inference_context(self) -> Iterator[None]:
        """``torch.inference_mode`` plus autocast when the precision asks for it."""
        import torch

        from skhftt.embedding.device import resolve_device

        device = self._device if self._device is not None else resolve_device(self.device)
        precision = self.precision
        if precision == "auto":
            precision = "fp16" if device.type == "cuda" else "fp32"
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        autocast = (
            torch.autocast(device_type=device.type, dtype=dtype)
            if dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            yield

    def __sklearn_clone__(self) -> TorchEncoder:
        """Return self: ``clone`` must share the model, never deep-copy it."""
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_model"] = None
        state["_device"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, device={self.device!r}, "
            f"precision={self.precision!r})"
        )
