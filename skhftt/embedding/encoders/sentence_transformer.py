"""The default backend: any model sentence-transformers loads (CLIP, SigLIP, ...).

sentence-transformers reads Hugging Face CLIP and SigLIP checkpoints (a Hub
id or a directory written by ``save_pretrained``) and embeds both texts and
PIL images. Text-only models (e.g. all-MiniLM-L6-v2) load too and embed
texts; asking them for images is a clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from skhftt.embedding.encoders._hub import load_pretrained, model_location
from skhftt.embedding.encoders._torch import LoadedModel, TorchEncoder, pil_images, unit_rows

if TYPE_CHECKING:
    import torch

INSTALL_HINT = 'pip install "sentence-transformers[image]"'


def _import_sentence_transformer() -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            "The sentence_transformers encoder backend needs sentence-transformers "
            f"with its image extra: {INSTALL_HINT}"
        ) from exc
    return SentenceTransformer


def _cap_text_length(model: Any) -> None:
    """Truncate texts at the text tower's position limit (77 tokens for CLIP).

    A Transformers CLIP tokenizer saved without ``model_max_length`` makes
    sentence-transformers accept texts of any length, which the position
    embeddings then reject; truncating as CLIP itself does is the useful
    behaviour.
    """
    config = getattr(getattr(model[0], "auto_model", None), "config", None)
    text_config = getattr(config, "text_config", None) or config
    limit = getattr(text_config, "max_position_embeddings", None)
    current = model.max_seq_length
    if isinstance(limit, int) and (current is None or current > limit):
        model.max_seq_length = limit


def _embedding_dim(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or getattr(
        model, "get_sentence_embedding_dimension", None
    )
    dim = getter() if getter is not None else None
    if dim is None:
        dim = model.encode(["a"], convert_to_numpy=True).shape[1]
    return int(dim)


class PixelTransform:
    """Picklable RGB PIL image -> ``(C, H, W)`` float tensor, as the model expects.

    Wraps the model's own image processor, so that DataLoader workers can
    preprocess while the main process runs the model
    (:meth:`SentenceTransformerEncoder.encode_pixels`).
    """

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor

    def __call__(self, image: Any) -> torch.Tensor:
        return self.image_processor(images=[image], return_tensors="pt")["pixel_values"][0]


class SentenceTransformerEncoder(TorchEncoder):
    """Encoder backed by a sentence-transformers model.

    Parameters
    ----------
    name : str or path-like
        A Hugging Face Hub id (``"openai/clip-vit-base-patch16"``, optionally
        ``"<id>@<revision>"``) or a local model directory (written by
        ``save_pretrained`` / ``SentenceTransformer.save``, or a Hub snapshot).
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype of the forward pass; ``"auto"`` is fp16 on CUDA and fp32
        elsewhere. Outputs are float32 either way.
    revision : str, optional
        Hub revision (commit, branch or tag) to load. For a local directory,
        the content digest (``"sha256:<16 hex>"``) the files must have.

    Attributes
    ----------
    identity : str
        ``"sentence_transformers:<hub id>@<commit>"`` for a Hub model (the
        commit of the cached snapshot), or
        ``"sentence_transformers:<directory name>@sha256:<16 hex>"`` for a
        local directory, where the digest covers the names and contents of
        all its files. Equal identities mean the same weights.
    dim : int
        Width of the embeddings.
    revision : str or None
        The commit or content digest the weights were loaded at.

    Notes
    -----
    A Hub id is first looked up in the local Hugging Face cache without any
    network access. Only when it is missing is the Hub asked, once and with
    a short timeout (``SKHFTT_HUB_TIMEOUT``, default 10 s): an unreachable Hub
    raises :class:`~skhftt.embedding.encoders.EncoderUnavailableError` at once instead
    of retrying for minutes.

    The object is a handle: the weights sit in a per-process cache shared by
    every handle for the same model and device, ``sklearn.base.clone``
    returns the handle itself, and a pickle holds the name and revision only.
    """

    backend = "sentence_transformers"

    def _load(self, revision: str | None) -> LoadedModel:
        sentence_transformer = _import_sentence_transformer()
        device = str(self._device)
        model, label, digest = load_pretrained(
            self.name, revision, lambda **kwargs: sentence_transformer(
                self.name, device=device, **kwargs
            )
        )
        _cap_text_length(model)
        model.eval()
        return LoadedModel(model=model, label=label, revision=digest, dim=_embedding_dim(model))

    def encode_text(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 256,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed texts; returns float32 ``(len(texts), dim)`` unit rows."""
        return self._encode(list(texts), batch_size, show_progress, what="text embeddings")

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
        if not images:
            return np.empty((0, self.dim), dtype=np.float32)
        modalities = getattr(self.model, "modalities", None)
        if modalities is not None and "image" not in modalities:
            raise ValueError(
                f"The encoder {self.identity!r} embeds only {', '.join(modalities)}, "
                "not images; use a CLIP or SigLIP model for images."
            )
        return self._encode(images, batch_size, show_progress, what="image embeddings")

    def _encode(self, items: list[Any], batch_size: int, show_progress: bool, *,
                what: str) -> np.ndarray:
        """sentence-transformers' ``encode`` of texts or images, as unit float32 rows."""
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        with self.inference_context():
            embeddings = self.model.encode(
                items,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=show_progress,
            )
        return unit_rows(embeddings, what=what)

    def pixel_transform(self) -> PixelTransform | None:
        """The model's image preprocessing as a picklable callable, or None.

        Returns
        -------
        PixelTransform or None
            Maps an RGB PIL image to the ``(C, H, W)`` tensor that
            :meth:`encode_pixels` takes; None when the model has no image
            processor (a text-only model) or the installed sentence-transformers
            does not route image features by modality.
        """
        model = self.model
        module = model[0]
        image_processor = getattr(getattr(module, "processor", None), "image_processor", None)
        if image_processor is None or "image" not in getattr(module, "modality_config", {}):
            return None
        return PixelTransform(image_processor)

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed a ``(N, C, H, W)`` batch made by :meth:`pixel_transform`.

        Returns
        -------
        ndarray of shape (N, dim)
            float32 unit rows, equal to :meth:`encode_image` on the images.
        """
        model = self.model
        with self.inference_context():
            features = {"pixel_values": pixels.to(self._device), "modality": "image"}
            embeddings = model(features)["sentence_embedding"].float().cpu().numpy()
        return unit_rows(embeddings, what="image embeddings")


def sentence_transformer_from_spec(
    spec: str, device: str | torch.device
) -> SentenceTransformerEncoder:
    """Build a :class:`SentenceTransformerEncoder` from a Hub id or a directory.

    An existing directory is loaded from disk. A string that looks like a
    path (starts with ``/``, ``.`` or ``~``) but is not a directory is an
    error, never a Hub lookup.
    """
    from skhftt.embedding.encoders.registry import known_forms

    return SentenceTransformerEncoder(model_location(spec, forms=known_forms()), device=device)
