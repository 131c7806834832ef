"""One stored stream read back whole: its record, phases with outcome, sales with provenance.

The API's ``GET /external/videos/{video_id}`` returns this model and the stream page renders it.
Provenance comes at two grains: ``sales_sources`` says which inputs (analysis JSON, screenshot,
recording) each job read and what it warned, and ``sales_fields`` says per field what a screenshot
read (value, confidence, raw text, uncertain), which job read it, and whether the stored figure is
that read's value (the analysis' own number wins over OCR, and a refused read keeps the old one).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

from rag_core.analysis.record import PhaseScreenSummary, Sales, ScreenMetricSample, SetProduct
from rag_core.context import AppContext
from rag_core.jobs.records import JobRecord, JobStatus
from rag_core.knowledge.store import SALES_PROVENANCE, BrandScope, Owner
from rag_core.sales.provenance import PRODUCT_PREFIX, FieldProvenance

SourceKind = Literal["analysis_json", "screenshot_ocr", "screen_recording"]


class PhaseOutcome(BaseModel):
    """A stored phase with what it is known to have achieved."""

    phase_index: int
    phase_type: str
    start_sec: float | None = None
    end_sec: float | None = None
    duration_sec: float | None = None
    speech_text: str = ""
    description: str = ""
    insights: str = ""
    products: list[str] = Field(default_factory=list)
    quality_score: float | None = None
    feedback_count: int = 0
    screen_summary: PhaseScreenSummary | None = None


class SalesSource(BaseModel):
    """One input the stored outcome came from, with the job that read it and what it warned."""

    kind: SourceKind
    job_id: str | None = Field(None, description="None for data stored without a job (backfill)")
    status: JobStatus | None = None
    at: dt.datetime | None = None
    warnings: list[str] = Field(default_factory=list)


class SalesFieldSource(FieldProvenance):
    """One field's read with what became of it."""

    stored: bool = Field(description="the stored figure is this read's value")
    needs_check: bool = Field(description="refused, uncertain, or accepted below CHECK_CONFIDENCE")


CHECK_CONFIDENCE = 0.8  # an accepted read below this (e.g. after a failed cross-check) is worth a look


class VideoDetail(BaseModel):
    """Everything stored for one stream."""

    video_id: str
    brand_id: int | None = None
    liver_id: str | None = None
    liver_name: str | None = None
    platform: str | None = None
    stream_date: dt.date | None = None
    title: str | None = None
    video_url: str | None = None
    source_pattern: str | None = None
    total_duration_sec: float | None = None
    sales: Sales | None = None
    set_products: list[SetProduct] = Field(default_factory=list)
    sales_sources: list[SalesSource] = Field(default_factory=list)
    sales_fields: list[SalesFieldSource] = Field(default_factory=list)
    screen_metrics: list[ScreenMetricSample] = Field(default_factory=list)
    phases: list[PhaseOutcome]
    updated_at: dt.datetime | None = None


_INPUTS: tuple[tuple[str, SourceKind], ...] = (
    ("analysis_blob", "analysis_json"),
    ("sales_image_blob", "screenshot_ocr"),
    ("screen_recording_blob", "screen_recording"),
)


def _sources(jobs: list[JobRecord], record: dict[str, Any]) -> list[SalesSource]:
    """Each job's inputs as sources, newest first; a stream stored without any job (a backfill)
    came from its analysis JSON alone."""
    sources = []
    for job in sorted(jobs, key=lambda j: j.updated_at, reverse=True):
        for field, kind in _INPUTS:
            if getattr(job.message, field):
                prefix = {"analysis_json": "analysis", "screenshot_ocr": "sales image", "screen_recording": "screen"}
                relevant = [w for w in job.warnings if w.startswith(prefix[kind])] or ([job.error] if job.error else [])
                sources.append(
                    SalesSource(kind=kind, job_id=job.job_id, status=job.status, at=job.updated_at, warnings=relevant)
                )
    if not sources and record.get("sales"):
        sources.append(SalesSource(kind="analysis_json"))
    return sources


def _stored_value(record: dict[str, Any], field: str) -> object:
    """The stored figure a provenance field names (``gmv``, ``set_products.2.price``)."""
    if field.startswith(PRODUCT_PREFIX):
        parts = field.split(".", 2)
        if len(parts) != 3:
            return None
        _, index, name = parts
        products = record.get("set_products") or []
        row = products[int(index)] if index.isdigit() and int(index) < len(products) else {}
        return row.get(name) if isinstance(row, dict) else None
    return (record.get("sales") or {}).get(field)


def _sales_fields(stream: dict[str, Any], record: dict[str, Any]) -> list[SalesFieldSource]:
    """The kept reads, each compared with the stored figure: a later analysis may have replaced it,
    and the page must not present an OCR read as the source of a number it did not give."""
    out = []
    for raw in stream.get(SALES_PROVENANCE) or []:
        entry = FieldProvenance.model_validate(raw)
        stored = entry.value is not None and _stored_value(record, entry.field) == entry.value
        check = entry.value is None or entry.uncertain or entry.confidence < CHECK_CONFIDENCE
        out.append(SalesFieldSource(**entry.model_dump(), stored=stored, needs_check=check))
    return out


def video_detail(ctx: AppContext, video_id: str, *, brand_id: BrandScope = None) -> VideoDetail | None:
    """The stored stream ``brand_id`` addresses, or None when there is none the caller may see (a
    scoped caller sees only its own brand's video of that id). Its jobs: those of its owner, and
    for an unscoped caller the unmarked ones too (admin submissions)."""
    with ctx.knowledge() as kb:
        owner = kb.store.resolve(video_id, brand_id)
        stream = kb.get_video(video_id, brand_id=Owner(owner))
        if stream is None:
            return None
        phases = kb.video_phases(video_id, brand_id=Owner(owner))
    stored = stream.get("record")
    record: dict[str, Any] = stored if isinstance(stored, dict) else {}
    scoped = isinstance(brand_id, int)
    jobs = [j for j in ctx.jobs.for_video(video_id) if j.brand_id == owner or (j.brand_id is None and not scoped)]
    return VideoDetail(
        video_id=video_id,
        brand_id=stream.get("brand_id"),
        liver_id=stream.get("liver_id"),
        liver_name=stream.get("liver_name"),
        platform=stream.get("platform"),
        stream_date=stream.get("stream_date"),
        title=record.get("title"),
        video_url=record.get("video_url"),
        source_pattern=stream.get("source_pattern"),
        total_duration_sec=record.get("total_duration_sec"),
        sales=record.get("sales"),
        set_products=record.get("set_products") or [],
        sales_sources=_sources(jobs, record),
        sales_fields=_sales_fields(stream, record),
        screen_metrics=record.get("screen_metrics") or [],
        phases=[
            PhaseOutcome.model_validate({k: p.get(k) for k in PhaseOutcome.model_fields if p.get(k) is not None})
            for p in phases
        ],
        updated_at=stream.get("updated_at"),
    )
