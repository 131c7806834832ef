"""The two reads of the old API that the knowledge base has no own operation for.

``/external/retrieve/liver-history`` (a liver's most recent streams) and
``/external/retrieve/top-performers`` (the phases of the best-selling streams).
The old service sorted an arbitrary page of points; both sort every matching
stream record here, so "recent" and "top" are the true ones.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import models as qm

from rag_core.knowledge.store import KnowledgeStore, brand_condition

_HISTORY_FIELDS = [
    "video_id", "liver_id", "liver_name", "platform", "stream_date", "gmv", "cvr", "orders", "viewers",
    "phase_count", "phase_types", "source_pattern",
]  # fmt: skip
_PHASE_FIELDS = [
    "video_id", "phase_index", "phase_type", "liver_id", "liver_name", "stream_date", "speech_text", "description",
    "insights", "quality_score", "gmv", "cvr", "duration_sec",
]  # fmt: skip


def liver_history(
    store: KnowledgeStore, liver_id: str, *, limit: int, brand_id: int | None = None
) -> list[dict[str, Any]]:
    """A liver's streams, newest first (undated ones last)."""
    liver = qm.FieldCondition(key="liver_id", match=qm.MatchValue(value=liver_id))
    streams = store.streams_matching(liver, brand_id=brand_id, fields=_HISTORY_FIELDS)
    streams.sort(key=lambda s: (s.get("stream_date") is not None, s.get("stream_date") or ""), reverse=True)
    return streams[:limit]


def top_phases(
    store: KnowledgeStore,
    *,
    min_gmv: float,
    limit: int,
    phase_type: str | None = None,
    brand_id: int | None = None,
) -> list[dict[str, Any]]:
    """Phases of the streams with the highest GMV (≥ ``min_gmv``), best quality first within a stream."""
    floor = qm.FieldCondition(key="gmv", range=qm.Range(gte=min_gmv))
    streams = store.streams_matching(floor, brand_id=brand_id, fields=["video_id", "gmv"])
    streams.sort(key=lambda s: (-float(s.get("gmv") or 0.0), s["video_id"]))
    out: list[dict[str, Any]] = []
    for stream in streams:
        if len(out) >= limit:
            break
        must: list[qm.Condition] = [
            qm.FieldCondition(key="video_id", match=qm.MatchValue(value=stream["video_id"])),
            *brand_condition(brand_id),
        ]
        if phase_type:
            must.append(qm.FieldCondition(key="phase_type", match=qm.MatchValue(value=phase_type)))
        phases = [p.payload or {} for p in store.scroll(store.phases, qm.Filter(must=must), _PHASE_FIELDS)]
        phases.sort(key=lambda p: (-float(p.get("quality_score") or 0.0), p.get("phase_index") or 0))
        out.extend(phases[: limit - len(out)])
    return out
