"""Find past phases similar to a query, filtered, and ranked by what they achieved.

Ranking (documented in docs/retrieval.md): Qdrant returns a candidate pool by
cosine similarity under the filters; each candidate then gets

    score = (w_sim · similarity + w_sales · sales + w_quality · quality) / (w_sim + w_sales + w_quality)

where ``similarity`` is the cosine similarity min-max scaled over the pool
(embedding models such as e5 put every Japanese sentence between 0.7 and 0.9,
so raw cosines would let any GMV difference outweigh relevance), ``sales`` the
stream's GMV on a log scale relative to the best GMV in the pool (0 when
unknown) and ``quality`` the feedback quality score. The
weights come from settings (``RANK_WEIGHT_*``); with ``outcome_aware=False``
the order is plain similarity.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from typing import Any

from qdrant_client import models as qm

from rag_core.knowledge.schemas import SearchFilters, SearchHit, SearchRequest
from rag_core.knowledge.store import DENSE, KnowledgeStore, brand_condition

_POOL_FACTOR = 5
_MIN_POOL = 20


def build_filter(filters: SearchFilters, *, phase_type: str | None, brand_id: int | None) -> qm.Filter | None:
    """Translate search filters into a Qdrant filter on indexed fields (None when there is nothing to
    filter: the local mode would otherwise test every point against an empty filter)."""
    must: list[qm.Condition] = [*brand_condition(brand_id)]

    def match(key: str, value: object) -> None:
        if value is not None:
            must.append(qm.FieldCondition(key=key, match=qm.MatchValue(value=value)))  # type: ignore[arg-type]

    match("liver_id", filters.liver_id)
    match("platform", filters.platform)
    match("phase_type", filters.phase_type or phase_type)
    match("products_all", filters.product)
    if filters.date_from or filters.date_to:
        must.append(
            qm.FieldCondition(
                key="stream_day",
                range=qm.Range(gte=_day(filters.date_from), lte=_day(filters.date_to)),
            )
        )
    if filters.min_gmv is not None:
        must.append(qm.FieldCondition(key="gmv", range=qm.Range(gte=filters.min_gmv)))
    if filters.min_quality is not None:
        must.append(qm.FieldCondition(key="quality_score", range=qm.Range(gte=filters.min_quality)))
    must_not: list[qm.Condition] = []
    if filters.exclude_video_id:
        must_not.append(qm.FieldCondition(key="video_id", match=qm.MatchValue(value=filters.exclude_video_id)))
    return qm.Filter(must=must, must_not=must_not) if must or must_not else None


def _day(value: dt.date | None) -> int | None:
    return int(value.strftime("%Y%m%d")) if value else None


def outcome_scores(hits: list[SearchHit], weights: tuple[float, float, float]) -> list[float]:
    """The blended ranking score of each candidate of a pool (see the module docstring)."""
    w_sim, w_sales, w_quality = weights
    total = w_sim + w_sales + w_quality
    low = min(h.similarity for h in hits)
    spread = max(h.similarity for h in hits) - low
    best_gmv = max((h.gmv or 0.0) for h in hits)
    scores = []
    for h in hits:
        similarity = (h.similarity - low) / spread if spread > 1e-9 else 1.0
        sales = math.log1p(h.gmv) / math.log1p(best_gmv) if h.gmv and best_gmv > 0 else 0.0
        blended = w_sim * similarity + w_sales * sales + w_quality * h.quality_score
        scores.append(blended / total if total else h.similarity)
    return scores


def search(store: KnowledgeStore, request: SearchRequest, *, brand_id: int | None = None) -> list[SearchHit]:
    """Top-``k`` phases for the request, best first."""
    settings = store.settings
    vector = store.embedder.embed_query(request.text())
    flt = build_filter(request.filters, phase_type=request.phase_type, brand_id=brand_id)
    reranked = request.outcome_aware or request.max_per_video or request.distinct_text
    pool = max(request.k * _POOL_FACTOR, _MIN_POOL) if reranked else request.k
    points = store.client.query_points(
        store.phases, query=vector, using=DENSE, query_filter=flt, limit=pool, with_payload=True
    ).points
    hits = [_hit(p.id, p.score, p.payload or {}) for p in points]
    if request.outcome_aware and hits:
        weights = (settings.rank_weight_similarity, settings.rank_weight_sales, settings.rank_weight_quality)
        for h, score in zip(hits, outcome_scores(hits, weights), strict=True):
            h.score = score
        hits.sort(key=lambda h: (-h.score, h.video_id, h.phase_index))
    if request.max_per_video:
        seen: Counter[str] = Counter()
        kept = []
        for h in hits:
            seen[h.video_id] += 1
            if seen[h.video_id] <= request.max_per_video:
                kept.append(h)
        hits = kept
    if request.distinct_text:
        # A liver who opens every stream with the same words would otherwise fill the
        # results (and a prompt's budget) with one text; its best-ranked copy stands for all.
        texts: set[tuple[str, str]] = set()
        distinct = []
        for h in hits:
            if (h.speech_text, h.description) not in texts:
                texts.add((h.speech_text, h.description))
                distinct.append(h)
        hits = distinct
    return hits[: request.k]


def _hit(pid: Any, similarity: float, payload: dict[str, Any]) -> SearchHit:
    return SearchHit(
        point_id=str(pid),
        score=similarity,
        similarity=similarity,
        **{
            k: payload.get(k)
            for k in SearchHit.model_fields
            if k not in ("point_id", "score", "similarity") and payload.get(k) is not None
        },
    )
