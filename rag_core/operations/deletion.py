"""Delete one video with everything stored for it: the data-subject request path.

A stored video carries personal data: the transcript (phase speech), viewers'
comments (screen metrics), the submitter's ``user_email`` (stream record), and
the inputs as submitted. All of it goes:

* its phase points and its stream record in Qdrant;
* its job records in Table storage (their status URLs answer 404 afterwards);
* in the uploads container, every input blob its jobs name (the analysis JSON as
  submitted, the sales screenshot, a referenced screen recording) and anything
  else under ``jobs/<job_id>/``, plus the screenshots and recordings dropped under
  ``sales/`` and ``screen-recordings/`` for the video (found by the rule the
  upload trigger uses: ``video_id`` metadata, first folder, or file stem).

Not reached here (docs/operations.md says how to handle them): analysis files
left in the inbox container (one file may hold many videos), Qdrant snapshots
(they age out after ``SNAPSHOT_RETENTION``) and blob soft delete.

A brand-scoped caller may delete only its brand's video; another brand's answers
exactly like an unknown one, so a deletion attempt does not reveal that it exists.
Blobs and job records go first and the stream record last: the stream record is
what shows the video's owner, so an interrupted deletion can be repeated by the
same caller. A job that is running at that very moment can still write the video
again; its inputs are gone, so any later delivery of it fails.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable

from pydantic import BaseModel, Field

from rag_core.base.logs import log_context
from rag_core.base.storage import ContainerClient, ResourceNotFoundError
from rag_core.context import AppContext
from rag_core.ingestion.blob_intake import video_id_of_upload
from rag_core.ingestion.uploads import RECORDINGS_PREFIX, SALES_PREFIX, upload_brand
from rag_core.jobs.records import JobRecord
from rag_core.knowledge.store import VideoNotFoundError

log = logging.getLogger(__name__)


class VideoDeletion(BaseModel):
    """What deleting one video removed."""

    video_id: str
    deleted_points: int = Field(description="Phase points removed from Qdrant")
    deleted_stream: bool = Field(description="Whether the stream record (the video itself) was removed")
    deleted_jobs: list[str] = Field(description="Ids of the job records removed")
    deleted_blobs: list[str] = Field(description="Names of the blobs removed from the uploads container")


def delete_video(ctx: AppContext, video_id: str, *, brand_id: int | None = None) -> VideoDeletion:
    """Delete ``video_id`` and everything stored for it (see the module docstring).

    Raises VideoNotFoundError when nothing of it is stored, or when it is another
    brand's and the caller is scoped to ``brand_id``.
    """
    with ctx.knowledge() as kb:
        stream = kb.get_video(video_id)
    if stream is not None and brand_id is not None and stream.get("brand_id") != brand_id:
        raise VideoNotFoundError(video_id)
    belongs = _belongs_to_video(stream, brand_id)
    with log_context(video_id=video_id):
        jobs = [job for job in ctx.jobs.for_video(video_id) if belongs(job.brand_id)]
        uploads = ctx.storage.container(ctx.settings.uploads_container)
        blobs = _delete_blobs(uploads, _blob_names(uploads, video_id, jobs, belongs))
        for job in jobs:
            with contextlib.suppress(ResourceNotFoundError):
                ctx.jobs.delete(job.job_id)
        with ctx.knowledge() as kb:
            points = kb.delete_video(video_id, brand_id=brand_id)
        if stream is None and not (jobs or blobs or points):
            raise VideoNotFoundError(video_id)
        log.info("video deleted: %d points, %d jobs, %d blobs", points, len(jobs), len(blobs))
    return VideoDeletion(
        video_id=video_id,
        deleted_points=points,
        deleted_stream=stream is not None,
        deleted_jobs=sorted(job.job_id for job in jobs),
        deleted_blobs=blobs,
    )


def _belongs_to_video(stream: dict[str, object] | None, brand_id: int | None) -> Callable[[int | None], bool]:
    """Which brand marks (of jobs, of uploaded blobs) are this video's.

    With a stream record: unmarked ones and the video's own brand; a job of another
    brand for the same id was refused at ingest and holds that brand's data. With
    none (only jobs or uploads exist): a scoped caller's own brand, or any for an
    unscoped caller.
    """
    if stream is not None:
        owner = stream.get("brand_id")
        return lambda brand: brand is None or brand == owner
    return lambda brand: brand_id is None or brand == brand_id


def _blob_names(
    uploads: ContainerClient, video_id: str, jobs: Iterable[JobRecord], belongs: Callable[[int | None], bool]
) -> set[str]:
    names: set[str] = set()
    for job in jobs:
        message = job.message
        names.update(n for n in (message.analysis_blob, message.sales_image_blob, message.screen_recording_blob) if n)
        names.update(b.name for b in uploads.list_blobs(name_starts_with=f"jobs/{job.job_id}/"))
    for prefix in (SALES_PREFIX, RECORDINGS_PREFIX):
        for blob in uploads.list_blobs(name_starts_with=prefix, include=["metadata"]):
            if video_id_of_upload(blob.name, blob.metadata) == video_id and belongs(upload_brand(blob.metadata)):
                names.add(blob.name)
    return names


def _delete_blobs(uploads: ContainerClient, names: Iterable[str]) -> list[str]:
    """Delete each blob with its snapshots; returns the names that existed."""
    deleted = []
    for name in sorted(names):
        try:
            uploads.delete_blob(name, delete_snapshots="include")
        except ResourceNotFoundError:
            continue
        deleted.append(name)
    return deleted
