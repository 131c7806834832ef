"""The old API's retrieval, sales and frame routes, as thin adapters onto the same core.

Paths, field names and response keys follow the existing callers' contract.
The sales routes read a screenshot (or a partner JSON record) synchronously,
because the contract answers with the figures; when the video is already
stored, the figures are attached to it as well (``stored`` says whether).
``/metrics/extract-frame`` reads one screen frame's overlay and stores nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, UploadFile

from functions.api.deps import CallerDep, Context
from functions.api.errors import ApiError, error_responses
from functions.api.models import (
    FrameMetrics,
    FrameMetricsResponse,
    LegacyHit,
    LiverHistoryRequest,
    LiverHistoryResponse,
    ProductsScreenshotResponse,
    SalesJsonResponse,
    SalesScreenshotResponse,
    SimilarRequest,
    SimilarResponse,
    TopPhasesRequest,
    TopPhasesResponse,
)
from rag_core.ingestion.uploads import check_image
from rag_core.knowledge import legacy_queries
from rag_core.knowledge.schemas import SearchFilters, SearchRequest
from rag_core.sales.reader import SalesExtraction, extract_sales_from_image, load_image, sales_from_partner_json
from rag_core.screen.extractor import read_frame

router = APIRouter(prefix="/external")

VideoIdForm = Annotated[str, Form(min_length=1, max_length=200)]


@router.post("/retrieve/similar", response_model=SimilarResponse, summary="Legacy: similar past phases")
def similar(body: SimilarRequest, ctx: Context, caller: CallerDep) -> SimilarResponse:
    request = SearchRequest(
        speech_text=body.speech_text,
        description=body.visual_context,
        phase_type=body.phase_type,
        k=body.top_k,
        filters=SearchFilters(
            liver_id=body.liver_id, min_quality=body.min_quality_score, exclude_video_id=body.exclude_video_id
        ),
    )
    with ctx.knowledge() as kb:
        hits = kb.search(request, brand_id=caller.brand_id)
    results = [LegacyHit(**h.model_dump(), visual_context=h.description, ai_insight=h.insights) for h in hits]
    return SimilarResponse(count=len(results), results=results)


@router.post("/retrieve/liver-history", response_model=LiverHistoryResponse, summary="Legacy: a liver's streams")
def liver_history(body: LiverHistoryRequest, ctx: Context, caller: CallerDep) -> LiverHistoryResponse:
    with ctx.knowledge() as kb:
        history = legacy_queries.liver_history(kb.store, body.liver_id, limit=body.top_k, brand_id=caller.brand_id)
    return LiverHistoryResponse(liver_id=body.liver_id, count=len(history), history=history)


@router.post(
    "/retrieve/top-performers", response_model=TopPhasesResponse, summary="Legacy: phases of the top-selling streams"
)
def top_phases(body: TopPhasesRequest, ctx: Context, caller: CallerDep) -> TopPhasesResponse:
    with ctx.knowledge() as kb:
        results = legacy_queries.top_phases(
            kb.store, min_gmv=body.min_gmv, limit=body.top_k, phase_type=body.phase_type, brand_id=caller.brand_id
        )
    return TopPhasesResponse(count=len(results), results=results)


def _attach(ctx: Context, caller: CallerDep, video_id: str, extraction: SalesExtraction, *, products: bool) -> bool:
    """Attach what was read to the stored video; False when the video is not stored (yet). The
    caller's brand's video of that id; for an unscoped key the one video with that id (409
    ``ambiguous_video_id`` when several brands hold it: these routes take no ``brand_id``)."""
    with ctx.knowledge() as kb:
        if kb.get_video(video_id, brand_id=caller.brand_id) is None:
            return False
        kb.update_outcome(
            video_id,
            sales=extraction.sales if not products else None,
            set_products=extraction.set_products or None,
            brand_id=caller.brand_id,
        )
    return True


@router.post(
    "/sales/ingest-json",
    response_model=SalesJsonResponse,
    responses=error_responses(409),
    summary="Legacy: sales from a partner JSON record",
)
def sales_json(
    ctx: Context,
    caller: CallerDep,
    body: Annotated[dict[str, Any], Body(description="{sales_summary: {...}, products: [...]} or flat {gmv, ...}")],
) -> SalesJsonResponse:
    record = dict(body)
    video_id = record.pop("video_id", None)
    if video_id is not None and (not isinstance(video_id, str | int) or not str(video_id).strip()):
        raise ApiError(422, "invalid_request", "must be a non-empty string", field="video_id")
    try:
        extraction = sales_from_partner_json(record)
    except ValueError as exc:
        raise ApiError(422, "invalid_sales", str(exc), field="body") from None
    video_id = str(video_id) if video_id is not None else None
    stored = _attach(ctx, caller, video_id, extraction, products=False) if video_id else False
    return SalesJsonResponse(
        video_id=video_id,
        stored=stored,
        sales_data=extraction.sales,
        set_products=extraction.set_products,
        warnings=extraction.warnings,
    )


def _read_screenshot(ctx: Context, screenshot: UploadFile) -> SalesExtraction:
    data = screenshot.file.read(ctx.settings.max_upload_bytes + 1)
    check_image(data, max_bytes=ctx.settings.max_upload_bytes, field="screenshot")
    return extract_sales_from_image(data, ctx.settings)


@router.post(
    "/sales/ingest-screenshot",
    response_model=SalesScreenshotResponse,
    responses=error_responses(409, 415, 502),
    summary="Legacy: sales from a screenshot",
)
def sales_screenshot(
    ctx: Context, caller: CallerDep, screenshot: Annotated[UploadFile, File()], video_id: VideoIdForm
) -> SalesScreenshotResponse:
    extraction = _read_screenshot(ctx, screenshot)
    if not extraction.sales.model_dump(exclude_none=True, exclude_defaults=True):
        raise ApiError(
            422, "unreadable", "no sales figure could be read: " + "; ".join(extraction.warnings), field="screenshot"
        )
    stored = _attach(ctx, caller, video_id, extraction, products=False)
    return SalesScreenshotResponse(
        video_id=video_id, stored=stored, sales_data=extraction.sales, warnings=extraction.warnings
    )


@router.post(
    "/sales/ingest-products-screenshot",
    response_model=ProductsScreenshotResponse,
    responses=error_responses(409, 415, 502),
    summary="Legacy: set products from a screenshot",
)
def products_screenshot(
    ctx: Context, caller: CallerDep, screenshot: Annotated[UploadFile, File()], video_id: VideoIdForm
) -> ProductsScreenshotResponse:
    extraction = _read_screenshot(ctx, screenshot)
    if not extraction.set_products:
        raise ApiError(
            422, "unreadable", "no product could be read: " + "; ".join(extraction.warnings), field="screenshot"
        )
    stored = _attach(ctx, caller, video_id, extraction, products=True)
    return ProductsScreenshotResponse(
        video_id=video_id, stored=stored, set_products=extraction.set_products, warnings=extraction.warnings
    )


@router.post(
    "/metrics/extract-frame",
    response_model=FrameMetricsResponse,
    responses=error_responses(415),
    summary="Legacy: overlay metrics (viewers, likes, comments, purchase pop-up) from one screen frame",
)
def extract_frame(ctx: Context, frame: Annotated[UploadFile, File()]) -> FrameMetricsResponse:
    data = frame.file.read(ctx.settings.max_upload_bytes + 1)
    check_image(data, max_bytes=ctx.settings.max_upload_bytes, field="frame")
    image, _ = load_image(data)
    reading = read_frame(image, settings=ctx.settings)
    if reading.empty:
        raise ApiError(
            422, "unreadable", "no overlay figure could be read: " + "; ".join(reading.warnings), field="frame"
        )
    metrics = FrameMetrics(
        layout=reading.layout,
        viewer_count=reading.viewers,
        likes=reading.likes,
        comment_count=reading.comments,
        purchase_notifications=[reading.purchase_popup] if reading.purchase_popup else [],
    )
    return FrameMetricsResponse(metrics=metrics, warnings=reading.warnings)
