"""From user inputs to unit embeddings: encoders, image decoding, inputs, cache.

* :mod:`skhftt.embedding.encoders` -- the models (sentence-transformers,
  open_clip, BLIP, user objects) behind one protocol and a spec registry.
* :mod:`skhftt.embedding.images` -- image decoding (:func:`load_image`) and
  the list of image file extensions.
* :mod:`skhftt.embedding.pipeline` -- the one image pipeline: images decoded
  a batch ahead of the encoder, in threads or worker processes, and embedded.
* :mod:`skhftt.embedding.inputs` -- what methods that take images accept
  (paths, PIL images, arrays, tensors, embeddings, :class:`Texts`).
* :mod:`skhftt.embedding.cache` -- the text-embedding cache.
* :mod:`skhftt.embedding.progress` -- progress reports of long encodes.
"""

from __future__ import annotations

from skhftt.embedding.cache import cache_info, clear_embedding_cache, default_cache_dir
from skhftt.embedding.images import IMAGE_EXTENSIONS, load_image
from skhftt.embedding.inputs import ImagePaths, Texts, to_embeddings

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImagePaths",
    "Texts",
    "cache_info",
    "clear_embedding_cache",
    "default_cache_dir",
    "load_image",
    "to_embeddings",
]
