"""The embedding provider interface shared by the local, OpenAI and Azure providers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class EmbeddingUsage:
    """What a provider has done since it was built; tests assert on these counters."""

    calls: int = 0  # provider requests (one HTTP request or one model batch)
    texts: int = 0  # texts embedded


class Embedder(ABC):
    """Turns phase texts (passages) and search texts (queries) into vectors.

    ``model_id`` names the model and its vector space: it is stored on every
    point, so a collection built with one model refuses another.
    """

    model_id: str
    dimension: int

    def __init__(self) -> None:
        self.usage = EmbeddingUsage()

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed stored documents, in batches; returns one vector per text."""
        if not texts:
            return []
        vectors = self._embed(list(texts), is_query=False)
        self.usage.texts += len(texts)
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """Embed one search text."""
        vector = self._embed([text], is_query=True)[0]
        self.usage.texts += 1
        return vector

    @abstractmethod
    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        """Embed texts (batching, truncation and retries are the provider's job);
        increments ``self.usage.calls`` once per request or model batch."""
