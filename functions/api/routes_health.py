"""``GET /health``: can this instance reach Qdrant and Storage? (no API key needed)."""

from __future__ import annotations

import logging

from azure.core.exceptions import AzureError
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from functions.api.deps import Context
from functions.api.models import HealthResponse

router = APIRouter()
log = logging.getLogger(__name__)


def _storage_ok(ctx: Context) -> bool:
    try:
        ctx.storage.blobs.get_container_client(ctx.settings.uploads_container).exists()
    except AzureError as exc:
        log.warning("health: storage unreachable: %s", exc)
        return False
    return True


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "Qdrant or Storage unreachable"}},
    summary="Liveness of the app's dependencies",
)
def health(ctx: Context) -> JSONResponse:
    with ctx.knowledge() as kb:
        qdrant = kb.healthy()
    storage = _storage_ok(ctx)
    body = HealthResponse(status="ok" if qdrant and storage else "degraded", qdrant=qdrant, storage=storage)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
