"""Optional backend: open_clip models (``pip install "skhftt[openclip]"``).

Spec strings (after ``open_clip:``):

``"<architecture>/<pretrained tag>"``
    A pretrained tag, e.g. ``"open_clip:ViT-B-16/openai"``
    (``open_clip.list_pretrained()`` lists the pairs). The weights come from
    the Hugging Face cache, or are downloaded on first use.
``"<architecture>/<checkpoint file or directory>"``
    Local weights for a built-in architecture, loaded offline: a ``.pt``,
    ``.pth``, ``.bin`` or ``.safetensors`` file, e.g.
    ``"open_clip:ViT-B-16//models/vit-b-16.safetensors"`` (an absolute path
    after the ``/``) or ``"open_clip:ViT-B-16/./vit-b-16.pt"``, or a
    directory holding one checkpoint.
``"<model directory>"`` or ``"local-dir:<model directory>"``
    A directory with ``open_clip_config.json`` and its weights, e.g. what
    ``hf download <repo id> --local-dir <directory>`` writes for an
    ``hf-hub:`` model; loaded offline.
``"hf-hub:<repo id>"``
    An open_clip model on the Hugging Face Hub, from the cache first.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skhftt.embedding.device import resolve_device
from skhftt.embedding.encoders._hub import (
    EncoderUnavailableError,
    directory_digest,
    hub_offline,
    looks_like_path,
    probe_hub,
)
from skhftt.embedding.encoders._torch import (
    LoadedModel,
    TorchEncoder,
    cached_model,
    check_precision,
    pil_images,
    unit_rows,
)

INSTALL_HINT = 'pip install "skhftt[openclip]"'
_HF_HUB = "hf-hub:"
_LOCAL_DIR = "local-dir:"
_CONFIG_FILE = "open_clip_config.json"
_CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")
# open_clip's own preference when a directory holds several checkpoints.
_PREFERRED_CHECKPOINTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)
# What open_clip looks for in a tag's Hub repository when the tag names no file.
_HUB_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# A Hub repository and the file names that may hold its weights, best first.
_HubFiles = tuple[str, tuple[str, ...]]


def import_open_clip() -> Any:
    """Import open_clip, or explain how to install it."""
    try:
        import open_clip
    except ImportError as exc:
        raise ImportError(
            f"The open_clip encoder backend needs open_clip_torch: {INSTALL_HINT} "
            f"(importing it failed with: {exc})"
        ) from exc
    return open_clip


def parse_open_clip_spec(spec: str) -> tuple[str, str | None]:
    """Split an ``open_clip:`` spec into ``(architecture, pretrained)``.

    ``"hf-hub:<repo>"`` and model directories (``"<directory>"``,
    ``"local-dir:<directory>"``) carry their own weights: ``pretrained`` is
    None and the architecture is ``"hf-hub:<repo>"`` or
    ``"local-dir:<directory>"``. Anything else is
    ``"<architecture>/<pretrained tag, checkpoint file or directory>"``.
    """
    if spec.startswith((_HF_HUB, _LOCAL_DIR)):
        schema, _, rest = spec.partition(":")
        if not rest.strip():
            raise ValueError(f"encoder='open_clip:{spec}' names no {schema} model.")
        return spec, None
    path = Path(spec).expanduser()
    if path.is_dir():
        return f"{_LOCAL_DIR}{spec}", None
    if looks_like_path(spec):
        if path.is_file():
            raise ValueError(
                f"encoder='open_clip:{spec}' is a checkpoint file; name its architecture "
                f"too, e.g. 'open_clip:ViT-B-16/{spec}'."
            )
        raise ValueError(
            f"encoder='open_clip:{spec}': there is no model directory {str(path.absolute())!r}."
        )
    architecture, _, pretrained = spec.partition("/")
    if not architecture or not pretrained:
        raise ValueError(
            f"encoder='open_clip:{spec}' must name an architecture and its pretrained "
            "weights, e.g. 'open_clip:ViT-B-16/openai' (open_clip.list_pretrained() "
            "lists them) or 'open_clip:ViT-B-16//path/to/checkpoint.pt'."
        )
    return architecture, pretrained


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _checkpoint_in(directory: Path, shown: str) -> Path:
    """The checkpoint open_clip would pick in ``directory``."""
    for name in _PREFERRED_CHECKPOINTS:
        if (directory / name).is_file():
            return directory / name
    found = sorted(
        path for path in directory.iterdir()
        if path.is_file() and path.suffix in _CHECKPOINT_SUFFIXES
    )
    if len(found) != 1:
        names = ", ".join(path.name for path in found) or "none"
        raise ValueError(
            f"encoder={shown!r}: the directory {str(directory)!r} must hold one checkpoint "
            f"({', '.join(_CHECKPOINT_SUFFIXES)} file); found {names}. Name the file instead."
        )
    return found[0]


def _hub_weights(pretrained_cfg: dict[str, Any]) -> _HubFiles | None:
    """(repo id, file names open_clip tries) for a pretrained tag on the Hub, or None.

    open_clip's ``hf_hub`` entries read ``"org/repo/"`` (its default file
    names) or ``"org/repo/file.bin"``; safetensors versions are tried first.
    """
    repo, filename = os.path.split((pretrained_cfg.get("hf_hub") or "").strip())
    if not repo:
        return None
    if not filename or filename == _HUB_WEIGHTS[1]:
        return repo, _HUB_WEIGHTS
    stem, suffix = os.path.splitext(filename)
    if suffix in (".bin", ".pth"):
        return repo, (f"{stem}.safetensors", filename)
    return repo, (filename,)


def _cached_commit(repo: str, filenames: Sequence[str]) -> str | None:
    """The commit of the cached snapshot holding one of ``filenames``, or None."""
    from huggingface_hub import try_to_load_from_cache

    for filename in filenames:
        found = try_to_load_from_cache(repo, filename)
        if isinstance(found, str):
            commit = Path(found).parent.name
            return commit if _COMMIT.match(commit) else None
    return None


def _ask_hub(shown: str, repo: str, offline_hint: str) -> None:
    """Ask the Hub once about weights missing from the cache; raise at once if it can't answer."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        probe_hub(repo)
    except EncoderUnavailableError as exc:
        cause = exc.__cause__
        if hub_offline():
            reason = "HF_HUB_OFFLINE is set, so the Hub is not asked"
        elif isinstance(cause, HfHubHTTPError):
            reason = f"the Hugging Face Hub answered with an error ({cause})"
        else:
            reason = f"the Hugging Face Hub was unreachable ({type(cause).__name__}: {cause})"
        raise EncoderUnavailableError(
            f"Cannot load encoder={shown!r}: its weights (Hugging Face Hub repository "
            f"{repo!r}) are not in the local Hugging Face cache and {reason}. "
            f"{offline_hint} Weights downloaded once stay in the Hugging Face cache "
            "(HF_HUB_CACHE) and load offline from then on."
        ) from exc


