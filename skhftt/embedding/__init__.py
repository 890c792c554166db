"""From user inputs to unit embeddings: encoders, image decoding, inputs, cache.

* :mod:`skhftt.embedding.encoders` -- the models (sentence-transformers,
  open_clip, BLIP, user objects) behind one protocol and a spec registry.
* :mod:`skhftt.embedding.inputs` -- what methods that take images accept
  (paths, PIL images, arrays, tensors, embeddings, :class:`Texts`).
* :mod:`skhftt.embedding.cache` -- the text-embedding cache.
"""

from __future__ import annotations

from skhftt.embedding.inputs import ImagePaths, Texts, load_image, to_embeddings

__all__ = ["ImagePaths", "Texts", "load_image", "to_embeddings"]
