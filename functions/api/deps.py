"""Request dependencies: the process' AppContext and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader

from rag_core.base.auth import Caller, authenticate
from rag_core.context import AppContext
from rag_core.knowledge.store import BrandScope, Owner, VideoNotFoundError

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required on every route but /health when API_KEYS is configured",
)


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.get_context()
    return ctx


def caller(
    ctx: Annotated[AppContext, Depends(context)],
    key: Annotated[str | None, Security(api_key_header)] = None,
) -> Caller:
    """The caller owning the X-API-Key (AuthError → 401 when keys are configured and it matches none)."""
    return authenticate(ctx.settings, key)


Context = Annotated[AppContext, Depends(context)]
CallerDep = Annotated[Caller, Depends(caller)]


BrandParam = Annotated[
    str | None,
    Query(
        pattern=r"^([0-9]{1,9}|none)$",
        description=(
            "The owner of the video when its id is held by several brands (video ids are unique per brand): "
            "a brand id, or `none` for unscoped data. Without it an unscoped key addresses the one video with "
            "this id (409 `ambiguous_video_id`, listing the brands, when there are several). A brand-scoped "
            "key always addresses its own brand's video; naming another brand finds nothing (404)."
        ),
    ),
]


def video_scope(caller: Caller, brand_param: str | None, video_id: str) -> BrandScope:
    """Which video of ``video_id`` the caller addresses (see ``BrandParam``); VideoNotFoundError
    when a scoped caller names another brand, answered like an id nobody holds."""
    if brand_param is None:
        return caller.brand_id
    owner = None if brand_param == "none" else int(brand_param)
    if caller.brand_id is None:
        return Owner(owner)
    if owner != caller.brand_id:
        raise VideoNotFoundError(video_id)
    return caller.brand_id