def _locate(architecture: str, pretrained: str | None) -> tuple[str, str | None, str]:
    """Check that the weights can exist; return ``(architecture, pretrained, label)``.

    Paths come back absolute, so that a pickled handle loads from any
    working directory. The label names the model in the identity: local
    weights by their file or directory name, so moving them keeps it.
    """
    open_clip = import_open_clip()
    shown = f"open_clip:{architecture}" + ("" if pretrained is None else f"/{pretrained}")
    if architecture.startswith((_HF_HUB, _LOCAL_DIR)):
        if pretrained is not None:
            raise ValueError(
                f"encoder={shown!r}: {architecture.partition(':')[0]}: models carry their "
                "weights; pass pretrained=None."
            )
        if architecture.startswith(_HF_HUB):
            return architecture, None, architecture
        directory = Path(architecture[len(_LOCAL_DIR) :]).expanduser().resolve()
        if not directory.is_dir():
            raise ValueError(
                f"encoder={shown!r}: there is no model directory {str(directory)!r}."
            )
        if not (directory / _CONFIG_FILE).is_file():
            raise ValueError(
                f"encoder={shown!r}: the directory has no {_CONFIG_FILE} saying which "
                "architecture its weights are for; name the architecture, e.g. "
                f"'open_clip:ViT-B-16/{directory}'."
            )
        return f"{_LOCAL_DIR}{directory}", None, directory.name
    if architecture not in open_clip.list_models():
        raise ValueError(
            f"encoder={shown!r}: open_clip has no architecture {architecture!r}; "
            "open_clip.list_models() lists them (e.g. 'ViT-B-16')."
        )
    if pretrained is None:
        return architecture, None, f"{architecture}/random-init"
    if "/" not in pretrained and open_clip.get_pretrained_cfg(architecture, pretrained):
        return architecture, pretrained, f"{architecture}/{pretrained}"
    path = Path(pretrained).expanduser()
    if path.is_dir():
        _checkpoint_in(path, shown)
    elif not path.is_file():
        if looks_like_path(pretrained) or "/" in pretrained or path.suffix:
            raise ValueError(
                f"encoder={shown!r}: there is no checkpoint file or directory "
                f"{str(path.absolute())!r}."
            )
        tags = open_clip.list_pretrained_tags_by_model(architecture)
        known = f"its tags are {', '.join(tags)}" if tags else "it has no pretrained tags"
        raise ValueError(
            f"encoder={shown!r}: open_clip has no pretrained weights {pretrained!r} for "
            f"{architecture!r} ({known}; open_clip.list_pretrained() lists every pair). "
            f"Local weights load with 'open_clip:{architecture}//path/to/checkpoint.pt'."
        )
    path = path.resolve()
    return architecture, str(path), f"{architecture}/{path.name}"


