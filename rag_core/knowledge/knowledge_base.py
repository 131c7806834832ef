"""The knowledge base as one object: what the Functions app and the CLIs call.

``KnowledgeBase`` wires the vector engine (embedded edge shard or a Qdrant
server, see :mod:`rag_core.knowledge.engine`), the embedding provider, the store,
the retriever, the analytics and the prompt builder together for one settings
object. Every read and write takes an optional ``brand_id``: when a caller is
scoped to a brand (tenant), everything it sees or changes is filtered to it. Those
that address one video take a :data:`~rag_core.knowledge.store.BrandScope`: video
ids are unique per brand, so an unscoped caller may have to name the owner.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from qdrant_client import models as qm

from rag_core.analysis.record import AnalysisRecord, Sales, ScreenMetricSample, SetProduct
from rag_core.base.settings import Settings
from rag_core.embeddings import Embedder, build_embedder
from rag_core.knowledge import analytics, feedback, prompt, rekey, search
from rag_core.knowledge.engine import EdgeEngine, VectorEngine, engine_is_thread_safe, open_engine
from rag_core.knowledge.schemas import (
    FeedbackRequest,
    FeedbackResult,
    IngestResult,
    KnowledgeStats,
    LiverSummary,
    PromptBlock,
    PromptRequest,
    SearchHit,
    SearchRequest,
    TopPerformerQuery,
    TopPerformerReport,
)
from rag_core.knowledge.store import (
    SALES_PROVENANCE,
    BrandScope,
    Checkpoint,
    KnowledgeStore,
    Owner,
    VideoNotFoundError,
    owner_conditions,
)
from rag_core.sales.provenance import FieldProvenance, merge_provenance


class KnowledgeBase:
    def __init__(self, settings: Settings, *, client: VectorEngine | None = None, embedder: Embedder | None = None):
        self.settings = settings
        self._client = client
        self._embedder = embedder

    @cached_property
    def client(self) -> VectorEngine:
        """The vector engine (the name stays ``client``: a ``QdrantClient`` is one)."""
        return self._client or open_engine(self.settings)

    @property
    def thread_safe(self) -> bool:
        """Whether calls may run from several threads at once (all engines but qdrant-client's
        local mode; the local embedding model serialises itself)."""
        return engine_is_thread_safe(self.client)

    @cached_property
    def embedder(self) -> Embedder:
        return self._embedder or build_embedder(self.settings)

    @cached_property
    def store(self) -> KnowledgeStore:
        store = KnowledgeStore(self.client, self.embedder, self.settings)
        store.ensure_collections()
        if not store.keys_are_current():  # written before brand-scoped keys: re-key once, no embedding
            rekey.rekey_brand_points(store)
        return store

    # -- writes ---------------------------------------------------------------
    def ingest(
        self, record: AnalysisRecord, *, brand_id: int | None = None, checkpoint: Checkpoint | None = None
    ) -> IngestResult:
        """Store one analysed stream; idempotent (unchanged phases cost nothing). ``checkpoint``
        stops a long ingest between its steps (see :meth:`KnowledgeStore.ingest`)."""
        return self.store.ingest(record, brand_id=brand_id, checkpoint=checkpoint)

    def delete_video(self, video_id: str, *, brand_id: BrandScope = None) -> int:
        """Remove a video's phase points and stream record; returns points deleted."""
        return self.store.delete_video(video_id, brand_id=brand_id)

    def update_outcome(
        self,
        video_id: str,
        *,
        sales: Sales | None = None,
        set_products: list[SetProduct] | None = None,
        screen_metrics: list[ScreenMetricSample] | None = None,
        brand_id: BrandScope = None,
        checkpoint: Checkpoint | None = None,
    ) -> IngestResult:
        """Attach sales / products / screen metrics to a stored video without re-embedding."""
        return self.store.update_outcome(
            video_id,
            sales=sales,
            set_products=set_products,
            screen_metrics=screen_metrics,
            brand_id=brand_id,
            checkpoint=checkpoint,
        )

    def record_sales_provenance(
        self,
        video_id: str,
        entries: list[FieldProvenance],
        *,
        replaces_products: bool,
        brand_id: BrandScope = None,
    ) -> list[FieldProvenance]:
        """Merge one read's per-field provenance into what the stream record keeps (call it after
        the read's figures were stored: a crash in between is repaired by the job's redelivery)."""
        with self.store.video_lock(video_id):
            owner = self.store.resolve(video_id, brand_id)
            stream = self.store.get_stream(video_id, brand_id=Owner(owner))
            if stream is None:
                raise VideoNotFoundError(video_id)
            old = [FieldProvenance.model_validate(e) for e in stream.get(SALES_PROVENANCE) or []]
            merged = merge_provenance(old, entries, replaces_products=replaces_products)
            payload = {SALES_PROVENANCE: [e.model_dump(mode="json") for e in merged]}
            self.store.set_stream_payload(video_id, owner, payload)
            return merged

    def apply_feedback(self, request: FeedbackRequest, *, brand_id: BrandScope = None) -> FeedbackResult:
        with self.store.video_lock(request.video_id):
            return feedback.apply_feedback(self.store, request, brand_id=brand_id)

    # -- reads ----------------------------------------------------------------
    def get_video(self, video_id: str, *, brand_id: BrandScope = None) -> dict[str, object] | None:
        """The stream-level record of a video, or None."""
        return self.store.get_stream(video_id, brand_id=brand_id)

    def video_phases(self, video_id: str, *, brand_id: BrandScope = None) -> list[dict[str, Any]]:
        """The stored phase payloads of one owner's video in phase order (none of another brand's)."""
        flt = qm.Filter(must=owner_conditions(video_id, self.store.resolve(video_id, brand_id)))
        payloads = [p.payload or {} for p in self.store.scroll(self.store.phases, flt)]
        return sorted(payloads, key=lambda p: int(p.get("phase_index") or 0))

    def search(
        self, request: SearchRequest, *, brand_id: int | None = None, excluded_owner: Owner | None = None
    ) -> list[SearchHit]:
        return search.search(self.store, request, brand_id=brand_id, excluded_owner=excluded_owner)

    def stats(self, *, brand_id: int | None = None) -> KnowledgeStats:
        return analytics.stats(self.store, brand_id=brand_id)

    def stream_summaries(self, *, brand_id: int | None = None) -> list[dict[str, Any]]:
        """Every stream's summary fields (``analytics.SUMMARY_FIELDS``); read-only dicts."""
        return analytics.stream_summaries(self.store, brand_id=brand_id)

    def liver_summary(self, liver_id: str, *, brand_id: int | None = None) -> LiverSummary | None:
        return analytics.liver_summary(self.store, liver_id, brand_id=brand_id)

    def top_performers(
        self, query: TopPerformerQuery | None = None, *, brand_id: int | None = None
    ) -> TopPerformerReport:
        return analytics.top_performers(self.store, query or TopPerformerQuery(), brand_id=brand_id)

    def build_prompt(
        self, request: PromptRequest, *, brand_id: int | None = None, owner: Owner | None = None
    ) -> PromptBlock:
        """Retrieve for ``request`` and render the Japanese block within its character budget.

        ``owner``: whose video ``request.video_id`` is, for an unscoped caller, so that only that
        video is left out of the similar phases (without it, every video with the id is)."""
        query = prompt.similar_phases_query(request)
        hits = self.search(query, brand_id=brand_id, excluded_owner=owner) if query else []
        report = self.top_performers(TopPerformerQuery(limit=3, compare_to=request.liver_id), brand_id=brand_id)
        budget = request.char_budget or self.settings.prompt_char_budget
        return prompt.render_prompt(request, hits, report, budget=budget)

    def warm_up(self) -> None:
        """Read now what the first requests after a start would otherwise read (the stats
        totals over every stream, per brand; see ``analytics.warm_up``)."""
        analytics.warm_up(self.store)

    def optimize(self) -> list[str]:
        """Build the HNSW graphs of new points after a bulk write (a backfill), on the embedded
        engine when enough are unindexed (engine.OPTIMIZE_MIN_UNINDEXED); a server optimizes
        by itself. Returns the collections optimized. Reads wait while it runs."""
        client = self.client
        return client.optimize_all() if isinstance(client, EdgeEngine) else []

    def healthy(self) -> bool:
        """True when Qdrant answers."""
        try:
            self.client.get_collections()
        except Exception:
            return False
        return True
