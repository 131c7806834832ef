"""Submit a job: store its input blobs, record it, enqueue it — once, or not at all.

Used by the HTTP API, the inbox trigger and the upload trigger. The inputs
have been validated before this runs. The job id is deterministic, so:

* a repeated submission of the same job finds the existing record and returns
  it without storing or enqueuing anything again (a job whose message was never
  sent, because its first submission died half-way, is enqueued by the first
  re-submission after ``ENQUEUE_GRACE``, and by that one only; a failed
  job is queued again when the caller asks, as an API re-submission does, but
  not when a trigger merely sees the same file again);
* if storing or enqueuing fails, whatever this call wrote is removed again
  before the error propagates, so no blob or job record is left behind.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rag_core.base.auth import Caller
from rag_core.base.logs import log_context
from rag_core.base.storage import AzureError, ContainerClient, ResourceNotFoundError
from rag_core.context import AppContext
from rag_core.ingestion.uploads import UploadRejected, check_analysis_video_url, upload_brand
from rag_core.jobs.records import JobKind, JobMessage, JobRecord, JobStatus, job_id_for, now
from rag_core.knowledge.store import VideoOwnershipError

log = logging.getLogger(__name__)

# How long a job record may wait for its first submission to send the message; far above
# the few storage calls between creating the record and marking it enqueued.
ENQUEUE_GRACE = dt.timedelta(seconds=30)


class StorageUnavailableError(RuntimeError):
    """Blob, Table or Queue storage failed; nothing of the submission was kept."""


@dataclass(frozen=True)
class Submitted:
    job: JobRecord
    created: bool


def enqueue(ctx: AppContext, message: JobMessage) -> None:
    ctx.storage.queue(ctx.settings.ingest_queue).send_message(message.model_dump_json().encode())


def submit_job(
    ctx: AppContext, message: JobMessage, uploads: Mapping[str, bytes], *, source: str, retry_failed: bool = False
) -> Submitted:
    """Store ``uploads`` (blob name → bytes, in the uploads container), record and enqueue the job."""
    with log_context(job_id=message.job_id, video_id=message.video_id):
        submitted = _submit(ctx, message, uploads, source=source, retry_failed=retry_failed)
        log.info("job %s %s (%s)", message.job_id, "submitted" if submitted.created else "already known", source)
    return submitted


def _submit(
    ctx: AppContext, message: JobMessage, uploads: Mapping[str, bytes], *, source: str, retry_failed: bool
) -> Submitted:
    existing = ctx.jobs.get(message.job_id)
    if existing is not None:
        return Submitted(_resume(ctx, existing, retry_failed=retry_failed), created=False)
    container = ctx.storage.container(ctx.settings.uploads_container)
    written: list[str] = []
    record: JobRecord | None = None
    try:
        for name, data in uploads.items():
            container.upload_blob(name, data, overwrite=True)
            written.append(name)
        stamp = now()
        record, created = ctx.jobs.create(
            JobRecord(
                job_id=message.job_id,
                kind=message.kind,
                video_id=message.video_id,
                brand_id=message.brand_id,
                source=source,
                created_at=stamp,
                updated_at=stamp,
                message=message,
            )
        )
        if not created:  # a concurrent identical submission won the race; its blobs are ours too
            return Submitted(_resume(ctx, record, retry_failed=retry_failed), created=False)
        enqueue(ctx, message)
        record = ctx.jobs.update(message.job_id, enqueued=True)
    except AzureError as exc:
        _roll_back(ctx, written, record)
        raise StorageUnavailableError(f"storage failed while submitting job {message.job_id}: {exc}") from exc
    return Submitted(record, created=True)


def _resume(ctx: AppContext, job: JobRecord, *, retry_failed: bool) -> JobRecord:
    """Enqueue a known job again when its message was never sent (or it failed and a retry is asked).

    Only one caller may send that message, so the record is claimed first (an ETag-guarded
    transition to ``enqueued``) and the message sent after. A record not yet enqueued but
    written less than ``ENQUEUE_GRACE`` ago belongs to a submission still in flight, which
    sends the message itself; taking it over would queue the job twice, and two workers
    would then run it at once.
    """
    if job.status == JobStatus.FAILED and retry_failed:
        claimed = ctx.jobs.transition(
            job.job_id,
            lambda j: j.status == JobStatus.FAILED,
            status=JobStatus.QUEUED,
            enqueued=True,
            attempts=0,
            error=None,
            warnings=[],
        )
    elif not job.enqueued:
        claimed = ctx.jobs.transition(
            job.job_id, lambda j: not j.enqueued and now() - j.updated_at >= ENQUEUE_GRACE, enqueued=True
        )
    else:
        claimed = None
    if claimed is None:
        return ctx.jobs.get(job.job_id) or job
    try:
        enqueue(ctx, claimed.message)
    except AzureError:
        with contextlib.suppress(AzureError):  # let a later submission claim it again
            ctx.jobs.update(job.job_id, enqueued=False)
        raise
    return claimed


def _roll_back(ctx: AppContext, blobs: list[str], record: JobRecord | None) -> None:
    container = ctx.storage.container(ctx.settings.uploads_container)
    for name in blobs:
        with contextlib.suppress(AzureError):
            container.delete_blob(name)
    if record is not None:
        with contextlib.suppress(AzureError):
            ctx.jobs.delete(record.job_id)
    log.warning("rolled back a failed submission: %d blobs, job record %s", len(blobs), record is not None)


class IdempotencyConflictError(ValueError):
    """An Idempotency-Key was already used for a submission about another video."""


@dataclass(frozen=True)
class StoreRequest:
    """A validated ``/external/analysis/store`` submission (rag_core.ingestion.uploads did the checks)."""

    video_id: str
    analysis: dict[str, Any] | None = None  # the JSON object as sent, to be parsed again by the worker
    analysis_brand_id: int | None = None
    sales_image: bytes | None = None
    sales_image_kind: str | None = None
    screen_recording: str | None = None


def owning_brand(record_brand: int | None, caller: Caller) -> int | None:
    """The brand a submission is stored under: the caller's scope, which a record may not contradict."""
    if caller.brand_id is None:
        return record_brand
    if record_brand not in (None, caller.brand_id):
        raise VideoOwnershipError(
            f"the analysis is for brand {record_brand}; this API key is for brand {caller.brand_id}"
        )
    return caller.brand_id