class OpenCLIPEncoder(TorchEncoder):
    """Encoder backed by an open_clip model.

    Parameters
    ----------
    architecture : str
        An open_clip architecture (``"ViT-B-16"``; ``open_clip.list_models()``
        lists them), ``"hf-hub:<repo id>"``, or ``"local-dir:<directory>"``
        for a directory with ``open_clip_config.json`` and weights.
    pretrained : str or None
        For an architecture: a pretrained tag (``"openai"``,
        ``"laion2b_s34b_b88k"``), a checkpoint file, a directory holding one
        checkpoint, or None for random initialisation (tests and benchmarks;
        the revision is then a digest of the random weights, so a pickled
        handle refuses to load different ones). None for ``"hf-hub:"`` and
        ``"local-dir:"`` models, which carry their weights.
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype; ``"auto"`` is fp16 on CUDA and fp32 elsewhere.
    revision : str, optional
        The revision the weights must have (set when unpickling).

    Attributes
    ----------
    identity : str
        ``"open_clip:<label>@<revision>"``. The label is
        ``"<architecture>/<tag>"``, ``"hf-hub:<repo id>"``,
        ``"<architecture>/<checkpoint file or directory name>"`` or a model
        directory's name, so that moving local weights keeps the identity.
        The revision is the Hub commit of cached weights, or a content
        digest of local or random weights; weights that open_clip downloads
        from a URL have none.
    dim : int
        Width of the embeddings.
    """

    backend = "open_clip"

    def __init__(
        self,
        architecture: str,
        pretrained: str | None,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        revision: str | None = None,
    ) -> None:
        # Not TorchEncoder.__init__: it reads "@" in a name as a revision pin,
        # and here an "@" may be part of a checkpoint's file name.
        self.architecture, self.pretrained, self._label = _locate(architecture, pretrained)
        if self.pretrained is not None:
            self.name = f"{self.architecture}/{self.pretrained}"
        elif self.architecture.startswith((_HF_HUB, _LOCAL_DIR)):
            self.name = self.architecture
        else:
            self.name = f"{self.architecture}/random-init"
        self.device = device
        self.precision = check_precision(precision)
        self._device = resolve_device(device)
        loaded = cached_model(
            self.backend, self.name, revision, self._device, lambda: self._load(revision)
        )
        self._set_loaded(loaded)

    def _offline_hint(self) -> str:
        if self.architecture.startswith(_HF_HUB):
            repo = self.architecture[len(_HF_HUB) :]
            return (
                "To load it offline, download the model on a machine with internet access "
                f"(`hf download {repo} --local-dir model-dir`), copy that directory here and "
                "pass encoder='open_clip:/path/to/model-dir'."
            )
        return (
            "To load it offline, get the checkpoint on a machine with internet access "
            f"(open_clip.create_model_and_transforms({self.architecture!r}, "
            f"pretrained={self.pretrained!r}) leaves it in the Hugging Face cache), copy the "
            "file here and pass "
            f"encoder='open_clip:{self.architecture}//path/to/open_clip_model.safetensors' "
            f"(or a directory holding it: 'open_clip:{self.architecture}//path/to/dir')."
        )

    def _weights(self, open_clip: Any) -> tuple[str | None, _HubFiles | None]:
        """open_clip's ``pretrained`` argument, and where Hub weights are cached.

        Hub weights missing from the local cache are asked for once, so that
        an offline machine fails at once with a clear message.
        """
        if self.architecture.startswith(_HF_HUB):
            hub = (self.architecture[len(_HF_HUB) :], (_CONFIG_FILE,))
        elif self.pretrained is None:
            return None, None
        elif Path(self.pretrained).is_absolute():
            path = Path(self.pretrained)
            if path.is_dir():
                path = _checkpoint_in(path, f"open_clip:{self.name}")
            return str(path), None
        else:
            hub = _hub_weights(open_clip.get_pretrained_cfg(self.architecture, self.pretrained))
            if hub is None:  # a tag that open_clip downloads from a URL
                return self.pretrained, None
        if _cached_commit(*hub) is None:
            _ask_hub(f"open_clip:{self.name}", hub[0], self._offline_hint())
        return self.pretrained, hub

    def _revision(self, model: torch.nn.Module, hub: _HubFiles | None) -> str | None:
        """The Hub commit of cached weights, or a digest of local or random weights."""
        if hub is not None:
            return _cached_commit(*hub)
        if self.architecture.startswith(_LOCAL_DIR):
            return f"sha256:{directory_digest(self.architecture[len(_LOCAL_DIR) :])[:16]}"
        if self.pretrained is None:
            return f"sha256:{_weights_digest(model)}"
        path = Path(self.pretrained)
        if path.is_dir():
            return f"sha256:{directory_digest(path)[:16]}"
        if path.is_absolute():
            return f"sha256:{_file_digest(path)}"
        return None

    def _load(self, revision: str | None) -> LoadedModel:
        open_clip = import_open_clip()
        pretrained, hub = self._weights(open_clip)
        model, _, preprocess = open_clip.create_model_and_transforms(
            self.architecture, pretrained=pretrained, device=self._device
        )
        model.eval()
        tokenizer = open_clip.get_tokenizer(self.architecture)
        found = self._revision(model, hub)
        if revision is not None and found != revision:
            raise ValueError(
                f"open_clip:{self.name} loaded at revision {found!r}, not the "
                f"expected {revision!r}."
            )
        with torch.inference_mode():
            dim = int(model.encode_text(tokenizer(["a"]).to(self._device)).shape[-1])
        return LoadedModel(
            model=(model, preprocess, tokenizer), label=self._label, revision=found, dim=dim
        )

    def encode_text(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 256,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed texts; returns float32 ``(len(texts), dim)`` unit rows."""
        model, _, tokenizer = self.model

        def embed_batch(batch: list[str]) -> torch.Tensor:
            return model.encode_text(tokenizer(batch).to(self._device), normalize=True)

        return self._batched_embed(list(texts), batch_size=batch_size,
                                   show_progress=show_progress, kind="Text",
                                   embed_batch=embed_batch)

    def encode_image(
        self,
        images: Sequence[Any],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed PIL images; returns float32 ``(len(images), dim)`` unit rows.

        Use :func:`skhftt.embedding.inputs.to_embeddings` for file paths, arrays and
        tensors: it decodes and converts them to RGB PIL images first.
        """
        images = pil_images(images)
        model, preprocess, _ = self.model

        def embed_batch(batch: list[Any]) -> torch.Tensor:
            pixels = torch.stack([preprocess(image) for image in batch]).to(self._device)
            return model.encode_image(pixels, normalize=True)

        return self._batched_embed(images, batch_size=batch_size,
                                   show_progress=show_progress, kind="Image",
                                   embed_batch=embed_batch)

    def pixel_transform(self) -> Any:
        """open_clip's image preprocessing: RGB PIL image -> ``(C, H, W)`` tensor."""
        return self.model[1]

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed a ``(N, C, H, W)`` batch made by :meth:`pixel_transform`."""
        model = self.model[0]
        with self.inference_context():
            features = model.encode_image(pixels.to(self._device), normalize=True)
        return unit_rows(features.float().cpu().numpy(), what="image embeddings")


def open_clip_from_spec(spec: str, device: str | torch.device) -> OpenCLIPEncoder:
    """Build an :class:`OpenCLIPEncoder` from an ``open_clip:`` spec (without the prefix)."""
    architecture, pretrained = parse_open_clip_spec(spec)
    return OpenCLIPEncoder(architecture, pretrained, device=device)
