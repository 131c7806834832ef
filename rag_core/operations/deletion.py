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

Video ids are unique per brand: a brand-scoped caller deletes its own brand's
video of that id and nothing else (another brand's video with the same id is a
different video, untouched, and whether one exists changes nothing in the
answer). An unscoped caller deletes the one video with that id, or names the
owner when several brands hold it (:class:`~rag_core.knowledge.store.Owner`).
Jobs and uploaded blobs count as the video's when they are marked with its owner;
unmarked ones (admin submissions, drops without ``brand_id`` metadata) are the
unscoped video's, and are taken along with a brand's video only by an unscoped
caller while no unscoped video holds that id. Blobs and job records go first and the stream record last, so an
interrupted deletion can be repeated. A job that is running at that very moment
can still write the video again; its inputs are gone, so any later delivery of it fails.
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
from rag_core.knowledge.store import BrandScope, Owner, VideoNotFoundError

log = logging.getLogger(__name__)


class VideoDeletion(BaseModel):
    """What deleting one video removed."""

    video_id: str
    deleted_points: int = Field(description="Phase points removed from Qdrant")
    deleted_stream: bool = Field(description="Whether the stream record (the video itself) was removed")
    deleted_jobs: list[str] = Field(description="Ids of the job records removed")
    deleted_blobs: list[str] = Field(description="Names of the blobs removed from the uploads container")


def delete_video(ctx: AppContext, video_id: str, *, brand_id: BrandScope = None) -> VideoDeletion:
    """Delete the video ``brand_id`` addresses and everything stored for it (see the module docstring).

    Raises VideoNotFoundError when nothing of it is stored, AmbiguousVideoIdError when an
    unscoped caller names an id several owners hold.
    """
    with ctx.knowledge() as kb:
        owner = kb.store.resolve(video_id, brand_id)
        stream = kb.get_video(video_id, brand_id=Owner(owner))
        # Unmarked inputs go with a brand's video only for an unscoped caller, and only while no
        # unscoped video of that id exists to claim them.
        takes_unmarked = owner is None or (
            not isinstance(brand_id, int) and kb.get_video(video_id, brand_id=Owner(None)) is None
        )
    belongs = _belongs_to_video(owner, takes_unmarked=takes_unmarked)
    with log_context(video_id=video_id):
        jobs = [job for job in ctx.jobs.for_video(video_id) if belongs(job.brand_id)]
        uploads = ctx.storage.container(ctx.settings.uploads_container)
        blobs = _delete_blobs(uploads, _blob_names(uploads, video_id, jobs, belongs))
        for job in jobs:
            with contextlib.suppress(ResourceNotFoundError):
                ctx.jobs.delete(job.job_id)
        with ctx.knowledge() as kb:
            points = kb.delete_video(video_id, brand_id=Owner(owner))
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


def _belongs_to_video(owner: int | None, *, takes_unmarked: bool) -> Callable[[int | None], bool]:
    """Which brand marks (of jobs, of uploaded blobs) are the video's: its owner's, and unmarked
    ones when it takes them (an unmarked input came from an admin; only an admin removes one
    from a brand's video)."""
    return lambda brand: brand == owner or (brand is None and takes_unmarked)


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
