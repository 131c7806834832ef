"""Embedding providers: ``local`` (offline, bundled weights), ``openai`` and ``azure``."""

from rag_core.embeddings.base import Embedder, EmbeddingUsage
from rag_core.embeddings.factory import build_embedder

__all__ = ["Embedder", "EmbeddingUsage", "build_embedder"]
