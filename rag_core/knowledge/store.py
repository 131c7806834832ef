"""The knowledge store: one Qdrant point per phase, one stream record per video.

Two collections:

* ``<collection>`` (default ``video_analysis_knowledge``): a point per phase,
  id from (brand, video id, phase index) (:func:`point_id`), a dense vector named ``dense`` and a
  payload holding the phase, the stream-level fields we filter and rank on
  (liver, platform, date, GMV, CVR…), a content hash and the feedback quality.
* ``<collection>_streams``: a vector-less point per video holding the whole
  record but its phases, plus aggregates (phase-type mix, durations, quality
  totals) so stats and per-liver analysis never scan the phases.

Ingest is idempotent and cheap to repeat: an unchanged record is recognised
from the stream record's hash alone (zero embedding calls, zero writes); a
changed record re-embeds only phases whose text changed, rewrites the payload
of phases whose outcome changed, and deletes phases that disappeared. Feedback
scores survive re-ingestion, and so does the per-field sales provenance the
worker writes beside the record (``sales_provenance``). New and changed phases are embedded and
written a chunk at a time and the stream record is written last, so a crash or a time budget that
stops an ingest half-way leaves a state the next ingest repairs without duplicates, re-embedding
only what was not written yet.

Video ids are unique per brand (tenant), not globally: a brand's video is keyed by
(brand, video id), so two brands storing the same id get two independent videos
and nothing a brand sees depends on what another stored. Unscoped data (no brand)
keeps the ids it always had. A caller scoped to a brand addresses its own key; an
unscoped caller (``brand_id=None``) addresses the one video with that id, and gets
:class:`AmbiguousVideoIdError` when several owners hold it (it names one with
:class:`Owner`). Stores written before brand keys are re-keyed once, on first open
(:mod:`rag_core.knowledge.rekey`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import threading
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from qdrant_client import models as qm

from rag_core.analysis.record import AnalysisRecord, Phase, Sales, ScreenMetricSample, SetProduct
from rag_core.base.settings import Settings
from rag_core.embeddings import Embedder
from rag_core.knowledge.engine import EdgeEngine, VectorEngine
from rag_core.knowledge.quality import DEFAULT_PRIOR, HIGH_QUALITY, quality_score
from rag_core.knowledge.schemas import IngestResult
from rag_core.screen.summary import summarise_for_phases

DENSE = "dense"
_NAMESPACE = uuid.UUID("0f5a4c1e-7d3b-5c1a-9e2f-6b8d4a2c1e90")
# Brand-scoped keys come from their own namespace, so no brand's id can equal an unscoped one.
_BRAND_NAMESPACE = uuid.UUID("3d7c9b52-8e41-5f0a-b6d3-1c2e4f6a8b90")
_META_ID = str(uuid.uuid5(_NAMESPACE, "__collection_meta__"))
# The meta record's ``id_scheme``: 2 = brand-scoped video keys (absent = written before them).
ID_SCHEME = 2
STREAM_PAGE = 10_000  # stream records are small; big pages spare the local mode re-scans
QUALITY_FIELDS = ("quality_score", "quality_prior", "feedback_count", "feedback_sum")
SALES_PROVENANCE = "sales_provenance"
# Written beside the record by other steps than ingest (the worker's per-field sales provenance):
# a re-ingest that rewrites the stream record carries them over instead of dropping them.
KEPT_STREAM_FIELDS = (SALES_PROVENANCE,)

PHASE_INDEXES: dict[str, qm.PayloadSchemaType] = {
    "video_id": qm.PayloadSchemaType.KEYWORD,
    "liver_id": qm.PayloadSchemaType.KEYWORD,
    "platform": qm.PayloadSchemaType.KEYWORD,
    "phase_type": qm.PayloadSchemaType.KEYWORD,
    "products_all": qm.PayloadSchemaType.KEYWORD,
    "brand_id": qm.PayloadSchemaType.INTEGER,
    "phase_index": qm.PayloadSchemaType.INTEGER,
    "stream_day": qm.PayloadSchemaType.INTEGER,
    "gmv": qm.PayloadSchemaType.FLOAT,
    "quality_score": qm.PayloadSchemaType.FLOAT,
}
STREAM_INDEXES: dict[str, qm.PayloadSchemaType] = {
    "kind": qm.PayloadSchemaType.KEYWORD,
    "source_pattern": qm.PayloadSchemaType.KEYWORD,
    "video_id": qm.PayloadSchemaType.KEYWORD,
    "liver_id": qm.PayloadSchemaType.KEYWORD,
    "platform": qm.PayloadSchemaType.KEYWORD,
    "brand_id": qm.PayloadSchemaType.INTEGER,
    "stream_day": qm.PayloadSchemaType.INTEGER,
    "gmv": qm.PayloadSchemaType.FLOAT,
}


# New or changed phases embedded and written per step of an ingest: enough texts to keep every
# local-model worker (or several API requests) busy, few enough that a step's vectors stay
# small and a time budget is checked every few seconds.
WRITE_CHUNK = 256

T = TypeVar("T")
# Called with where a long piece of work stands; raises to stop it (the job's time budget).
Checkpoint = Callable[[str], None]


class EmbeddingMismatchError(RuntimeError):
    """The collection was built with another embedding model or vector size."""


class VideoNotFoundError(LookupError):
    """No video with that id is stored (or visible to the caller's brand)."""


class VideoOwnershipError(PermissionError):
    """A record names another brand than the one the caller is scoped to."""


class AmbiguousVideoIdError(LookupError):
    """An unscoped caller named a video id that several owners (brands) hold."""

    def __init__(self, video_id: str, brands: list[int | None]) -> None:
        names = ", ".join("none" if b is None else str(b) for b in brands)
        super().__init__(f"video id {video_id!r} is stored for several brands ({names}); name one with brand_id")
        self.video_id = video_id
        self.brands = brands


@dataclass(frozen=True)
class Owner:
    """Exactly the video of this owner: a brand, or ``None`` for unscoped data.

    What an unscoped caller passes as ``brand_id`` to address one brand's video (or the
    unscoped one) when an id is held by several; a plain ``int`` is a caller's scope.
    """

    brand_id: int | None


# How a video is addressed: an int (the caller's brand: that brand's video), None (an unscoped
# caller: the one video with that id, whoever owns it) or an Owner (exactly that owner's).
BrandScope = int | Owner | None


def point_id(video_id: str, phase_index: int, brand_id: int | None = None) -> str:
    """Deterministic id of a phase point: the same phase of the same brand's video always
    lands on the same point (unscoped data keeps the ids of before brand keys)."""
    if brand_id is None:
        return str(uuid.uuid5(_NAMESPACE, f"{video_id}:{phase_index}"))
    return str(uuid.uuid5(_BRAND_NAMESPACE, f"{brand_id}:{video_id}:{phase_index}"))


def stream_id(video_id: str, brand_id: int | None = None) -> str:
    """Deterministic id of a video's stream record, per brand as :func:`point_id`."""
    if brand_id is None:
        return str(uuid.uuid5(_NAMESPACE, f"stream:{video_id}"))
    return str(uuid.uuid5(_BRAND_NAMESPACE, f"stream:{brand_id}:{video_id}"))


def embedding_text(phase: Phase) -> str:
    """What is embedded for a phase: what was said and shown (the analyst's notes only
    when the phase has neither), so a new phase's own texts find it."""
    parts = [phase.speech_text.strip(), phase.description.strip()]
    text = "\n".join(p for p in parts if p)
    return text or phase.insights.strip() or phase.phase_type


def _hash(obj: object) -> str:
    raw = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def brand_condition(brand_id: int | None) -> list[qm.Condition]:
    """The filter clause that confines a scoped caller to its brand (none when unscoped)."""
    if brand_id is None:
        return []
    return [qm.FieldCondition(key="brand_id", match=qm.MatchValue(value=brand_id))]


def owner_conditions(video_id: str, owner: int | None) -> list[qm.Condition]:
    """The filter clauses matching exactly one owner's video: its id and its brand, or no
    brand at all for unscoped data (which an unscoped caller's scope would not exclude)."""
    brand: qm.Condition = (
        qm.IsEmptyCondition(is_empty=qm.PayloadField(key="brand_id"))
        if owner is None
        else qm.FieldCondition(key="brand_id", match=qm.MatchValue(value=owner))
    )
    return [qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id)), brand]


