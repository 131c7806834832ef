"""``/external/videos/{video_id}``: read a stored video back or remove it with the personal data stored with it;
``/external/export/*.csv``: the caller's streams and phases as CSV."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Response

from functions.api.deps import BrandParam, CallerDep, Context, video_scope
from functions.api.errors import ApiError, error_responses, path_video_id
from rag_core.analysis.record import VIDEO_ID_MAX
from rag_core.dashboard.export import phases_csv, streams_csv
from rag_core.dashboard.video import VideoDetail, video_detail
from rag_core.knowledge.store import VideoNotFoundError
from rag_core.operations.deletion import VideoDeletion, delete_video

router = APIRouter()


@router.delete(
    "/external/videos/{video_id:video_id}",
    response_model=VideoDeletion,
    responses=error_responses(404, 409),
    summary="Delete a video: its phases, stream record, job records and uploaded files",
)
def delete(
    video_id: Annotated[str, Path(max_length=VIDEO_ID_MAX)],
    ctx: Context,
    caller: CallerDep,
    brand_id: BrandParam = None,
) -> VideoDeletion:
    """The id is the rest of the path, percent-decoded: ``/``, ``%2F``, spaces and Japanese all
    reach their video, so every stored id can be deleted (send it ``quote(id, safe="")``)."""
    video_id = path_video_id(video_id)
    try:
        return delete_video(ctx, video_id, brand_id=video_scope(caller, brand_id, video_id))
    except VideoNotFoundError:
        # A brand key only ever reaches its own brand's video: another brand's with the same id
        # is a different video, and the answer is the same whether one exists or not.
        raise _no_video(video_id) from None


@router.get(
    "/external/videos/{video_id:video_id}",
    response_model=VideoDetail,
    responses=error_responses(404, 409),
    summary="Read back a stored video: record, phases with outcome, sales with provenance, screen metrics",
)
def read(
    video_id: Annotated[str, Path(max_length=VIDEO_ID_MAX)],
    ctx: Context,
    caller: CallerDep,
    brand_id: BrandParam = None,
) -> VideoDetail:
    video_id = path_video_id(video_id)
    try:
        detail = video_detail(ctx, video_id, brand_id=video_scope(caller, brand_id, video_id))
    except VideoNotFoundError:
        detail = None
    if detail is None:
        raise _no_video(video_id)
    return detail


def _no_video(video_id: str) -> ApiError:
    return ApiError(404, "not_found", f"no video {video_id!r}", field="video_id")


@router.api_route(
    "/external/videos/{video_id:video_id}", methods=["OPTIONS", "POST", "PUT", "PATCH"], include_in_schema=False
)
def other_methods() -> None:
    """Starlette's own 405 names only the first route whose path matched (DELETE), but this
    path serves GET and DELETE: say both."""
    raise HTTPException(405, headers={"Allow": "DELETE, GET"})


_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "UTF-8 with BOM (Excel in Japan opens it as is)"}
}


def _csv_response(body: bytes, name: str) -> Response:
    return Response(
        body, media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f"attachment; filename={name}"}
    )


@router.get(
    "/external/export/streams.csv", response_class=Response, responses=_CSV, summary="CSV of the caller's streams"
)
def export_streams(
    ctx: Context, caller: CallerDep, liver_id: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    return _csv_response(streams_csv(ctx, brand_id=caller.brand_id, liver_id=liver_id), "streams.csv")


@router.get(
    "/external/export/phases.csv", response_class=Response, responses=_CSV, summary="CSV of the caller's phases"
)
def export_phases(
    ctx: Context, caller: CallerDep, liver_id: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    return _csv_response(phases_csv(ctx, brand_id=caller.brand_id, liver_id=liver_id), "phases.csv")