def _recording_usable(uploads: ContainerClient, name: str, brand: int | None) -> bool:
    """Whether the referenced recording exists and is not marked for another brand than the video's.

    A recording marked (``brand_id`` metadata) for another brand answers exactly
    like a missing one, so a scoped key can neither read another tenant's overlay
    figures through its own video nor probe which recordings exist.
    """
    try:
        metadata = uploads.get_blob_client(name).get_blob_properties().metadata
    except ResourceNotFoundError:
        return False
    marked = upload_brand(metadata)
    return brand is None or marked is None or marked == brand


def _digest(data: bytes | None) -> str:
    return hashlib.sha256(data).hexdigest() if data is not None else ""


def submit_store_request(
    ctx: AppContext, request: StoreRequest, *, caller: Caller, idempotency_key: str | None = None
) -> Submitted:
    """Submit one store request as a job (idempotent by Idempotency-Key, else by content;
    re-submitting a failed job runs it again)."""
    brand = owning_brand(request.analysis_brand_id, caller)
    uploads = ctx.storage.container(ctx.settings.uploads_container)
    if request.screen_recording and not _recording_usable(uploads, request.screen_recording, brand):
        raise UploadRejected(
            "screen_recording", f"no blob {request.screen_recording} in uploads", status=422, code="not_found"
        )
    analysis = None
    if request.analysis is not None:
        check_analysis_video_url(request.analysis, ctx.settings.video_url_allowed_hosts)
        analysis = dict(request.analysis)
        if brand is not None:
            analysis["brand_id"] = brand
    canonical = json.dumps(analysis, sort_keys=True, ensure_ascii=False).encode() if analysis is not None else None
    if idempotency_key:
        job_id = job_id_for("idempotency-key", caller.name, idempotency_key)
    else:
        job_id = job_id_for(
            "store", brand, request.video_id, _digest(request.sales_image), _digest(canonical),
            request.screen_recording or "",
        )  # fmt: skip
    files: dict[str, bytes] = {}
    message = JobMessage(
        job_id=job_id,
        kind=(
            JobKind.INGEST_ANALYSIS
            if analysis is not None
            else JobKind.EXTRACT_SALES
            if request.sales_image is not None
            else JobKind.EXTRACT_SCREEN
        ),
        video_id=request.video_id,
        brand_id=brand,
        screen_recording_blob=request.screen_recording,
    )
    if canonical is not None:
        message.analysis_blob = f"jobs/{job_id}/analysis.json"
        files[message.analysis_blob] = canonical
    if request.sales_image is not None:
        message.sales_image_blob = f"jobs/{job_id}/sales.{request.sales_image_kind or 'bin'}"
        files[message.sales_image_blob] = request.sales_image
    submitted = submit_job(ctx, message, files, source="api", retry_failed=True)
    if submitted.job.video_id != request.video_id:
        raise IdempotencyConflictError(
            f"Idempotency-Key already used for video {submitted.job.video_id!r}; use a new key for another video"
        )
    return submitted
