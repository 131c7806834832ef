"""Apply reviewer feedback to phases' quality scores (formula in rag_core.knowledge.quality)."""

from __future__ import annotations

from qdrant_client import models as qm

from rag_core.knowledge.quality import DEFAULT_PRIOR, HIGH_QUALITY, feedback_value, quality_score
from rag_core.knowledge.schemas import FeedbackRequest, FeedbackResult
from rag_core.knowledge.store import BrandScope, KnowledgeStore, Owner, VideoNotFoundError, owner_conditions, point_id


class PhaseNotFoundError(LookupError):
    """The video exists but has no phase with that index."""


def apply_feedback(store: KnowledgeStore, request: FeedbackRequest, *, brand_id: BrandScope = None) -> FeedbackResult:
    """Add one feedback value to the addressed phase (or every phase of the video).

    Phases are addressed by their ``phase_index`` (part of the point id), never by
    list position, so feedback always lands on the phase the reviewer saw.
    """
    owner = store.resolve(request.video_id, brand_id)
    stream = store.get_stream(request.video_id, brand_id=Owner(owner))
    if stream is None:
        raise VideoNotFoundError(request.video_id)
    value = feedback_value(rating=request.rating, helpful=request.helpful)
    conditions: list[qm.Condition] = owner_conditions(request.video_id, owner)
    if request.phase_index is not None:
        conditions.append(qm.FieldCondition(key="phase_index", match=qm.MatchValue(value=request.phase_index)))
    fields = ["phase_index", "quality_score", "quality_prior", "feedback_count", "feedback_sum"]
    phases = [p.payload or {} for p in store.scroll(store.phases, qm.Filter(must=conditions), fields)]
    if not phases:
        raise PhaseNotFoundError(f"video {request.video_id!r} has no phase {request.phase_index}")

    updates = []
    quality_delta = 0.0
    high_delta = 0
    for p in phases:
        count = int(p.get("feedback_count") or 0) + 1
        total = float(p.get("feedback_sum") or 0.0) + value
        old = float(p.get("quality_score") or DEFAULT_PRIOR)
        new = quality_score(float(p.get("quality_prior") or DEFAULT_PRIOR), count, total)
        quality_delta += new - old
        high_delta += int(new >= HIGH_QUALITY) - int(old >= HIGH_QUALITY)
        updates.append(
            (
                point_id(request.video_id, p["phase_index"], owner),
                {"feedback_count": count, "feedback_sum": total, "quality_score": new},
            )
        )
    store.set_phase_payloads(updates)
    store.set_stream_payload(
        request.video_id,
        owner,
        {
            "quality_total": float(stream.get("quality_total") or 0.0) + quality_delta,
            "high_quality_phases": int(stream.get("high_quality_phases") or 0) + high_delta,
        },
    )
    scores = [u[1]["quality_score"] for u in updates]
    return FeedbackResult(
        video_id=request.video_id,
        phase_indexes=sorted(p["phase_index"] for p in phases),
        new_quality_score=round(sum(scores) / len(scores), 4),
        feedback_count=max(u[1]["feedback_count"] for u in updates),
    )
