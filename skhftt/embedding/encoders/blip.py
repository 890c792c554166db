"""BLIP image-text retrieval models through Transformers (the HFTT paper's BLIP backbones).

Spec strings: ``"blip:<hub id>"`` (``"blip:Salesforce/blip-itm-base-coco"``,
``"blip:Salesforce/blip-itm-large-coco"``, optionally ``@<revision>``) or
``"blip:<directory>"`` (written by ``save_pretrained``). The model is loaded
with :class:`transformers.BlipForImageTextRetrieval` and its
:class:`transformers.BlipProcessor`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from skhftt.embedding.encoders._hub import load_pretrained, model_location
from skhftt.embedding.encoders._torch import LoadedModel, TorchEncoder, unit_rows
from skhftt.embedding.encoders.sentence_transformer import PixelTransform

if TYPE_CHECKING:
    import torch

INSTALL_HINT = 'pip install "transformers>=4.30"'


def _import_blip() -> tuple[Any, Any]:
    try:
        from transformers import BlipForImageTextRetrieval, BlipProcessor
    except ImportError as exc:
        raise ImportError(
            f"The blip encoder backend needs transformers with BLIP: {INSTALL_HINT} "
            f"(importing it failed with: {exc})"
        ) from exc
    return BlipForImageTextRetrieval, BlipProcessor


class BlipEncoder(TorchEncoder):
    """Encoder backed by a BLIP image-text retrieval model (``BlipForImageTextRetrieval``).

    The joint space is BLIP's image-text contrastive space: a text is the
    ``text_proj`` projection of the text encoder's ``[CLS]`` output, the
    text encoder run alone (unimodal, no cross-attention to an image); an
    image is the ``vision_proj`` projection of the vision encoder's
    ``[CLS]`` output. Both are L2-normalised. This is what the HFTT paper's
    BLIP backbones are and what ``BlipForImageTextRetrieval`` compares with
    ``use_itm_head=False``.

    Parameters
    ----------
    name : str or path-like
        A Hugging Face Hub id (``"Salesforce/blip-itm-base-coco"``,
        ``"Salesforce/blip-itm-large-coco"``, optionally
        ``"<id>@<revision>"``) or a local directory written by
        ``save_pretrained`` (model and processor).
    device : str, default="auto"
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"`` or ``"mps"``.
    precision : {"auto", "fp32", "fp16", "bf16"}, default="auto"
        Autocast dtype of the forward pass; ``"auto"`` is fp16 on CUDA and
        fp32 elsewhere. Outputs are float32 either way.
    revision : str, optional
        Hub revision (commit, branch or tag). For a local directory, the
        content digest (``"sha256:<16 hex>"``) its files must have.

    Attributes
    ----------
    identity : str
        ``"blip:<hub id>@<commit>"`` or ``"blip:<directory name>@sha256:<16 hex>"``.
    dim : int
        Width of the embeddings (``image_text_hidden_size``: 256 for the
        Salesforce checkpoints).
    revision : str or None
        The commit or content digest the weights were loaded at.

    Notes
    -----
    **Temperature.** BLIP's similarities are spread differently from CLIP's,
    so HFTT's softmax temperature changes with the backbone. The official
    HFTT code uses ``temperature=0.0174`` with blip-base
    (``Salesforce/blip-itm-base-coco``) and ``temperature=0.0222`` with
    blip-large (``Salesforce/blip-itm-large-coco``), against 0.01 for CLIP::

        HFTTDetector(encoder="blip:Salesforce/blip-itm-base-coco", temperature=0.0174)

    Texts longer than the text encoder's position limit are truncated. A Hub
    id is looked up in the local Hugging Face cache first; when it is
    missing and the Hub cannot be reached, loading fails within seconds
    with :class:`~skhftt.embedding.encoders.EncoderUnavailableError`, which says how
    to load the model from a directory instead.

    The object is a handle: the weights sit in a per-process cache,
    ``sklearn.base.clone`` returns the handle itself, and a pickle holds the
    name and revision only.

    References
    ----------
    .. [1] J. Li, D. Li, C. Xiong, S. Hoi, "BLIP: Bootstrapping
       Language-Image Pre-training for Unified Vision-Language Understanding
       and Generation", ICML 2022.
    """

    backend = "blip"

    def _load(self, revision: str | None) -> LoadedModel:
        model_class, processor_class = _import_blip()

        def load(**kwargs: Any) -> tuple[Any, Any]:
            model = model_class.from_pretrained(self.name, **kwargs)
            return model, processor_class.from_pretrained(self.name, **kwargs)

        (model, processor), label, found = load_pretrained(
            self.name, revision, load, prefix="blip:"
        )
        model = model.to(self._device).eval()
        dim = int(model.text_proj.out_features)
        return LoadedModel(model=(model, processor), label=label, revision=found, dim=dim)

    def encode_text(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 256,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed texts; returns float32 ``(len(texts), dim)`` unit rows."""
        model, processor = self.model
        limit = model.config.text_config.max_position_embeddings

        def embed_batch(batch: list[str]) -> torch.Tensor:
            tokens = processor.tokenizer(
                batch, padding=True, truncation=True, max_length=limit, return_tensors="pt"
            )
            hidden = model.text_encoder(
                input_ids=tokens["input_ids"].to(self._device),
                attention_mask=tokens["attention_mask"].to(self._device),
            ).last_hidden_state
            return model.text_proj(hidden[:, 0, :])

        return self._batched_embed(
            list(texts),
            batch_size=batch_size,
            show_progress=show_progress,
            kind="Text",
            embed_batch=embed_batch,
        )

    def encode_image(
        self,
        images: Sequence[Any],
        *,
        batch_size: int = 64,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed images; returns float32 ``(len(images), dim)`` unit rows.

        Each image is a PIL image, an array, a tensor, a file path or encoded
        bytes, decoded to RGB by :func:`skhftt.embedding.images.load_image`
        (the decoder every skhftt input goes through).
        """
        from skhftt.embedding.images import load_image

        images = [
            load_image(image, source=f"images[{index}]") for index, image in enumerate(images)
        ]
        image_processor = self.model[1].image_processor

        def embed_batch(batch: list[Any]) -> torch.Tensor:
            pixels = image_processor(images=batch, return_tensors="pt")["pixel_values"]
            return self._image_features(pixels)

        return self._batched_embed(
            images,
            batch_size=batch_size,
            show_progress=show_progress,
            kind="Image",
            embed_batch=embed_batch,
        )

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        model = self.model[0]
        hidden = model.vision_model(pixel_values=pixels.to(self._device)).last_hidden_state
        return model.vision_proj(hidden[:, 0, :])

    def pixel_transform(self) -> PixelTransform:
        """BLIP's image preprocessing: RGB PIL image -> ``(C, H, W)`` tensor (picklable)."""
        return PixelTransform(self.model[1].image_processor)

    def encode_pixels(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed a ``(N, C, H, W)`` batch made by :meth:`pixel_transform`.

        Returns
        -------
        ndarray of shape (N, dim)
            float32 unit rows, equal to :meth:`encode_image` on the images.
        """
        with self.inference_context():
            features = self._image_features(pixels)
        return unit_rows(features.float().cpu().numpy(), what="image embeddings")


def blip_from_spec(spec: str, device: str | torch.device) -> BlipEncoder:
    """Build a :class:`BlipEncoder` from a Hub id or a model directory.

    An existing directory is loaded from disk. A string that looks like a
    path but is not a directory is an error, never a Hub lookup.
    """
    forms = "expected a BLIP model directory or a Hub id such as 'Salesforce/blip-itm-base-coco'"
    return BlipEncoder(model_location(spec, prefix="blip:", forms=forms), device=device)
