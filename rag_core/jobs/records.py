"""Ingest jobs: the queue message that carries one, and its status record in Table Storage.

A job is whatever a request, an inbox file or an uploaded blob asks the worker
to do for one video: ingest an analysis, read a sales screenshot, read a
screen recording, or any mix of these. The queue message names the job and
where its inputs lie (blob names in the uploads container); it never carries
the analysis itself, because queue messages are limited to 64 KiB.

The status record (table ``JOBS_TABLE``, one row per job id) is what
``GET /external/analysis/{job_id}`` reports. Job ids are deterministic (a hash
of what was submitted), so a repeated submission finds its job instead of
creating a second one.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from rag_core.base.storage import (
    MatchConditions,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    TableClient,
    UpdateMode,
)

_NAMESPACE = uuid.UUID("6a0f2f52-3c1e-5b7d-8f4a-2d9c0e1b7a63")
_PARTITION = "job"


class JobKind(StrEnum):
    """What started the job; the worker does whatever the message's inputs call for."""

    INGEST_ANALYSIS = "ingest_analysis"  # an analysis (plus, optionally, a sales image / recording)
    EXTRACT_SALES = "extract_sales"  # a sales screenshot for an already stored video
    EXTRACT_SCREEN = "extract_screen"  # a screen recording for an already stored video


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobMessage(BaseModel):
    """The queue message of one job. Blob names are relative to the uploads container."""

    version: int = 1
    job_id: str
    kind: JobKind
    video_id: str
    brand_id: int | None = None
    analysis_blob: str | None = None
    sales_image_blob: str | None = None
    screen_recording_blob: str | None = None
    poison_reason: str | None = Field(None, description="Set by the local runner when it moves the message to poison")


class JobRecord(BaseModel):
    """The status of one job as stored in Table Storage."""

    job_id: str
    kind: JobKind
    status: JobStatus = JobStatus.QUEUED
    video_id: str
    brand_id: int | None = None
    source: str = Field(description="api, inbox or upload")
    created_at: dt.datetime
    updated_at: dt.datetime
    attempts: int = 0
    error: str | None = Field(None, description="Why the job failed (or why the last attempt failed)")
    warnings: list[str] = Field(default_factory=list)
    result: dict[str, Any] | None = None
    message: JobMessage
    enqueued: bool = False


def job_id_for(*parts: object) -> str:
    """A deterministic job id: the same submission always maps to the same job."""
    return str(uuid.uuid5(_NAMESPACE, json.dumps([str(p) for p in parts], ensure_ascii=False)))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


_JSON_FIELDS = ("warnings", "result", "message")
MAX_ERROR_CHARS = 4_000
MAX_WARNINGS = 50
MAX_WARNING_CHARS = 500


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 40]}… ({len(text) - limit + 40} more characters)"


def bounded(record: JobRecord) -> JobRecord:
    """``record`` with its error and warnings cut to a size any Table Storage entity holds
    (64 KiB per property): a job with 10,000 problems must still record that it failed."""
    warnings = [_clip(w, MAX_WARNING_CHARS) for w in record.warnings[:MAX_WARNINGS]]
    if len(record.warnings) > MAX_WARNINGS:
        warnings.append(f"… and {len(record.warnings) - MAX_WARNINGS} more warnings")
    error = _clip(record.error, MAX_ERROR_CHARS) if record.error else record.error
    return record.model_copy(update={"warnings": warnings, "error": error})


def _to_entity(record: JobRecord) -> dict[str, Any]:
    data = bounded(record).model_dump(mode="json", exclude={"job_id"})
    entity: dict[str, Any] = {"PartitionKey": _PARTITION, "RowKey": record.job_id}
    for key, value in data.items():
        if key in _JSON_FIELDS:
            entity[key] = json.dumps(value, ensure_ascii=False)
        elif key in ("created_at", "updated_at"):
            entity[key] = getattr(record, key)
        elif value is not None:
            entity[key] = value
    return entity


def _from_entity(entity: dict[str, Any]) -> JobRecord:
    data = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
    for key in _JSON_FIELDS:
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    return JobRecord.model_validate({**data, "job_id": entity["RowKey"]})


