"""Optional backend: open_clip models (``pip install "skhftt[openclip]"``).

Spec strings: ``"open_clip:<architecture>/<pretrained tag>"`` (for example
``"open_clip:ViT-B-16/openai"``; ``open_clip.list_pretrained()`` lists the
pairs), ``"open_clip:<architecture>/<checkpoint file>"``, or
``"open_clip:hf-hub:<repo id>"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from skhftt.embedding.encoders._hub import cached_commit, probe_hub
from skhftt.embedding.encoders._torch import LoadedModel, TorchEncoder, unit_rows

INSTALL_HINT = 'pip install "skhftt[openclip]"'
_HF_HUB = "hf-hub:"


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
    """Split ``"<architecture>/<pretrained>"`` or ``"hf-hub:<repo>"``."""
    if spec.startswith(_HF_HUB):
        if len(spec) == len(_HF_HUB):
            raise ValueError("encoder='open_clip:hf-hub:' names no repository.")
        return spec, None
    architecture, _, pretrained = spec.partition("/")
    if not architecture or not pretrained:
        raise ValueError(
            f"encoder='open_clip:{spec}' must name an architecture and its pretrained "
            "weights, e.g. 'open_clip:ViT-B-16/openai' (open_clip.list_pretrained() "
            "lists them) or 'open_clip:ViT-B-16//path/to/checkpoint.pt'."
        )
    return architecture, pretrained


def _weights_digest(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _hf_cached(repo_id: str) -> bool:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return False
    return True


class OpenCLIPEncoder(TorchEncoder):
    """Encoder backed by an open_clip model.

    Parameters
    ----------
    architecture : str
        An open_clip architecture (``"ViT-B-16"``) or ``"hf-hub:<repo id>"``.
    pretrained : str or None
        A pretrained tag (``"openai"``, ``"laion2b_s34b_b88k"``), a checkpoint
        file, or None: the hub weights for ``"hf-hub:"`` architectures, and
        random initialisation otherwise (for tests and benchmarks; its
        revision is a digest of the random weights, so a pickled handle
        refuses to load different ones).
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
        ``"open_clip:<architecture>/<pretrained>@<revision>"``: the Hub commit
        of cached weights, or a digest of a checkpoint file or random weights;
        weights downloaded from a URL are named by their tag alone.
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
        self.architecture = architecture
        self.pretrained = pretrained
        if pretrained is None:
            name = (
                architecture if architecture.startswith(_HF_HUB) else f"{architecture}/random-init"
            )
        else:
            name = f"{architecture}/{pretrained}"
        super().__init__(name, device=device, precision=precision, revision=revision)

    def _hub_repo(self, open_clip: Any) -> str | None:
        if self.architecture.startswith(_HF_HUB):
            return self.architecture[len(_HF_HUB) :]
        if self.pretrained is None or Path(self.pretrained).expanduser().is_file():
            return None
        config = open_clip.get_pretrained_cfg(self.architecture, self.pretrained)
        if not config:
            raise ValueError(
                f"open_clip has no pretrained weights {self.pretrained!r} for "
                f"{self.architecture!r}; open_clip.list_pretrained() lists the pairs."
            )
        repo = (config.get("hf_hub") or "").strip("/")
        return repo or None

    def _load(self, revision: str | None) -> LoadedModel:
        open_clip = import_open_clip()
        repo = self._hub_repo(open_clip)
        if repo is not None and not _hf_cached(repo):
            probe_hub(repo)
        pretrained = self.pretrained
        checkpoint = None
        if pretrained is not None and Path(pretrained).expanduser().is_file():
            checkpoint = Path(pretrained).expanduser()
            pretrained = str(checkpoint)
        model, _, preprocess = open_clip.create_model_and_transforms(
            self.architecture, pretrained=pretrained, device=self._device
        )
        model.eval()
        tokenizer = open_clip.get_tokenizer(self.architecture)
        if repo is not None:
            found = cached_commit(repo)
        elif checkpoint is not None:
            found = f"sha256:{_file_digest(checkpoint)}"
        elif pretrained is None:
            found = f"sha256:{_weights_digest(model)}"
        else:
            found = None
        if revision is not None and found != revision:
            raise ValueError(
                f"open_clip:{self.name} loaded at revision {found!r}, not the "
                f"expected {revision!r}."
            )
        bundle = (model, preprocess, tokenizer)
        with torch.inference_mode():
            tokens = tokenizer(["a"]).to(self._device)
            dim = int(model.encode_text(tokens).shape[-1])
        return LoadedModel(model=bundle, label=self.name, revision=found, dim=dim)

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
        """Embed PIL images; returns float32 ``(len(images), dim)`` unit rows."""
        model, preprocess, _ = self.model

        def embed_batch(batch: list[Any]) -> torch.Tensor:
            pixels = torch.stack([preprocess(image) for image in batch]).to(self._device)
            return model.encode_image(pixels, normalize=True)

        return self._batched_embed(list(images), batch_size=batch_size,
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
    """Build an :class:`OpenCLIPEncoder` from ``"<architecture>/<pretrained>"``."""
    architecture, pretrained = parse_open_clip_spec(spec)
    return OpenCLIPEncoder(architecture, pretrained, device=device)
