"""Request and response bodies that exist only on the wire (the core's own models are reused as-is).

Legacy shapes follow the existing callers' contract (shared reference contract):
their field names, ranges and response keys.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from rag_core.analysis.record import Sales, SetProduct, VideoId
from rag_core.jobs.records import JobKind, JobRecord, JobStatus
from rag_core.knowledge.schemas import KnowledgeStats, SearchHit


# ----------------------------------------------------------------- jobs --
class StoreAccepted(BaseModel):
    """202 answer of ``/external/analysis/store``; ``success``/``message``/``point_ids`` are the legacy keys."""

    job_id: str
    status: JobStatus
    status_url: str
    video_id: str
    duplicate: bool = Field(description="True when this submission matched an existing job")
    success: bool = True
    message: str
    point_ids: list[str] = Field(default_factory=list, description="Ids the phases will have once ingested")


class JobStatusResponse(BaseModel):
    job_id: str
    kind: JobKind
    status: JobStatus
    video_id: str
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: int
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)
    result: dict[str, Any] | None = None

    @classmethod
    def of(cls, job: JobRecord) -> JobStatusResponse:
        return cls.model_validate(job.model_dump(include=set(cls.model_fields)))


# ------------------------------------------------------------ knowledge --
class StatsResponse(KnowledgeStats):
    total_entries: int = Field(description="Legacy name of total_phases")


class SearchResponse(BaseModel):
    count: int
    results: list[SearchHit]


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    qdrant: bool
    storage: bool


# ------------------------------------------------------------- feedback --
class LegacyFeedbackRequest(BaseModel):
    video_id: VideoId
    phase_index: int = Field(ge=0, le=100_000)
    rating: Literal[-1, 0, 1] = Field(description="-1 bad, 0 neutral, 1 good (mapped to 1, 3, 5)")
    comment: str | None = Field(None, max_length=2000)


class LegacyFeedbackResponse(BaseModel):
    success: bool
    message: str
    new_quality_score: float


class PhaseRatingRequest(BaseModel):
    rating: int = Field(ge=1, le=5)
    comment: str | None = Field(None, max_length=2000)
    reviewer_name: str | None = Field(None, max_length=200)


class PhaseRatingResponse(BaseModel):
    success: bool
    video_id: str
    phase_index: int
    rating: int
    comment: str | None = None
    reviewer_name: str | None = None
    new_quality_score: float
    feedback_count: int


# ------------------------------------------------------ legacy retrieval --
class SimilarRequest(BaseModel):
    speech_text: str = Field("", max_length=20000)
    visual_context: str = Field("", max_length=20000)
    phase_type: str | None = Field(None, max_length=100)
    sales_context: str | None = Field(
        None, max_length=20000, description="Accepted for compatibility; ranking uses the stored sales instead"
    )
    top_k: int = Field(5, ge=1, le=20)
    min_quality_score: float | None = Field(None, ge=0, le=1)
    exclude_video_id: str | None = Field(None, max_length=200)
    liver_id: str | None = Field(None, max_length=200)


class LegacyHit(SearchHit):
    visual_context: str = ""
    ai_insight: str = ""


class SimilarResponse(BaseModel):
    success: bool = True
    count: int
    results: list[LegacyHit]


class LiverHistoryRequest(BaseModel):
    liver_id: str = Field(min_length=1, max_length=200)
    top_k: int = Field(10, ge=1, le=100)


class LiverHistoryResponse(BaseModel):
    success: bool = True
    liver_id: str
    count: int
    history: list[dict[str, Any]]


class TopPhasesRequest(BaseModel):
    min_gmv: float = Field(0, ge=0, le=1e13)
    top_k: int = Field(10, ge=1, le=50)
    phase_type: str | None = Field(None, max_length=100)


class TopPhasesResponse(BaseModel):
    success: bool = True
    count: int
    results: list[dict[str, Any]]


# ----------------------------------------------------------- legacy sales --
class SalesJsonResponse(BaseModel):
    success: bool = True
    video_id: str | None = None
    stored: bool = Field(description="True when the outcome was attached to the stored video")
    sales_data: Sales
    set_products: list[SetProduct]
    warnings: list[str] = Field(default_factory=list)


class SalesScreenshotResponse(BaseModel):
    success: bool = True
    video_id: str
    stored: bool = Field(description="False when the video is not stored yet (nothing was attached)")
    sales_data: Sales
    warnings: list[str] = Field(default_factory=list)


class ProductsScreenshotResponse(BaseModel):
    success: bool = True
    video_id: str
    stored: bool = Field(description="False when the video is not stored yet (nothing was attached)")
    set_products: list[SetProduct]
    warnings: list[str] = Field(default_factory=list)


class FrameMetrics(BaseModel):
    """One frame's overlay in the old names; ``comment_count`` is the overlay's comment counter
    (the old ``comments[]`` list of comment texts is not read from frames)."""

    layout: str
    viewer_count: float | None = None
    likes: float | None = None
    comment_count: float | None = None
    purchase_notifications: list[str] = Field(default_factory=list)


class FrameMetricsResponse(BaseModel):
    success: bool = True
    metrics: FrameMetrics
    warnings: list[str] = Field(default_factory=list)
