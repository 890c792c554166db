"""The one image pipeline: decode images a batch ahead of the encoder, then embed them.

In-memory scoring (:func:`skhftt.embedding.inputs.to_embeddings`) and batch
jobs (:mod:`skhftt.batch.images`) read images through :func:`embed_images`.
Its *source* is any sequence of images known by position: ``len(source)``,
``source.item_id(i)`` (the id of item ``i``, or None) and ``source.load(i)``
(item ``i`` decoded by :func:`skhftt.embedding.images.load_image`, raising
if it cannot be); a source that holds data for several items at once (rows
of a table) may also offer ``source.release(stop)``, called when the items
before ``stop`` will not be asked for again. Items are decoded

* by threads of this process (``num_workers=0``): PIL and numpy release the
  GIL while they decode and resize;
* or by a torch ``DataLoader`` with ``num_workers`` worker processes (batch
  jobs on many cores);

one batch ahead of the encoder, so memory holds a few batches whatever the
number of images. An encoder that also offers ``pixel_transform()`` (a
picklable callable from an RGB PIL image to a ``(C, H, W)`` tensor) and
``encode_pixels(pixels)`` (embed a stacked ``(N, C, H, W)`` batch) has its
preprocessing run by the decoders too; on CUDA those batches are pinned, so
they travel to the device asynchronously. Otherwise the decoders hand over
PIL images and ``encode_image`` preprocesses them.

With ``errors="record"`` an item that cannot be decoded, or that the encoder
fails on alone, becomes an error for its row and the others are embedded;
with ``errors="raise"`` the first failure is raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from skhftt.embedding.encoders.base import Encoder
from skhftt.embedding.images import is_tensor

__all__ = ["EmbeddedBatch", "ImageSource", "describe", "embed_images"]

_MAX_DECODE_THREADS = 8
_PREFETCH_BATCHES = 4  # per DataLoader worker


class ImageSource(Protocol):
    """Images known by position: what :func:`embed_images` reads."""

    def __len__(self) -> int:
        """Number of items."""
        ...

    def item_id(self, index: int) -> str | None:
        """The id of item ``index`` (None when it has none)."""
        ...

    def load(self, index: int) -> Any:
        """Item ``index`` as an RGB PIL image; raises when it cannot be decoded."""
        ...


def _release(source: ImageSource, stop: int) -> None:
    release = getattr(source, "release", None)
    if release is not None:
        release(stop)


def describe(exc: BaseException) -> str:
    """An exception as one line: its type and message."""
    return f"{type(exc).__name__}: {exc}"


def pixel_transform(encoder: Encoder) -> Callable | None:
    """The encoder's picklable image preprocessing, when it offers the pixel path."""
    if hasattr(encoder, "pixel_transform") and hasattr(encoder, "encode_pixels"):
        return encoder.pixel_transform()
    return None


# (id, decoded image or pixel tensor, None) or (id, None, error message)
Sample = tuple[str | None, Any, str | None]


def _sample(source: ImageSource, transform: Callable | None, index: int,
            record: bool) -> Sample:
    name = None
    try:
        name = source.item_id(index)
        image = source.load(index)
        return name, image if transform is None else transform(image), None
    except Exception as exc:  # a failure is this item's, never the batch's
        if not record:
            raise
        return name, None, describe(exc)


class _Decoding:
    """Map-style dataset for the ``DataLoader``: item ``i`` is :func:`_sample` of ``i``."""

    def __init__(self, source: ImageSource, transform: Callable | None) -> None:
        self.source = source
        self.transform = transform

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> Sample:
        # A worker decodes its batches in order: what it held for earlier items is done.
        _release(self.source, index)
        return _sample(self.source, self.transform, index, record=True)


@dataclass
class DecodedBatch:
    """Every item's id; the decoded items' inputs and positions; the failed items' errors."""

    ids: list[str | None]
    rows: list[int]
    inputs: list[Any] | Any
    errors: dict[int, str]

    def pin_memory(self) -> DecodedBatch:
        """Pin a pixel tensor (the ``DataLoader`` calls this when ``pin_memory=True``)."""
        if hasattr(self.inputs, "pin_memory"):
            self.inputs = self.inputs.pin_memory()
        return self


def collate(samples: Sequence[Sample]) -> DecodedBatch:
    """Keep decoded items and per-item errors apart; stack pixel tensors."""
    rows = [position for position, (_, _, error) in enumerate(samples) if error is None]
    inputs = [samples[position][1] for position in rows]
    if inputs and is_tensor(inputs[0]):
        import torch

        inputs = torch.stack(inputs)
    return DecodedBatch(
        ids=[name for name, _, _ in samples],
        rows=rows,
        inputs=inputs,
        errors={position: error for position, (_, _, error) in enumerate(samples)
                if error is not None},
    )