class _KeyedLocks:
    """One re-entrant lock per key, made when first wanted and dropped when nobody holds or
    waits for it, so that the registry stays as small as the work in flight."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Hashable, tuple[threading.RLock, int]] = {}

    @contextlib.contextmanager
    def hold(self, key: Hashable) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key) or (threading.RLock(), 0)
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


# Process-wide, so every store over the same collections (one per context) shares them.
_VIDEO_LOCKS = _KeyedLocks()


class KnowledgeStore:
    def __init__(self, client: VectorEngine, embedder: Embedder, settings: Settings) -> None:
        self.client = client
        self.embedder = embedder
        self.settings = settings
        self.phases = settings.qdrant_collection
        self.streams = settings.streams_collection
        self._memo: dict[Hashable, tuple[int, Any]] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()``, reused until the store changes: only on the embedded engine, whose
        process is the store's only writer (it holds the store lock) and which counts every
        write, restores and migrations included. Elsewhere (a server other processes write
        to) it is computed on every call."""
        if not isinstance(self.client, EdgeEngine):
            return compute()
        version = self.client.writes  # read before computing: a write meanwhile invalidates it
        hit = self._memo.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]  # type: ignore[no-any-return]
        value = compute()
        self._memo[key] = (version, value)
        return value

    # ------------------------------------------------------------ collections --
    def ensure_collections(self) -> None:
        """Create both collections and their payload indexes, or check that the
        existing ones were built with this embedding model."""
        if not self.client.collection_exists(self.phases):
            self.client.create_collection(
                self.phases,
                vectors_config={DENSE: qm.VectorParams(size=self.embedder.dimension, distance=qm.Distance.COSINE)},
            )
        else:
            self._check_vector_size()
        if not self.client.collection_exists(self.streams):
            self.client.create_collection(self.streams, vectors_config={})
        self._ensure_indexes(self.phases, PHASE_INDEXES)
        self._ensure_indexes(self.streams, STREAM_INDEXES)
        self._check_model()

    def _ensure_indexes(self, collection: str, fields: dict[str, qm.PayloadSchemaType]) -> None:
        """Payload indexes for every field we filter or facet on, also on a collection that came
        without them (an upgraded or migrated store). qdrant-client's local mode keeps none and warns."""
        existing = self.client.get_collection(collection).payload_schema
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            for field, schema in fields.items():
                if field not in existing:
                    self.client.create_payload_index(collection, field, schema)

    def _check_vector_size(self) -> None:
        vectors = self.client.get_collection(self.phases).config.params.vectors
        params = vectors.get(DENSE) if isinstance(vectors, dict) else None
        if params is None:
            raise EmbeddingMismatchError(f"collection {self.phases!r} has no '{DENSE}' vector; it was not built by us")
        if params.size != self.embedder.dimension:
            raise EmbeddingMismatchError(
                f"collection {self.phases!r} holds {params.size}-d vectors but the embedding provider "
                f"{self.embedder.model_id!r} gives {self.embedder.dimension}-d; use another QDRANT_COLLECTION "
                "or re-embed (backfill into a new collection)"
            )

    def _check_model(self) -> None:
        found = self.client.retrieve(self.streams, [_META_ID], with_payload=True)
        if not found:
            meta = {
                "kind": "meta",
                "embedding_model": self.embedder.model_id,
                "dimension": self.embedder.dimension,
                "id_scheme": ID_SCHEME,
            }
            self.client.upsert(self.streams, [qm.PointStruct(id=_META_ID, vector={}, payload=meta)])
            return
        model = (found[0].payload or {}).get("embedding_model")
        if model != self.embedder.model_id:
            raise EmbeddingMismatchError(
                f"collection {self.phases!r} was built with embedding model {model!r}, "
                f"not {self.embedder.model_id!r}; vectors of different models cannot be compared"
            )

    def keys_are_current(self) -> bool:
        """Whether the store was written (or re-keyed) with brand-scoped video keys."""
        found = self.client.retrieve(self.streams, [_META_ID], with_payload=["id_scheme"])
        return bool(found) and (found[0].payload or {}).get("id_scheme") == ID_SCHEME

    def mark_keys_current(self) -> None:
        """Record that every point now has its brand-scoped key (after :mod:`rekey` ran)."""
        self.client.set_payload(self.streams, {"id_scheme": ID_SCHEME}, points=[_META_ID], wait=True)

    # ----------------------------------------------------------------- ingest --
    @contextlib.contextmanager
    def video_lock(self, video_id: str) -> Iterator[None]:
        """Hold the writes of one video id (every owner's) in this process for the block.

        Every write to a video reads what is stored first (which phases are unchanged, the
        feedback counts, the record an outcome is merged into) and writes from that: two jobs
        of one video at once, which concurrent queue workers do run, would both embed its new
        phases, and the later of two outcome updates or ratings would drop the earlier. Held
        in turn, the second finds the first's writes (an identical analysis: unchanged, nothing
        embedded). Re-entrant: an outcome update ingests under the lock it holds. It is a
        process's lock: hosts that scale out (several processes on one Qdrant server) can
        still race, at the cost of a repeated embedding or, rarely, a lost rating.
        """
        with _VIDEO_LOCKS.hold((self.phases, video_id)):
            yield

    def ingest(
        self, record: AnalysisRecord, *, brand_id: int | None = None, checkpoint: Checkpoint | None = None
    ) -> IngestResult:
        """Store ``record``; see the module docstring for what is (not) rewritten.

        ``checkpoint`` is called before each step of the writing with where the ingest stands
        (e.g. ``while storing the analysis: 2,048 of 10,000 phases embedded and written``); it
        raises to stop an ingest that has run out of time. Whatever was written by then is
        keyed by the phases' deterministic ids and content hashes, so a later ingest of the
        same record reuses those points instead of duplicating or re-embedding them.
        """
        with self.video_lock(record.video_id):
            return self._ingest(record, brand_id=brand_id, checkpoint=checkpoint)

    def _ingest(self, record: AnalysisRecord, *, brand_id: int | None, checkpoint: Checkpoint | None) -> IngestResult:
        brand = brand_id if brand_id is not None else record.brand_id
        if brand_id is not None and record.brand_id not in (None, brand_id):
            raise VideoOwnershipError(f"record is for brand {record.brand_id}, caller is scoped to brand {brand_id}")
        video_id = record.video_id
        existing_stream = self._stream_payload(video_id, brand)

        if record.screen_metrics and any(p.screen_summary is None for p in record.phases):
            record = _with_screen_summaries(record)
        stream_fields = self._stream_fields(record, brand)
        planned = []
        for phase in record.phases:
            text = embedding_text(phase)
            payload = self._phase_payload(phase, stream_fields)
            payload["content_hash"] = _hash([self.embedder.model_id, text])
            payload["payload_hash"] = _hash(payload)
            planned.append((phase, text, payload))
        record_hash = _hash([stream_fields, [(p["content_hash"], p["payload_hash"]) for _, _, p in planned]])
        ids = [point_id(video_id, phase.phase_index, brand) for phase in record.phases]

        if existing_stream is not None and existing_stream.get("record_hash") == record_hash:
            return IngestResult(video_id=video_id, point_ids=ids, unchanged=len(ids))

        result = IngestResult(video_id=video_id, point_ids=ids)
        # Look the phases up by id (O(k), also in local mode): the new indexes plus the
        # ones the stored stream lists, so phases that disappeared are found too.
        known = set(existing_stream.get("phase_indexes") or []) if existing_stream else set()
        lookup = [point_id(video_id, i, brand) for i in sorted(known | {p.phase_index for p in record.phases})]
        fields = [*QUALITY_FIELDS, "content_hash", "payload_hash", "phase_index"]
        current = {
            (r.payload or {})["phase_index"]: r.payload or {}
            for r in self.client.retrieve(self.phases, lookup, with_payload=fields)
        }
        prior = record.quality_score if record.quality_score is not None else DEFAULT_PRIOR
        to_embed: list[tuple[str, str, dict[str, Any]]] = []
        to_set: list[tuple[str, dict[str, Any]]] = []
        for (phase, text, payload), pid in zip(planned, ids, strict=True):
            old = current.pop(phase.phase_index, None)
            count = int(old.get("feedback_count") or 0) if old else 0
            total = float(old.get("feedback_sum") or 0.0) if old else 0.0
            payload.update(
                quality_prior=prior,
                feedback_count=count,
                feedback_sum=total,
                quality_score=quality_score(prior, count, total),
            )
            if old is None:
                result.inserted += 1
                to_embed.append((pid, text, payload))
            elif old.get("content_hash") != payload["content_hash"]:
                result.updated += 1
                to_embed.append((pid, text, payload))
            elif old.get("payload_hash") != payload["payload_hash"] or old.get("quality_prior") != prior:
                result.payload_updated += 1
                to_set.append((pid, payload))
            else:
                result.unchanged += 1
        stale = [point_id(video_id, index, brand) for index in current]

        result.embedded = self._embed_and_write(to_embed, checkpoint)
        size = self.settings.upsert_batch_size
        for start in range(0, len(to_set), size):
            if checkpoint is not None:
                checkpoint(f"while storing the analysis: {start:,} of {len(to_set):,} phase payloads rewritten")
            ops: Sequence[qm.UpdateOperation] = [
                qm.SetPayloadOperation(set_payload=qm.SetPayload(payload=payload, points=[pid]))
                for pid, payload in to_set[start : start + size]
            ]
            self.client.batch_update_points(self.phases, ops, wait=True)
        if stale:
            self.client.delete(self.phases, qm.PointIdsList(points=stale), wait=True)
            result.deleted = len(stale)

        scores = [p["quality_score"] for _, _, p in planned]
        kept = {k: existing_stream[k] for k in KEPT_STREAM_FIELDS if existing_stream and k in existing_stream}
        stream = {
            **kept,
            **stream_fields,
            **_phase_aggregates(record.phases),
            "quality_total": sum(scores),
            "high_quality_phases": sum(1 for s in scores if s >= HIGH_QUALITY),
            "record_hash": record_hash,
            "embedding_model": self.embedder.model_id,
            "updated_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        record_id = stream_id(video_id, brand)
        self.client.upsert(self.streams, [qm.PointStruct(id=record_id, vector={}, payload=stream)], wait=True)
        return result

    def _embed_and_write(self, to_embed: list[tuple[str, str, dict[str, Any]]], checkpoint: Checkpoint | None) -> int:
        """Embed the new and changed phases and upsert them, ``WRITE_CHUNK`` at a time; returns
        how many were embedded.

        One chunk's vectors are all that is held at once (all of a 10,000-phase analysis would
        be ~120 MB of Python floats), every chunk is readable as soon as it is written, and
        ``checkpoint`` can stop a long ingest between chunks.
        """
        size = self.settings.upsert_batch_size
        for start in range(0, len(to_embed), WRITE_CHUNK):
            if checkpoint is not None:
                checkpoint(f"while storing the analysis: {start:,} of {len(to_embed):,} phases embedded and written")
            chunk = to_embed[start : start + WRITE_CHUNK]
            vectors = self.embedder.embed_passages([text for _, text, _ in chunk])
            points = [
                qm.PointStruct(id=pid, vector={DENSE: vector}, payload=payload)
                for (pid, _, payload), vector in zip(chunk, vectors, strict=True)
            ]
            for offset in range(0, len(points), size):
                self.client.upsert(self.phases, points[offset : offset + size], wait=True)
        return len(to_embed)

    def _stream_fields(self, record: AnalysisRecord, brand: int | None) -> dict[str, Any]:
        """Stream-level fields: the record without its phases, plus flat copies we filter on."""
        sales = record.sales
        names = [p.name for p in record.set_products if p.name]
        return {
            "kind": "stream",
            "record": record.model_dump(mode="json", exclude={"phases", "brand_id"}),
            "video_id": record.video_id,
            "brand_id": brand,
            "liver_id": record.liver_id,
            "liver_name": record.liver_name,
            "platform": record.platform,
            "stream_date": record.stream_date.isoformat() if record.stream_date else None,
            "stream_day": int(record.stream_date.strftime("%Y%m%d")) if record.stream_date else None,
            "source_pattern": record.source_pattern,
            "gmv": sales.gmv if sales else None,
            "orders": sales.orders if sales else None,
            "items_sold": sales.items_sold if sales else None,
            "viewers": sales.viewers if sales else None,
            "cvr": sales.cvr if sales else None,
            "gpm": sales.gpm if sales else None,
            "set_product_names": names,
        }

    @staticmethod
    def _phase_payload(phase: Phase, stream: dict[str, Any]) -> dict[str, Any]:
        own = phase.model_dump(mode="json", exclude=set(phase.model_extra or {}))
        flat = {k: v for k, v in stream.items() if k not in ("record", "kind")}
        return {
            **flat,
            **own,
            "kind": "phase",
            "duration_sec": phase.duration_sec,
            "phase_extra": phase.model_extra or {},
            "products_all": sorted({*phase.products, *stream["set_product_names"]}),
        }

    # ------------------------------------------------------------------ reads --
    def _stream_payload(self, video_id: str, owner: int | None) -> dict[str, Any] | None:
        """The stream record at ``owner``'s key for ``video_id`` (None when there is none).

        The owner is checked too: a record of a brand still at its unscoped key (a store
        not yet re-keyed) is not the unscoped video."""
        found = self.client.retrieve(self.streams, [stream_id(video_id, owner)], with_payload=True)
        payload = dict(found[0].payload or {}) if found else None
        return payload if payload is not None and payload.get("brand_id") == owner else None

    def owners(self, video_id: str) -> list[int | None]:
        """Every owner (brand, or None for unscoped data) holding a video with this id."""
        cond = qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))
        found = self.streams_matching(cond, fields=["brand_id"])
        return sorted({r.get("brand_id") for r in found}, key=lambda b: -1 if b is None else b)

    def resolve(self, video_id: str, scope: BrandScope) -> int | None:
        """The owner whose video ``scope`` addresses (see :data:`BrandScope`).

        For an unscoped caller naming no owner: the one owner holding the id, None (the
        unscoped key, where nothing is stored) when none does, AmbiguousVideoIdError when
        several do. A scoped caller's own brand is answered without looking at any other.
        """
        if isinstance(scope, Owner):
            return scope.brand_id
        if scope is not None:
            return scope
        owners = self.owners(video_id)
        if len(owners) > 1:
            raise AmbiguousVideoIdError(video_id, owners)
        return owners[0] if owners else None

    def get_stream(self, video_id: str, *, brand_id: BrandScope = None) -> dict[str, Any] | None:
        """The stream record of the video ``brand_id`` addresses, or None (a scoped caller never
        reaches another brand's: it has its own key)."""
        return self._stream_payload(video_id, self.resolve(video_id, brand_id))

    def phase_payloads(self, video_id: str, owner: int | None, fields: list[str] | None = None) -> list[dict[str, Any]]:
        """The phase payloads of ``owner``'s video (unordered)."""
        cond = qm.Filter(must=owner_conditions(video_id, owner))
        return [p.payload or {} for p in self.scroll(self.phases, cond, fields)]

    def scroll(
        self, collection: str, flt: qm.Filter | None = None, fields: list[str] | None = None, *, page: int = 1024
    ) -> Iterator[qm.Record]:
        """Every point matching ``flt`` (payload limited to ``fields``), page by page."""
        offset: qm.ExtendedPointId | None = None
        selector: bool | list[str] = fields if fields is not None else True
        while True:
            points, offset = self.client.scroll(
                collection, scroll_filter=flt, limit=page, offset=offset, with_payload=selector, with_vectors=False
            )
            yield from points
            if offset is None:
                return

    def streams_matching(
        self, *conditions: qm.Condition, brand_id: int | None = None, fields: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Stream records (not the meta record) matching all ``conditions``.

        The meta record is skipped here rather than by a ``kind`` condition: with no other
        condition the scroll then needs no filter at all, which the local mode evaluates
        point by point in Python (5x slower at 10k streams).
        """
        must = [*conditions, *brand_condition(brand_id)]
        flt = qm.Filter(must=must) if must else None
        selector = [*fields, "kind"] if fields is not None else None
        records = (p.payload or {} for p in self.scroll(self.streams, flt, selector, page=STREAM_PAGE))
        return [r for r in records if r.get("kind") == "stream"]

    def load_record(self, video_id: str, *, brand_id: BrandScope = None) -> AnalysisRecord | None:
        """Rebuild the stored AnalysisRecord of a video (for payload-only updates)."""
        owner = self.resolve(video_id, brand_id)
        stream = self._stream_payload(video_id, owner)
        if stream is None:
            return None
        phases = []
        for payload in sorted(self.phase_payloads(video_id, owner), key=lambda p: p["phase_index"]):
            phase = {k: payload.get(k) for k in Phase.model_fields}
            phase.update(payload.get("phase_extra") or {})
            phases.append(phase)
        data = dict(stream["record"])
        data["phases"] = phases
        data["brand_id"] = stream.get("brand_id")
        return AnalysisRecord.model_validate(data)

    # ----------------------------------------------------------------- writes --
    def delete_video(self, video_id: str, *, brand_id: BrandScope = None) -> int:
        """Remove every phase point and then the stream record of a video; returns phases deleted.

        Points go first: a deletion interrupted half-way leaves the stream record, so the
        video is still found when the deletion is repeated. Only the addressed owner's
        points are matched, also those a crashed first ingest left without a stream record.
        """
        with self.video_lock(video_id):
            owner = self.resolve(video_id, brand_id)
            stream = self._stream_payload(video_id, owner)
            flt = qm.Filter(must=owner_conditions(video_id, owner))
            count = self.client.count(self.phases, count_filter=flt, exact=True).count
            self.client.delete(self.phases, qm.FilterSelector(filter=flt), wait=True)
            if stream is not None:
                self.client.delete(self.streams, qm.PointIdsList(points=[stream_id(video_id, owner)]), wait=True)
            return count

    def update_outcome(
        self,
        video_id: str,
        *,
        sales: Sales | None = None,
        set_products: list[SetProduct] | None = None,
        screen_metrics: list[ScreenMetricSample] | None = None,
        phases: list[Phase] | None = None,
        brand_id: BrandScope = None,
        checkpoint: Checkpoint | None = None,
    ) -> IngestResult:
        """Attach outcome data to a stored video. Phase texts are unchanged, so this is a
        payload-only rewrite through the normal ingest path: no embedding calls."""
        with self.video_lock(video_id):
            return self._update_outcome(
                video_id,
                sales=sales,
                set_products=set_products,
                screen_metrics=screen_metrics,
                phases=phases,
                brand_id=brand_id,
                checkpoint=checkpoint,
            )

    def _update_outcome(
        self,
        video_id: str,
        *,
        sales: Sales | None,
        set_products: list[SetProduct] | None,
        screen_metrics: list[ScreenMetricSample] | None,
        phases: list[Phase] | None,
        brand_id: BrandScope,
        checkpoint: Checkpoint | None,
    ) -> IngestResult:
        record = self.load_record(video_id, brand_id=brand_id)
        if record is None:
            raise VideoNotFoundError(video_id)
        update: dict[str, Any] = {}
        if sales is not None:
            old = record.sales.model_dump(exclude_none=True) if record.sales else {}
            update["sales"] = Sales.model_validate({**old, **sales.model_dump(exclude_none=True)})
        if set_products is not None:
            update["set_products"] = set_products
        if screen_metrics is not None:
            update["screen_metrics"] = screen_metrics
            # The stored per-phase summaries were derived from the series being replaced;
            # cleared, ingest derives them again from the new one instead of keeping them.
            update["phases"] = [p.model_copy(update={"screen_summary": None}) for p in record.phases]
        if phases is not None:
            update["phases"] = phases
        # under the brand the stored record names
        return self.ingest(record.model_copy(update=update), checkpoint=checkpoint)

    def set_phase_payloads(self, updates: list[tuple[str, dict[str, Any]]]) -> None:
        """Merge payload changes into phase points (no re-embedding)."""
        ops = [qm.SetPayloadOperation(set_payload=qm.SetPayload(payload=p, points=[pid])) for pid, p in updates]
        if ops:
            self.client.batch_update_points(self.phases, ops, wait=True)

    def set_stream_payload(self, video_id: str, owner: int | None, payload: dict[str, Any]) -> None:
        """Merge ``payload`` into the stream record of ``owner``'s video."""
        self.client.set_payload(self.streams, payload, points=[stream_id(video_id, owner)], wait=True)


def _with_screen_summaries(record: AnalysisRecord) -> AnalysisRecord:
    """Fill each phase's screen summary (start/end/peak viewers, comments, purchases) from the
    record's screen-metrics series; summaries the caller gave are kept."""
    summarised = summarise_for_phases(record.screen_metrics, record.phases)
    phases = [p if p.screen_summary is not None else s for p, s in zip(record.phases, summarised, strict=True)]
    return record.model_copy(update={"phases": phases})


def _phase_aggregates(phases: list[Phase]) -> dict[str, Any]:
    """Phase-type mix and durations, kept on the stream so analytics need no phase scan."""
    types = Counter(p.phase_type for p in phases)
    durations: dict[str, float] = {}
    for p in phases:
        if p.duration_sec is not None:
            durations[p.phase_type] = durations.get(p.phase_type, 0.0) + p.duration_sec
    return {
        "phase_count": len(phases),
        "phase_indexes": sorted(p.phase_index for p in phases),
        "phase_types": dict(types),
        "phase_durations": {k: round(v, 3) for k, v in durations.items()},
    }
