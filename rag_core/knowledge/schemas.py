"""Request and result models of the knowledge base's operations.

These are what the HTTP API, the CLIs and the prompt builder exchange with
``rag_core.knowledge.knowledge_base.KnowledgeBase``; the HTTP layer publishes them in OpenAPI.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

# ---------------------------------------------------------------- ingestion --


class IngestResult(BaseModel):
    """What one ingest did. ``embedded`` counts texts sent to the embedding provider."""

    video_id: str
    point_ids: list[str]
    inserted: int = 0
    updated: int = 0  # re-embedded (text changed)
    payload_updated: int = 0  # same text, other payload (sales, products…): no embedding
    unchanged: int = 0
    deleted: int = 0
    embedded: int = 0

    @property
    def status(self) -> Literal["inserted", "updated", "unchanged"]:
        if self.inserted and not (self.updated or self.payload_updated or self.unchanged or self.deleted):
            return "inserted"
        if self.inserted or self.updated or self.payload_updated or self.deleted:
            return "updated"
        return "unchanged"


# ---------------------------------------------------------------- retrieval --


class SearchFilters(BaseModel):
    liver_id: str | None = None
    platform: str | None = None
    phase_type: str | None = None
    product: str | None = Field(None, description="A set product name the phase mentions")
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    min_gmv: float | None = Field(None, ge=0)
    min_quality: float | None = Field(None, ge=0, le=1)
    exclude_video_id: str | None = None


class SearchRequest(BaseModel):
    """A query text (or a new phase's texts) and filters; ``k`` results are returned."""

    query: str = Field("", max_length=20000)
    speech_text: str = Field("", max_length=20000)
    description: str = Field("", max_length=20000)
    phase_type: str | None = None
    k: int = Field(5, ge=1, le=50)
    filters: SearchFilters = Field(default_factory=SearchFilters)
    outcome_aware: bool = True
    max_per_video: int | None = Field(None, ge=1, description="Keep at most this many phases of one video")
    distinct_text: bool = Field(
        False, description="Keep only the best-ranked of phases whose speech and description are identical"
    )

    @model_validator(mode="after")
    def _has_text(self) -> SearchRequest:
        if not (self.query.strip() or self.speech_text.strip() or self.description.strip()):
            raise ValueError("give query, speech_text or description")
        return self

    def text(self) -> str:
        """The text that is embedded as the query."""
        parts = [self.query, self.speech_text, self.description]
        return "\n".join(p.strip() for p in parts if p and p.strip())


class SearchHit(BaseModel):
    point_id: str
    video_id: str
    brand_id: int | None = Field(None, description="The video's owner (video ids are unique per brand)")
    phase_index: int
    score: float = Field(description="Final ranking score")
    similarity: float
    phase_type: str
    liver_id: str | None = None
    liver_name: str | None = None
    platform: str | None = None
    stream_date: dt.date | None = None
    start_sec: float | None = None
    end_sec: float | None = None
    speech_text: str = ""
    description: str = ""
    insights: str = ""
    gmv: float | None = None
    cvr: float | None = None
    orders: float | None = None
    viewers: float | None = None
    quality_score: float = 0.5
    products: list[str] = Field(default_factory=list)
    screen_summary: dict[str, Any] | None = None


# ---------------------------------------------------------------- analytics --


class KnowledgeStats(BaseModel):
    total_gmv: float = 0
    total_livers: int = 0
    total_videos: int = 0
    total_phases: int = 0
    avg_cvr: float | None = None
    avg_gmv_per_stream: float | None = None
    average_quality_score: float | None = None
    high_quality_entries: int = 0
    phase_type_distribution: dict[str, int] = Field(default_factory=dict)
    data_source_distribution: dict[str, int] = Field(default_factory=dict)
    period_from: dt.date | None = None
    period_to: dt.date | None = None
    updated_at: dt.datetime | None = None


class PhaseExample(BaseModel):
    video_id: str
    brand_id: int | None = Field(None, description="The video's owner (video ids are unique per brand)")
    phase_index: int
    phase_type: str
    duration_sec: float | None = None
    speech_text: str = ""
    gmv: float | None = None
    quality_score: float | None = None


class TrendPoint(BaseModel):
    period: str  # YYYY-MM
    videos: int
    gmv: float


class LiverSummary(BaseModel):
    liver_id: str
    liver_name: str | None = None
    videos: int
    total_phases: int
    gmv_total: float
    gmv_avg: float | None = None
    cvr_avg: float | None = None
    phase_type_mix: dict[str, float] = Field(default_factory=dict, description="share of phases")
    best_phases: list[PhaseExample] = Field(default_factory=list)
    worst_phases: list[PhaseExample] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    recent_videos: list[dict[str, Any]] = Field(default_factory=list)


class PerformerRow(BaseModel):
    key: str  # liver_id or video_id
    liver_name: str | None = None
    videos: int
    value: float  # the metric


class PhaseMixContrast(BaseModel):
    phase_type: str
    top_share: float
    target_share: float | None = None
    top_avg_duration_sec: float | None = None
    target_avg_duration_sec: float | None = None


class TopPerformerQuery(BaseModel):
    """Who sells best: the top ``limit`` livers (or videos) by ``metric``, optionally
    contrasted with one liver (``compare_to``). The API's query string and every
    in-process caller use this one model."""

    metric: Literal["gmv", "gpm", "cvr", "orders"] = "gmv"
    group_by: Literal["liver", "video"] = "liver"
    limit: int = Field(5, ge=1, le=50)
    compare_to: str | None = Field(None, min_length=1, max_length=200)
    phase_type: str | None = Field(None, min_length=1, max_length=100)


class TopPerformerReport(BaseModel):
    metric: Literal["gmv", "gpm", "cvr", "orders"]
    group_by: Literal["liver", "video"]
    top: list[PerformerRow]
    compare_to: str | None = None
    target: PerformerRow | None = None
    contrasts: list[PhaseMixContrast] = Field(default_factory=list)
    example_phases: list[PhaseExample] = Field(default_factory=list)


# ---------------------------------------------------------------- feedback ---


class FeedbackRequest(BaseModel):
    """Feedback on one phase (or on every phase of a video when phase_index is absent).

    ``rating`` is 1–5; ``helpful`` is a thumbs up/down; the legacy ``-1/0/1``
    rating of ``POST /feedback/`` is mapped onto the same scale by the API.
    """

    video_id: str
    phase_index: int | None = Field(None, ge=0)
    rating: int | None = Field(None, ge=1, le=5)
    helpful: bool | None = None
    comment: str | None = Field(None, max_length=2000)
    reviewer_name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_signal(self) -> FeedbackRequest:
        if self.rating is None and self.helpful is None:
            raise ValueError("give rating (1-5) or helpful (true/false)")
        return self


class FeedbackResult(BaseModel):
    video_id: str
    phase_indexes: list[int]
    new_quality_score: float
    feedback_count: int


# ---------------------------------------------------------------- prompts ----


class PromptRequest(BaseModel):
    """The phase being analysed now; similar past phases are retrieved for it."""

    speech_text: str = Field("", max_length=20000)
    description: str = Field("", max_length=20000)
    phase_type: str | None = None
    liver_id: str | None = None
    video_id: str | None = Field(None, description="The video being analysed; excluded from retrieval")
    k: int = Field(5, ge=1, le=20)
    char_budget: int | None = Field(None, ge=500, le=50000)


class PromptBlock(BaseModel):
    text: str
    chars: int
    similar: list[SearchHit]
    truncated: bool = False
