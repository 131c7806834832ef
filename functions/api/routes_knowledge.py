"""Reads of the knowledge base: stats, per-liver analysis, top performers, search, prompt block."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from functions.api.deps import BrandParam, CallerDep, Context, video_scope
from functions.api.errors import ApiError, error_responses
from functions.api.models import SearchResponse, StatsResponse
from rag_core.knowledge.schemas import (
    LiverSummary,
    PromptBlock,
    PromptRequest,
    SearchRequest,
    TopPerformerQuery,
    TopPerformerReport,
)
from rag_core.knowledge.store import Owner

router = APIRouter()


STATS_WAIT_SEC = 0.25


@router.get("/external/stats", response_model=StatsResponse, summary="Totals over the knowledge base")
def stats(ctx: Context, caller: CallerDep) -> StatsResponse:
    """Fresh totals, or, while a long ingest holds the knowledge base, the totals computed last
    for this scope (at most the running job behind): a stats request answers within a second
    however large the analysis being ingested. The first request of a scope always waits."""
    with ctx.knowledge_if_free(STATS_WAIT_SEC) as kb:
        result = kb.stats(brand_id=caller.brand_id) if kb is not None else ctx.last_stats.get(caller.brand_id)
    if result is None:
        with ctx.knowledge() as held:
            result = held.stats(brand_id=caller.brand_id)
    ctx.last_stats[caller.brand_id] = result
    return StatsResponse(**result.model_dump(), total_entries=result.total_phases)


@router.get(
    "/external/livers/{liver_id}",
    response_model=LiverSummary,
    responses=error_responses(404),
    summary="What one liver's streams achieved and how their phases are spent",
)
def liver(
    liver_id: Annotated[str, Path(min_length=1, max_length=200)], ctx: Context, caller: CallerDep
) -> LiverSummary:
    with ctx.knowledge() as kb:
        summary = kb.liver_summary(liver_id, brand_id=caller.brand_id)
    if summary is None:
        raise ApiError(404, "not_found", f"no streams of liver {liver_id!r}", field="liver_id")
    return summary


@router.get(
    "/external/top-performers",
    response_model=TopPerformerReport,
    summary="Top livers (or videos) by a metric, optionally contrasted with one liver",
)
def top_performers(query: Annotated[TopPerformerQuery, Query()], ctx: Context, caller: CallerDep) -> TopPerformerReport:
    with ctx.knowledge() as kb:
        return kb.top_performers(query, brand_id=caller.brand_id)


@router.post("/external/search", response_model=SearchResponse, summary="Similar past phases, ranked by outcome")
def search(body: SearchRequest, ctx: Context, caller: CallerDep) -> SearchResponse:
    with ctx.knowledge() as kb:
        hits = kb.search(body, brand_id=caller.brand_id)
    return SearchResponse(count=len(hits), results=hits)


@router.post(
    "/external/prompt",
    response_model=PromptBlock,
    summary="The RAG prompt block for a phase",
    responses=error_responses(404),
)
def prompt(body: PromptRequest, ctx: Context, caller: CallerDep, brand_id: BrandParam = None) -> PromptBlock:
    """``brand_id`` names whose ``video_id`` is analysed, so that an unscoped key leaves only that
    video out of the similar phases (without it, every video with the id is left out)."""
    scope = video_scope(caller, brand_id, body.video_id) if body.video_id else caller.brand_id
    with ctx.knowledge() as kb:
        return kb.build_prompt(body, brand_id=caller.brand_id, owner=scope if isinstance(scope, Owner) else None)
