"""Find past phases similar to a query, filtered, and ranked by relevance and by what they achieved.

Qdrant returns a candidate pool (with the vectors): the dense top under the filters,
which with outcome weighting the engine itself ranks by a scoring formula
(:func:`outcome_formula`, the same on the embedded engine and on a server:
``w_sim·cosine + w_sales·ln(1+gmv)/ln(1+best GMV) + w_quality·quality``, over Σw).
``rag_core.knowledge.ranking`` then re-orders the pool. Each candidate gets

    relevance = (dense + w_lexical · lexical + w_type · type_fit) / (1 + w_lexical + w_type)
    score     = (w_sim · relevance' + w_sales · sales + w_quality · quality) / (w_sim + w_sales + w_quality)

then maximal marginal relevance keeps near-duplicates out of the top-k. ``dense`` is
the cosine min-max scaled over the pool, ``lexical`` the Sudachi BM25 score scaled by
the pool's best (``rag_core.knowledge.lexical``), ``type_fit`` the probability that the
query asks for the candidate's phase type (1/0 when the request names its type, else
inferred from the query's similarity to each type's centroid of stored phases),
``relevance'`` the relevance min-max scaled over the pool, ``sales`` the stream's GMV
on a log scale relative to the pool's best and ``quality`` the feedback score. With
``outcome_aware=False`` the score is the relevance. The weights come from settings
(``RANK_*``); docs/retrieval.md gives each one's reason and measured effect.

A phase-type *filter* (``filters.phase_type``) is exact, over every stored spelling of
the type (``ranking.canonical_type``), and a type no phase has is answered with
``PhaseTypeNotFoundError`` naming the types present, rather than with nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qdrant_client import models as qm

from rag_core.knowledge import ranking
from rag_core.knowledge.lexical import lexical_scores
from rag_core.knowledge.quality import DEFAULT_PRIOR
from rag_core.knowledge.schemas import SearchFilters, SearchHit, SearchRequest
from rag_core.knowledge.store import DENSE, KnowledgeStore, Owner, brand_condition, owner_conditions

_POOL_FACTOR = 10
_MIN_POOL = 50  # the re-ranking can only lift what the dense search brought into the pool
# The engine's formula stage picks the pool from this many times as many dense candidates.
# 1: the pool is the dense top, ordered by the formula (results as before the formula stage).
# 2 measured on the dev split: P@5 +0.005, MRR equal; on the test split P@5 +0.005 but MRR
# -0.005 (one query), so it is not shipped: the test split must not regress (docs/retrieval.md).
FORMULA_PREFETCH = 1
_PROFILE_MAX_AGE_SEC = 300.0


class PhaseTypeNotFoundError(LookupError):
    """A phase-type filter names a type no stored phase (visible to the caller) has."""


@dataclass
class TypeProfile:
    """What the store knows about phase types, per brand: a centroid of the stored vectors
    per (canonical) type, the stored type spellings and the best GMV.

    Everything is kept per brand so that a brand-scoped search is shaped by its own phases
    only: a profile pooled over brands would move a brand's scores whenever another brand
    stored anything, which tells it that others write (tenant isolation)."""

    type_sums: dict[int | None, dict[str, np.ndarray]] = field(default_factory=dict)
    spellings: dict[int | None, Counter[str]] = field(default_factory=dict)
    best_gmv: dict[int | None, float] = field(default_factory=dict)  # per brand; None: unscoped data

    def centroids(self, brand_id: int | None) -> dict[str, np.ndarray]:
        """Unit centroids per type from the phases a caller scoped to ``brand_id`` can see."""
        if brand_id is not None:
            return ranking.type_centroids(self.type_sums.get(brand_id, {}))
        pooled: dict[str, np.ndarray] = {}
        for sums in self.type_sums.values():
            for kind, total in sums.items():
                pooled[kind] = pooled[kind] + total if kind in pooled else total
        return ranking.type_centroids(pooled)

    def top_gmv(self, brand_id: int | None) -> float:
        """The highest GMV a caller scoped to ``brand_id`` can see (0 when none is known)."""
        return self.best_gmv.get(brand_id, 0.0) if brand_id is not None else max(self.best_gmv.values(), default=0.0)

    def present(self, brand_id: int | None) -> Counter[str]:
        """Stored type spellings (with counts) a caller scoped to ``brand_id`` can see."""
        if brand_id is not None:
            return self.spellings.get(brand_id, Counter())
        return sum(self.spellings.values(), Counter())


_profiles: weakref.WeakKeyDictionary[KnowledgeStore, tuple[int, float, TypeProfile]] = weakref.WeakKeyDictionary()


def type_profile(store: KnowledgeStore) -> TypeProfile:
    """The store's :class:`TypeProfile`, rebuilt by one scroll over the phases when their
    number changed or the cached one is older than five minutes (a re-typed phase)."""
    count = store.client.count(store.phases, exact=True).count
    cached = _profiles.get(store)
    if cached is not None and cached[0] == count and time.monotonic() - cached[1] < _PROFILE_MAX_AGE_SEC:
        return cached[2]
    sums: dict[int | None, dict[str, np.ndarray]] = {}
    spellings: dict[int | None, Counter[str]] = {}
    best_gmv: dict[int | None, float] = {}
    offset: qm.ExtendedPointId | None = None
    while True:
        points, offset = store.client.scroll(
            store.phases,
            limit=1024,
            offset=offset,
            with_payload=["phase_type", "brand_id", "gmv"],
            with_vectors=[DENSE],
        )
        for p in points:
            payload = p.payload or {}
            spelling = str(payload.get("phase_type") or ranking.UNKNOWN)
            brand = payload.get("brand_id")
            spellings.setdefault(brand, Counter())[spelling] += 1
            gmv = payload.get("gmv")
            if isinstance(gmv, int | float) and gmv > best_gmv.get(brand, 0.0):
                best_gmv[brand] = float(gmv)
            vector = p.vector.get(DENSE) if isinstance(p.vector, dict) else None
            if vector is not None:
                unit = np.asarray(vector, dtype=np.float64)
                unit /= float(np.linalg.norm(unit)) or 1.0
                kind = ranking.canonical_type(spelling)
                own = sums.setdefault(brand, {})
                own[kind] = own[kind] + unit if kind in own else unit
        if offset is None:
            break
    profile = TypeProfile(sums, spellings, best_gmv)
    _profiles[store] = (count, time.monotonic(), profile)
    return profile


def type_filter_values(phase_type: str, profile: TypeProfile, brand_id: int | None) -> list[str]:
    """Every stored spelling of ``phase_type``'s canonical type, for an exact filter.

    Raises PhaseTypeNotFoundError listing the types present when none is stored (an empty
    store answers with no results instead: there is nothing to list).
    """
    present = profile.present(brand_id)
    wanted = ranking.canonical_type(phase_type)
    values = sorted(s for s in present if ranking.canonical_type(s) == wanted)
    if not values and present:
        kinds = Counter[str]()
        for spelling, n in present.items():
            kinds[ranking.canonical_type(spelling)] += n
        listed = ", ".join(f"{k} ({n})" for k, n in sorted(kinds.items()))
        read_as = f" (read as {wanted!r})" if wanted != phase_type else ""
        raise PhaseTypeNotFoundError(f"no phase has type {phase_type!r}{read_as}; types present: {listed}")
    return values or [phase_type]


def build_filter(
    filters: SearchFilters,
    *,
    phase_types: list[str] | None,
    brand_id: int | None,
    excluded_owner: Owner | None = None,
) -> qm.Filter | None:
    """Translate search filters into a Qdrant filter on indexed fields (None when there is nothing to
    filter: the local mode would otherwise test every point against an empty filter). ``phase_types``
    are the stored spellings the phase-type filter stands for (see ``type_filter_values``).

    ``exclude_video_id`` leaves out that video of ``excluded_owner`` when one is named (an unscoped
    caller who knows the owner), otherwise every video with that id the caller can see."""
    must: list[qm.Condition] = [*brand_condition(brand_id)]

    def match(key: str, value: object) -> None:
        if value is not None:
            must.append(qm.FieldCondition(key=key, match=qm.MatchValue(value=value)))  # type: ignore[arg-type]

    match("liver_id", filters.liver_id)
    match("platform", filters.platform)
    if phase_types:
        must.append(qm.FieldCondition(key="phase_type", match=qm.MatchAny(any=phase_types)))
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
    if filters.exclude_video_id and excluded_owner is not None:
        must_not.append(qm.Filter(must=owner_conditions(filters.exclude_video_id, excluded_owner.brand_id)))
    elif filters.exclude_video_id:
        must_not.append(qm.FieldCondition(key="video_id", match=qm.MatchValue(value=filters.exclude_video_id)))
    return qm.Filter(must=must, must_not=must_not) if must or must_not else None


def _day(value: dt.date | None) -> int | None:
    return int(value.strftime("%Y%m%d")) if value else None


def outcome_scores(
    hits: list[SearchHit], weights: tuple[float, float, float], relevance: list[float] | None = None
) -> list[float]:
    """The blended ranking score of each candidate of a pool (see the module docstring);
    ``relevance`` defaults to the dense similarity alone."""
    w_sim, w_sales, w_quality = weights
    total = w_sim + w_sales + w_quality
    scaled = ranking.minmax(relevance if relevance is not None else [h.similarity for h in hits])
    best_gmv = max((h.gmv or 0.0) for h in hits)
    scores = []
    for h, rel in zip(hits, scaled, strict=True):
        blended = w_sim * rel + w_sales * ranking.sales_scale(h.gmv, best_gmv) + w_quality * h.quality_score
        scores.append(blended / total if total else rel)
    return scores


def outcome_formula(weights: tuple[float, float, float], best_gmv: float) -> qm.FormulaQuery:
    """The outcome-aware score as a Qdrant scoring formula, evaluated by the engine over the
    dense candidates it prefetched:

        (w_sim · cosine + w_sales · ln(1 + gmv) / ln(1 + best_gmv) + w_quality · quality_score) / Σw

    It is the blended score of ``outcome_scores`` with the normalisations an engine can do
    per point: the raw cosine for the pool-scaled relevance, and the best GMV visible to
    the caller (``TypeProfile.top_gmv``) for the pool's best. A phase without GMV scores 0
    on sales, one without a quality score gets the neutral prior 0.5."""
    w_sim, w_sales, w_quality = weights
    total = (w_sim + w_sales + w_quality) or 1.0
    sales_per_log = w_sales / total / math.log1p(best_gmv) if best_gmv > 0 else 0.0
    return qm.FormulaQuery(
        formula=qm.SumExpression(
            sum=[
                qm.MultExpression(mult=[w_sim / total, "$score"]),
                qm.MultExpression(mult=[sales_per_log, qm.LnExpression(ln=qm.SumExpression(sum=[1.0, "gmv"]))]),
                qm.MultExpression(mult=[w_quality / total, "quality_score"]),
            ]
        ),
        defaults={"gmv": 0.0, "quality_score": DEFAULT_PRIOR},
    )


def candidates(
    store: KnowledgeStore,
    vector: np.ndarray,
    flt: qm.Filter | None,
    pool: int,
    formula: qm.FormulaQuery | None,
) -> list[qm.ScoredPoint]:
    """The pool the re-ranking works on: the dense top ``pool`` under the filter, or, with
    a ``formula``, the formula's top ``pool`` of the dense top ``pool · FORMULA_PREFETCH``.
    The returned score is always the cosine (the formula's own score is not used below)."""
    fetch = {"limit": pool, "with_payload": True, "with_vectors": True}
    if formula is None:
        return store.client.query_points(
            store.phases,
            query=vector.tolist(),
            using=DENSE,
            query_filter=flt,
            **fetch,  # type: ignore[arg-type]
        ).points
    dense = qm.Prefetch(query=vector.tolist(), using=DENSE, filter=flt, limit=pool * FORMULA_PREFETCH)
    points = store.client.query_points(store.phases, query=formula, prefetch=dense, **fetch).points  # type: ignore[arg-type]
    unit = vector / (float(np.linalg.norm(vector)) or 1.0)
    for p in points:  # the cosine back, from the returned vector (the formula replaced the score)
        v = np.asarray(_dense(p.vector), dtype=np.float64)
        p.score = float(unit @ v / (float(np.linalg.norm(v)) or 1.0))
    return sorted(points, key=lambda p: -p.score)


def search(
    store: KnowledgeStore, request: SearchRequest, *, brand_id: int | None = None, excluded_owner: Owner | None = None
) -> list[SearchHit]:
    """Top-``k`` phases for the request, best first (``excluded_owner``: see ``build_filter``)."""
    settings = store.settings
    text = request.text()
    vector = np.asarray(store.embedder.embed_query(text), dtype=np.float64)
    profile = type_profile(store)
    spellings = (
        type_filter_values(request.filters.phase_type, profile, brand_id) if request.filters.phase_type else None
    )
    flt = build_filter(request.filters, phase_types=spellings, brand_id=brand_id, excluded_owner=excluded_owner)
    pool = max(request.k * _POOL_FACTOR, _MIN_POOL)
    weights = (settings.rank_weight_similarity, settings.rank_weight_sales, settings.rank_weight_quality)
    formula = outcome_formula(weights, profile.top_gmv(brand_id)) if request.outcome_aware else None
    points = candidates(store, vector, flt, pool, formula)
    if not points:
        return []
    hits = [_hit(p.id, p.score, p.payload or {}) for p in points]
    vectors = np.array([_dense(p.vector) for p in points], dtype=np.float64)

    centroids = profile.centroids(brand_id)
    wanted = ranking.query_types(request.phase_type, vector, centroids, settings.rank_type_temperature)
    type_fit = [wanted.get(ranking.canonical_type(h.phase_type), 0.0) for h in hits]
    lexical = (
        lexical_scores(text, [f"{h.speech_text}\n{h.description}" for h in hits])
        if settings.rank_weight_lexical > 0
        else [0.0] * len(hits)
    )
    relevance = ranking.relevance(
        ranking.minmax([h.similarity for h in hits]),
        lexical,
        type_fit,
        w_lexical=settings.rank_weight_lexical,
        w_type=settings.rank_weight_type,
    )
    scores = outcome_scores(hits, weights, relevance) if request.outcome_aware else relevance
    for h, score in zip(hits, scores, strict=True):
        h.score = score
    # Sorted first so that ties (identical texts) fall to the best seller, then to a stable order.
    by_score = sorted(range(len(hits)), key=lambda i: (-hits[i].score, hits[i].video_id, hits[i].phase_index))
    order = ranking.diversify(
        [hits[i].score for i in by_score],
        vectors[by_score],
        weight=settings.rank_weight_diversity,
        threshold=settings.rank_duplicate_cosine,
    )
    hits = [hits[by_score[i]] for i in order]
    if request.max_per_video:
        seen: Counter[tuple[int | None, str]] = Counter()  # a video is an id of one owner
        kept = []
        for h in hits:
            seen[h.brand_id, h.video_id] += 1
            if seen[h.brand_id, h.video_id] <= request.max_per_video:
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


def _dense(vector: Any) -> list[float]:
    """The dense vector of a returned point (named vectors come back as a dict)."""
    return list(vector[DENSE] if isinstance(vector, dict) else vector)


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
