"""``POST /external/analysis/store`` (multipart or legacy JSON) and ``GET /external/analysis/{job_id}``.

Storing is asynchronous: the request is validated completely, its files are
put in Blob storage, one job is recorded and enqueued, and the answer is 202
with the job's status URL. The queue worker does the OCR and the ingest.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from functions.api.deps import CallerDep, Context
from functions.api.errors import ApiError, error_responses
from functions.api.forms import parse_multipart, parse_urlencoded
from functions.api.models import JobStatusResponse, StoreAccepted
from rag_core.analysis.record import AnalysisRecord, JsonDepthError, load_json, parse_analysis
from rag_core.ingestion.submission import StoreRequest, Submitted, submit_store_request
from rag_core.ingestion.uploads import StoreForm, analysis_from_form, check_image
from rag_core.knowledge.store import point_id

router = APIRouter()

STATUS_PATH = "/api/v1/external/analysis/{job_id}"
_FORM_FIELDS = set(StoreForm.model_fields)

_STORE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["video_url", "liver_id"],
                "properties": {
                    "video_url": {"type": "string", "description": "https URL of the stream video"},
                    "liver_id": {"type": "string"},
                    "liver_name": {"type": "string"},
                    "platform": {"type": "string"},
                    "stream_date": {"type": "string", "format": "date"},
                    "video_id": {"type": "string", "description": "Required when no analysis is sent"},
                    "analysis": {"type": "string", "description": "The analysis JSON (docs/analysis-format.md)"},
                    "sales_image": {"type": "string", "format": "binary", "description": "PNG, JPEG or WebP"},
                    "screen_recording": {"type": "string", "description": "Blob name under uploads/screen-recordings/"},
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "description": "Legacy form: one analysis record (new or legacy field names)",
                "required": ["video_id", "phases"],
                "properties": {
                    "video_id": {"type": "string"},
                    "phases": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    },
}


def _accepted(submitted: Submitted, record: AnalysisRecord | None) -> StoreAccepted:
    job = submitted.job
    return StoreAccepted(
        job_id=job.job_id,
        status=job.status,
        status_url=STATUS_PATH.format(job_id=job.job_id),
        video_id=job.video_id,
        duplicate=not submitted.created,
        message="ingest job queued" if submitted.created else f"already submitted: job is {job.status}",
        point_ids=[point_id(record.video_id, p.phase_index, job.brand_id) for p in record.phases] if record else [],
    )


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    raise ApiError(422, "invalid_request", "must be a text field, not a file", field=name)


async def _store_request_from_form(form: FormData, ctx: Context) -> tuple[StoreRequest, AnalysisRecord | None]:
    """Validate every multipart field (nothing is stored yet)."""
    fields = {name: value for name in _FORM_FIELDS if (value := _text(form, name)) is not None}
    checked = StoreForm.model_validate(fields, context={"allowed_hosts": ctx.settings.video_url_allowed_hosts})
    analysis_value = form.get("analysis")
    if isinstance(analysis_value, UploadFile):
        try:
            analysis_text: str | None = (await analysis_value.read()).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(422, "invalid_encoding", "is not valid UTF-8 text", field="analysis") from None
    else:
        analysis_text = analysis_value
    raw, record = (
        await run_in_threadpool(analysis_from_form, checked, analysis_text, max_depth=ctx.settings.max_json_depth)
        if analysis_text is not None
        else (None, None)
    )
    image = form.get("sales_image")
    if image is not None and not isinstance(image, UploadFile):
        raise ApiError(422, "invalid_request", "must be a file upload", field="sales_image")
    image_bytes = await image.read() if image is not None else None
    kind = (
        check_image(image_bytes, max_bytes=ctx.settings.max_upload_bytes, field="sales_image")
        if image_bytes is not None
        else None
    )
    video_id = record.video_id if record else checked.video_id
    if video_id is None:
        raise ApiError(422, "invalid_request", "give video_id or an analysis", field="video_id")
    if record is None and image_bytes is None and checked.screen_recording is None:
        raise ApiError(
            422, "invalid_request", "give an analysis, a sales_image or a screen_recording", field="analysis"
        )
    request = StoreRequest(
        video_id=video_id,
        analysis=raw,
        analysis_brand_id=record.brand_id if record else None,
        sales_image=image_bytes,
        sales_image_kind=kind,
        screen_recording=checked.screen_recording,
    )
    return request, record


def _json_store_request(body: bytes, max_depth: int) -> tuple[StoreRequest, AnalysisRecord]:
    """Decode and validate a JSON store body (CPU-bound for large analyses: run off the event loop)."""
    try:
        data = load_json(body, max_depth=max_depth)
    except JsonDepthError as exc:
        raise ApiError(422, "json_too_deep", f"body is {exc}", field="body") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN, an int of 4,300+ digits
        raise ApiError(422, "invalid_json", f"body is not valid JSON: {exc}", field="body") from None
    record = parse_analysis(data)
    return StoreRequest(video_id=record.video_id, analysis=data, analysis_brand_id=record.brand_id), record


@router.post(
    "/external/analysis/store",
    status_code=202,
    response_model=StoreAccepted,
    responses=error_responses(403, 409, 415),
    openapi_extra={"requestBody": _STORE_BODY},
    summary="Store an analysed stream (asynchronous; returns the job)",
)
async def store_analysis(
    request: Request,
    ctx: Context,
    caller: CallerDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> StoreAccepted:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    record: AnalysisRecord | None
    if content_type == "application/json":
        body = await request.body()
        store, record = await run_in_threadpool(_json_store_request, body, ctx.settings.max_json_depth)
    elif content_type == "multipart/form-data":
        max_part = ctx.settings.max_upload_bytes
        form = await parse_multipart(
            request.headers, request.stream(), max_files=4, max_fields=32, max_part_size=max_part
        )
        try:
            store, record = await _store_request_from_form(form, ctx)
        finally:
            await form.close()
    elif content_type == "application/x-www-form-urlencoded":
        form = parse_urlencoded(await request.body(), max_fields=32)
        store, record = await _store_request_from_form(form, ctx)
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send multipart/form-data (or a urlencoded form) or application/json",
            field="content-type",
        )
    submitted = await run_in_threadpool(
        submit_store_request, ctx, store, caller=caller, idempotency_key=idempotency_key or None
    )
    return _accepted(submitted, record)


@router.get("/external/analysis/store", include_in_schema=False)
def store_with_get() -> None:
    """A GET of the store URL would otherwise match the job-status route below with job id
    "store" and answer 422; a caller who used the wrong method should be told so."""
    raise HTTPException(405, headers={"Allow": "POST"})


@router.get(
    "/external/analysis/{job_id}",
    response_model=JobStatusResponse,
    responses=error_responses(404),
    summary="Status of a store job",
)
def job_status(job_id: Annotated[str, Path(max_length=200)], ctx: Context, caller: CallerDep) -> JobStatusResponse:
    """Job ids are UUIDs; anything else names no job (404, like an unknown UUID), and is not
    looked up at all: Table Storage refuses row keys with ``/``, ``#`` or ``?``."""
    try:
        canonical = str(uuid.UUID(job_id))
    except ValueError:
        job = None
    else:
        job = ctx.jobs.get(canonical)
    if job is None or (caller.brand_id is not None and job.brand_id != caller.brand_id):
        raise ApiError(404, "not_found", "no such job", field="job_id")
    return JobStatusResponse.of(job)