class JobStore:
    """Job status records in one table (partition ``job``, row key = job id)."""

    def __init__(self, table: TableClient) -> None:
        self.table = table

    def create(self, record: JobRecord) -> tuple[JobRecord, bool]:
        """Insert ``record`` unless its job exists; returns the stored record and whether it is new."""
        try:
            self.table.create_entity(_to_entity(record))
        except ResourceExistsError:
            existing = self.get(record.job_id)
            if existing is not None:
                return existing, False
            raise
        return record, True

    def get(self, job_id: str) -> JobRecord | None:
        try:
            entity = self.table.get_entity(_PARTITION, job_id)
        except ResourceNotFoundError:
            return None
        return _from_entity(dict(entity))

    def update(self, job_id: str, **changes: Any) -> JobRecord:
        """Apply ``changes`` to a job (read-modify-write guarded by the entity's ETag, retried)."""
        for _ in range(5):
            updated = self._replace_if(job_id, lambda _: True, changes)
            if updated is not None:
                return updated
        raise RuntimeError(f"job {job_id} kept changing under concurrent updates")

    def transition(self, job_id: str, allowed: Callable[[JobRecord], bool], **changes: Any) -> JobRecord | None:
        """Apply ``changes`` only if ``allowed(current record)`` holds, in one ETag-guarded write.

        Returns None when it does not hold, the job is gone, or another writer changed the
        record first: of several processes attempting the same transition, exactly one gets it.
        """
        try:
            return self._replace_if(job_id, allowed, changes)
        except ResourceNotFoundError:
            return None

    def _replace_if(
        self, job_id: str, allowed: Callable[[JobRecord], bool], changes: dict[str, Any]
    ) -> JobRecord | None:
        """One read and one conditional write; None when ``allowed`` refuses or the ETag moved."""
        entity = self.table.get_entity(_PARTITION, job_id)
        record = _from_entity(dict(entity))
        if not allowed(record):
            return None
        updated = record.model_copy(update={**changes, "updated_at": now()})
        try:
            self.table.update_entity(
                _to_entity(updated),
                mode=UpdateMode.REPLACE,
                etag=entity.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return None
        return updated

    def for_video(self, video_id: str) -> list[JobRecord]:
        """Every job of one video. A scan of the partition, acceptable for what needs it (deleting
        a video); a hot path would want the video id in the key."""
        entities = self.table.query_entities(
            "PartitionKey eq @partition and video_id eq @video", parameters={"partition": _PARTITION, "video": video_id}
        )
        return [_from_entity(dict(e)) for e in entities]

    def fail_stuck(self, status: JobStatus, older_than: dt.datetime, reason: str) -> list[JobRecord]:
        """Mark ``failed`` (with ``reason``) every job still in ``status`` whose record has not
        changed since ``older_than``; each in one ETag-guarded transition, so a job that moves
        on meanwhile (a worker finishing it) is left alone. Returns the jobs marked."""
        entities = self.table.query_entities(
            "PartitionKey eq @partition and status eq @status and updated_at lt @cutoff",
            parameters={"partition": _PARTITION, "status": status.value, "cutoff": older_than},
        )
        marked = []
        for entity in entities:
            failed = self.transition(
                str(entity["RowKey"]),
                lambda j: j.status == status and j.updated_at < older_than,
                status=JobStatus.FAILED,
                error=reason,
            )
            if failed is not None:
                marked.append(failed)
        return marked

    def recent(self, limit: int, *, brand_id: int | None = None) -> list[JobRecord]:
        """The ``limit`` most recently updated jobs (of one brand). Table Storage cannot order, so
        this scans the partition: fine for a dashboard's list, not for a hot path."""
        query = "PartitionKey eq @partition" + (" and brand_id eq @brand" if brand_id is not None else "")
        entities = self.table.query_entities(query, parameters={"partition": _PARTITION, "brand": brand_id})
        jobs = [_from_entity(dict(e)) for e in entities]
        return sorted(jobs, key=lambda j: j.updated_at, reverse=True)[:limit]

    def delete(self, job_id: str) -> None:
        self.table.delete_entity(_PARTITION, job_id)
