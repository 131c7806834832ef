"""Build the configured embedding provider."""

from __future__ import annotations

from rag_core.base.settings import Settings
from rag_core.embeddings.base import Embedder


def build_embedder(settings: Settings) -> Embedder:
    """The provider named by ``EMBEDDING_PROVIDER`` (``local`` unless Azure is configured)."""
    if settings.embedding_provider == "local":
        from rag_core.embeddings.local import LocalE5Embedder

        return LocalE5Embedder(threads=settings.embedding_threads, workers=settings.embedding_workers)
    from rag_core.embeddings.openai_compat import OpenAIEmbedder

    return OpenAIEmbedder.from_settings(settings)
