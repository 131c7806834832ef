"""``DELETE /external/videos/{video_id}``: remove a video and the personal data stored with it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from functions.api.deps import CallerDep, Context
from functions.api.errors import ApiError, error_responses, path_video_id
from rag_core.analysis.record import VIDEO_ID_MAX
from rag_core.knowledge.store import VideoNotFoundError
from rag_core.operations.deletion import VideoDeletion, delete_video

router = APIRouter()


@router.delete(
    "/external/videos/{video_id:path}",
    response_model=VideoDeletion,
    responses=error_responses(404),
    summary="Delete a video: its phases, stream record, job records and uploaded files",
)
def delete(video_id: Annotated[str, Path(max_length=VIDEO_ID_MAX)], ctx: Context, caller: CallerDep) -> VideoDeletion:
    """The id is the rest of the path, percent-decoded: ``/``, ``%2F``, spaces and Japanese all
    reach their video, so every stored id can be deleted (send it ``quote(id, safe="")``)."""
    video_id = path_video_id(video_id)
    try:
        return delete_video(ctx, video_id, brand_id=caller.brand_id)
    except VideoNotFoundError:
        # Also another brand's video, for a scoped key: the answer must not tell the two apart.
        raise ApiError(404, "not_found", f"no video {video_id!r}", field="video_id") from None