def _thread_batches(source: ImageSource, transform: Callable | None, batch_size: int,
                    record: bool, pin: bool) -> Iterator[DecodedBatch]:
    """Batches decoded by threads, the next one submitted before this one is handed over."""
    from sklearn.utils import gen_batches  # scikit-learn is slow to import: only when needed

    threads = max(1, min(_MAX_DECODE_THREADS, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        pending: tuple[slice, list[Future[Sample]]] | None = None
        for rows in [*(gen_batches(len(source), batch_size) if len(source) else ()), None]:
            submitted = None if rows is None else (rows, [
                pool.submit(_sample, source, transform, index, record)
                for index in range(rows.start, rows.stop)
            ])
            if pending is not None:
                done, futures = pending
                batch = collate([future.result() for future in futures])
                _release(source, done.stop)
                yield batch.pin_memory() if pin else batch
            pending = submitted


def _decoded_batches(source: ImageSource, transform: Callable | None, *, batch_size: int,
                     num_workers: int, record: bool, pin: bool) -> Iterator[DecodedBatch]:
    if not num_workers:
        return _thread_batches(source, transform, batch_size, record, pin)
    import torch

    return iter(torch.utils.data.DataLoader(
        _Decoding(source, transform),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=pin,
        prefetch_factor=_PREFETCH_BATCHES,
    ))


def _encode(encoder: Encoder, inputs: Any, batch_size: int, pixels: bool) -> np.ndarray:
    if pixels:
        return encoder.encode_pixels(inputs)
    return encoder.encode_image(inputs, batch_size=batch_size, show_progress=False)


def _encode_items(encoder: Encoder, batch: DecodedBatch, batch_size: int,
                  pixels: bool) -> tuple[np.ndarray, dict[int, str]]:
    """Embed a batch; if it fails, embed item by item so only the bad items fail.

    When every item fails alone too, the fault is not the items' (a model
    or device error): it is raised.
    """
    try:
        return _encode(encoder, batch.inputs, batch_size, pixels), {}
    except Exception as batch_error:
        rows, errors = [], {}
        for position, row in enumerate(batch.rows):
            try:
                rows.append(_encode(encoder, batch.inputs[position : position + 1], 1, pixels))
            except Exception as exc:  # this item's failure; the others are embedded
                errors[row] = describe(exc)
        if not rows:
            raise batch_error
        return np.concatenate(rows), errors


@dataclass
class EmbeddedBatch:
    """Consecutive items of a source, embedded.

    Attributes
    ----------
    ids : list of str or None
        Every item's id.
    embeddings : ndarray of shape (n, dim), float32
        The encoder's rows; zeros for items with an error.
    errors : ndarray of shape (n,), object, or None
        An error message per item (None where the item is fine); None when
        every item is fine.
    """

    ids: list[str | None]
    embeddings: np.ndarray
    errors: np.ndarray | None

    def __len__(self) -> int:
        return len(self.ids)


def _embed(encoder: Encoder, batch: DecodedBatch, *, batch_size: int, pixels: bool,
           dim: int | None, record: bool) -> EmbeddedBatch:
    encoded, errors = None, dict(batch.errors)
    if batch.rows:
        if record:
            encoded, failed = _encode_items(encoder, batch, batch_size, pixels)
            errors.update(failed)
        else:
            encoded = _encode(encoder, batch.inputs, batch_size, pixels)
    if not errors:
        return EmbeddedBatch(batch.ids, encoded, None)
    n = len(batch.ids)
    embeddings = np.zeros((n, dim if encoded is None else encoded.shape[1]), np.float32)
    good = [row for row in batch.rows if row not in errors]
    if good:
        embeddings[good] = encoded
    messages = np.empty(n, dtype=object)
    for row, message in errors.items():
        messages[row] = message
    return EmbeddedBatch(batch.ids, embeddings, messages)


def embed_images(
    source: ImageSource,
    encoder: Encoder,
    *,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    dim: int | None = None,
    errors: Literal["record", "raise"] = "record",
) -> Iterator[EmbeddedBatch]:
    """Decode and embed the items of ``source``, a batch at a time, in order.

    Parameters
    ----------
    source : ImageSource
        The images (see the module documentation).
    encoder : Encoder
        Embeds the decoded images.
    batch_size : int
        Images per batch.
    num_workers : int, default=0
        ``DataLoader`` worker processes decoding images; 0 decodes in
        threads of this process.
    pin_memory : bool, default=False
        Pin pixel batches (for an encoder on CUDA).
    dim : int, optional
        Width of the embeddings: needed to record a batch in which every
        item failed.
    errors : {"record", "raise"}, default="record"
        ``"record"``: an item that cannot be decoded or embedded gets an
        error, the batch goes on (a failure of every item of a batch alone
        is the model's, and is raised). ``"raise"``: the first failure is
        raised, with its own type.

    Yields
    ------
    EmbeddedBatch
    """
    transform = pixel_transform(encoder)
    record = errors == "record"
    batches = _decoded_batches(source, transform, batch_size=batch_size,
                               num_workers=num_workers, record=record,
                               pin=pin_memory and transform is not None)
    for batch in batches:
        yield _embed(encoder, batch, batch_size=batch_size, pixels=transform is not None,
                     dim=dim, record=record)
