"""Files dropped into Blob storage become jobs: what the blob triggers and the local poller call.

* ``analyses-inbox/<name>``: a JSON analysis, a JSON array of analyses, or JSON
  Lines. The whole file is validated first; if any record is invalid the file
  is moved to ``analyses-inbox-rejected/<name>`` with ``<name>.error.json``
  beside it (record number and field path of every problem) and nothing is
  enqueued. Otherwise one ingest job per record is submitted.
* ``uploads/sales/<name>`` and ``uploads/screen-recordings/<name>``: a sales
  screenshot or a screen recording for an already stored video becomes an
  extraction job. The video id is the blob's ``video_id`` metadata, else the
  first folder of ``<name>`` (``sales/<video_id>/shot.png``), else the file
  name without extension (``sales/<video_id>.png``).

Job ids hash the file name and content (size for uploads), so a file seen twice
(trigger replay, local poller restart) submits nothing new. A name with path
tricks (``..``, ``.`` or empty segments, backslashes, percent-escapes; see
``rag_core.ingestion.uploads.check_blob_name``) submits nothing and is not touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from rag_core.analysis.record import (
    AnalysisFormatError,
    AnalysisRecord,
    JsonDepthError,
    check_video_id,
    load_json,
    parse_analysis,
)
from rag_core.base.storage import ResourceNotFoundError
from rag_core.context import AppContext
from rag_core.ingestion.submission import submit_job
from rag_core.ingestion.uploads import RECORDINGS_PREFIX, SALES_PREFIX, check_blob_name, upload_brand
from rag_core.jobs.records import JobKind, JobMessage, job_id_for

log = logging.getLogger(__name__)


@dataclass
class InboxResult:
    name: str
    job_ids: list[str] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return bool(self.problems)


def _documents(data: bytes, max_depth: int) -> list[tuple[int, Any]]:
    """(record number from 1, decoded JSON) for a JSON object/array or JSON Lines file.

    A whole-file array counts one level more than the records inside it, so the depth
    limit applies to each record as it does to an API body."""
    text = data.decode("utf-8-sig")
    try:
        whole = load_json(text, max_depth=max_depth + 1)
    except JsonDepthError as exc:
        raise _Invalid([{"record": None, "field": "$", "message": str(exc)}]) from None
    except ValueError:
        whole = None
    else:
        return list(enumerate(whole if isinstance(whole, list) else [whole], start=1))
    docs: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                docs.append((number, load_json(line, max_depth=max_depth)))
            except ValueError as exc:
                raise _Invalid([{"record": number, "field": "$", "message": f"not valid JSON: {exc}"}]) from None
    return docs


class _Invalid(ValueError):
    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def parse_inbox_file(data: bytes, *, max_depth: int) -> list[tuple[dict[str, Any], AnalysisRecord]]:
    """Every record of the file (raw and parsed); ``_Invalid`` listing all problems otherwise."""
    try:
        docs = _documents(data, max_depth)
    except UnicodeDecodeError as exc:
        raise _Invalid([{"record": None, "field": "$", "message": f"not UTF-8 text: {exc.reason}"}]) from None
    if not docs:
        raise _Invalid([{"record": None, "field": "$", "message": "the file holds no analysis"}])
    records: list[tuple[dict[str, Any], AnalysisRecord]] = []
    problems: list[dict[str, Any]] = []
    for number, doc in docs:
        try:
            records.append((doc, parse_analysis(doc)))
        except AnalysisFormatError as exc:
            problems.extend({"record": number, "field": p.field, "message": p.message} for p in exc.problems)
    if problems:
        raise _Invalid(problems)
    return records


def accept_inbox_file(ctx: AppContext, name: str, data: bytes) -> InboxResult:
    """Validate a dropped file; submit its records, or move it to the rejected container."""
    result = InboxResult(name=name)
    try:
        check_blob_name(name)
    except ValueError as exc:
        # Not even moved to the rejected container: writing (or deleting) under this name
        # is exactly what it would make go elsewhere.
        result.problems = [{"record": None, "field": "name", "message": f"blob name {exc}"}]
        log.warning("inbox file %r refused, left in place: blob name %s", name, exc)
        return result
    try:
        records = parse_inbox_file(data, max_depth=ctx.settings.max_json_depth)
    except _Invalid as exc:
        result.problems = exc.problems
        _reject(ctx, name, data, exc.problems)
        return result
    digest = hashlib.sha256(data).hexdigest()
    for number, (raw, record) in enumerate(records, start=1):
        job_id = job_id_for("inbox", name, digest, number)
        blob = f"jobs/{job_id}/analysis.json"
        message = JobMessage(
            job_id=job_id,
            kind=JobKind.INGEST_ANALYSIS,
            video_id=record.video_id,
            brand_id=record.brand_id,
            analysis_blob=blob,
        )
        submit_job(ctx, message, {blob: json.dumps(raw, ensure_ascii=False).encode()}, source="inbox")
        result.job_ids.append(job_id)
    log.info("inbox file %s: %d jobs submitted", name, len(result.job_ids))
    return result


def _reject(ctx: AppContext, name: str, data: bytes, problems: list[dict[str, Any]]) -> None:
    """Move the file out of the inbox, with the reasons beside it."""
    rejected = ctx.storage.container(ctx.settings.rejected_container)
    rejected.upload_blob(name, data, overwrite=True)
    report = {"file": name, "problems": problems}
    rejected.upload_blob(
        f"{name}.error.json", json.dumps(report, ensure_ascii=False, indent=2).encode(), overwrite=True
    )
    with contextlib.suppress(ResourceNotFoundError):
        ctx.storage.container(ctx.settings.inbox_container).delete_blob(name)
    log.warning("inbox file %s rejected: %d problems", name, len(problems))


def video_id_of_upload(name: str, metadata: Mapping[str, str] | None = None) -> str:
    """The video an uploaded file belongs to (see the module docstring); not yet checked
    against the video-id grammar (:func:`accept_upload` does that)."""
    if metadata and metadata.get("video_id"):
        return metadata["video_id"]
    relative = PurePosixPath(name).parts[1:]  # drop sales/ or screen-recordings/
    return relative[0] if len(relative) > 1 else PurePosixPath(name).stem


def accept_upload(ctx: AppContext, name: str, size: int, metadata: Mapping[str, str] | None = None) -> str | None:
    """Submit the extraction job of a file dropped under uploads/sales/ or uploads/screen-recordings/."""
    if name.startswith(SALES_PREFIX):
        prefix, kind, inputs = SALES_PREFIX, JobKind.EXTRACT_SALES, {"sales_image_blob": name}
    elif name.startswith(RECORDINGS_PREFIX):
        prefix, kind, inputs = RECORDINGS_PREFIX, JobKind.EXTRACT_SCREEN, {"screen_recording_blob": name}
    else:
        log.info("upload %s is not under %s or %s; ignored", name, SALES_PREFIX, RECORDINGS_PREFIX)
        return None
    try:
        check_blob_name(name, prefix=prefix)
    except ValueError as exc:  # the job would read whatever the name resolves to, maybe another job's input
        log.warning("upload %r refused, no job submitted: blob name %s", name, exc)
        return None
    try:
        video_id = check_video_id(video_id_of_upload(name, metadata))
    except ValueError as exc:  # the same grammar as every other entry: no job for an id no route can name
        log.warning("upload %r refused, no job submitted: video id %s", name, exc)
        return None
    message = JobMessage(
        job_id=job_id_for("upload", name, size),
        kind=kind,
        video_id=video_id,
        brand_id=upload_brand(metadata),
        **inputs,
    )
    return submit_job(ctx, message, {}, source="upload").job.job_id
