"""What one process of the app shares: settings, storage clients, job records, the knowledge base.

The HTTP API, the triggers and the local runner all take an ``AppContext``; the
Functions app builds the process-wide one lazily on first use (so importing
``function_app`` opens nothing), tests build their own.

The HTTP API runs its handlers in a thread pool beside the queue worker. The
embedded edge engine and a Qdrant server both take calls from several threads at
once, and the local embedding model guards its own native state
(rag_core.embeddings.local), so knowledge-base calls run concurrently.
:meth:`AppContext.knowledge` serialises them only for an engine that is not
thread-safe: qdrant-client's pure-Python local mode, when a caller hands one in.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from functools import cached_property, lru_cache

from rag_core.base.logs import configure_logging
from rag_core.base.settings import Settings, get_settings
from rag_core.base.storage import Storage
from rag_core.jobs.records import JobStore
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import KnowledgeStats

logger = logging.getLogger(__name__)


class AppContext:
    def __init__(self, settings: Settings, *, kb: KnowledgeBase | None = None) -> None:
        self.settings = settings
        self._kb = kb
        self._kb_lock = threading.RLock()
        # The last totals computed per brand scope, answered while a long write holds the
        # knowledge base (see knowledge_if_free).
        self.last_stats: dict[int | None, KnowledgeStats] = {}
        self.last_qdrant_health: bool | None = None

    @cached_property
    def storage(self) -> Storage:
        return Storage(self.settings)

    @cached_property
    def jobs(self) -> JobStore:
        return JobStore(self.storage.table(self.settings.jobs_table))

    @cached_property
    def _knowledge_base(self) -> KnowledgeBase:
        return self._kb or KnowledgeBase(self.settings)

    def warm_up(self) -> threading.Thread | None:
        """Open the knowledge base and, where its engine takes concurrent readers, read what the
        first requests need in a background thread (None where it would hold the engine)."""
        kb = self._knowledge_base
        if not kb.thread_safe:
            return None

        def read() -> None:
            try:
                kb.warm_up()
            except Exception:  # the first request reads it instead; a warm-up is never an error
                logger.warning("warming up the knowledge base failed", exc_info=True)

        thread = threading.Thread(target=read, name="knowledge-warm-up", daemon=True)
        thread.start()
        return thread

    @contextlib.contextmanager
    def knowledge(self) -> Iterator[KnowledgeBase]:
        """The knowledge base, held exclusively for the block when its engine must not be shared."""
        kb = self._knowledge_base
        if kb.thread_safe:
            yield kb
            return
        with self._kb_lock:
            yield kb

    @contextlib.contextmanager
    def knowledge_if_free(self, wait: float) -> Iterator[KnowledgeBase | None]:
        """Like :meth:`knowledge`, but None when it is not free within ``wait`` seconds.

        Where the engine must be serialised (qdrant-client's local mode), an ingest holds the
        knowledge base for its whole run (embedding included: minutes for a 10,000-phase
        analysis on the local model); a read that can answer from what it knew before (the
        stats totals) uses this instead of queueing behind it. Thread-safe engines never wait.
        """
        kb = self._knowledge_base
        if kb.thread_safe:
            yield kb
        elif self._kb_lock.acquire(timeout=wait):
            try:
                yield kb
            finally:
                self._kb_lock.release()
        else:
            yield None


@lru_cache(maxsize=1)
def default_context() -> AppContext:
    """The process-wide context from the environment / local.settings.json, with its logging set up."""
    settings = get_settings()
    configure_logging(settings)
    context = AppContext(settings)
    context.warm_up()
    return context
