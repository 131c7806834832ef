"""Reviewer feedback on phases: the new route and the two legacy ones, all onto one core operation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from functions.api.deps import BrandParam, CallerDep, Context, video_scope
from functions.api.errors import error_responses, path_video_id
from functions.api.models import (
    LegacyFeedbackRequest,
    LegacyFeedbackResponse,
    PhaseRatingRequest,
    PhaseRatingResponse,
)
from rag_core.analysis.record import VIDEO_ID_MAX
from rag_core.knowledge.schemas import FeedbackRequest, FeedbackResult

router = APIRouter(responses=error_responses(404, 409))

LEGACY_RATING = {-1: 1, 0: 3, 1: 5}  # the old thumbs scale onto 1-5


@router.post("/feedback", response_model=FeedbackResult, summary="Rate a phase (1-5) or mark it helpful")
def feedback(body: FeedbackRequest, ctx: Context, caller: CallerDep, brand_id: BrandParam = None) -> FeedbackResult:
    scope = video_scope(caller, brand_id, body.video_id)
    with ctx.knowledge() as kb:
        return kb.apply_feedback(body, brand_id=scope)


@router.post("/feedback/", response_model=LegacyFeedbackResponse, summary="Legacy feedback: rating -1, 0 or 1")
def legacy_feedback(
    body: LegacyFeedbackRequest, ctx: Context, caller: CallerDep, brand_id: BrandParam = None
) -> LegacyFeedbackResponse:
    request = FeedbackRequest(
        video_id=body.video_id, phase_index=body.phase_index, rating=LEGACY_RATING[body.rating], comment=body.comment
    )
    scope = video_scope(caller, brand_id, body.video_id)
    with ctx.knowledge() as kb:
        result = kb.apply_feedback(request, brand_id=scope)
    return LegacyFeedbackResponse(success=True, message="feedback recorded", new_quality_score=result.new_quality_score)


@router.put(
    "/videos/{video_id:video_id}/phases/{phase_index}/rating",
    response_model=PhaseRatingResponse,
    summary="Legacy: rate one phase 1-5",
)
def rate_phase(
    video_id: Annotated[str, Path(max_length=VIDEO_ID_MAX)],
    phase_index: Annotated[int, Path(ge=0, le=100_000)],
    body: PhaseRatingRequest,
    ctx: Context,
    caller: CallerDep,
    brand_id: BrandParam = None,
) -> PhaseRatingResponse:
    video_id = path_video_id(video_id)  # a path id: "/" and "%2F" included, as DELETE takes it
    request = FeedbackRequest(
        video_id=video_id,
        phase_index=phase_index,
        rating=body.rating,
        comment=body.comment,
        reviewer_name=body.reviewer_name,
    )
    with ctx.knowledge() as kb:
        result = kb.apply_feedback(request, brand_id=video_scope(caller, brand_id, video_id))
    return PhaseRatingResponse(
        success=True,
        video_id=video_id,
        phase_index=phase_index,
        rating=body.rating,
        comment=body.comment,
        reviewer_name=body.reviewer_name,
        new_quality_score=result.new_quality_score,
        feedback_count=result.feedback_count,
    )
