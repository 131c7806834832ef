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
HEALTH_WAIT_SEC = 0.25


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
    """While a long ingest holds the knowledge base, Qdrant's state is the one seen last
    (the ingest itself fails and says so if Qdrant goes away); otherwise it is checked."""
    with ctx.knowledge_if_free(HEALTH_WAIT_SEC) as kb:
        qdrant = kb.healthy() if kb is not None else ctx.last_qdrant_health
    if qdrant is None:
        with ctx.knowledge() as held:
            qdrant = held.healthy()
    ctx.last_qdrant_health = qdrant
    storage = _storage_ok(ctx)
    body = HealthResponse(status="ok" if qdrant and storage else "degraded", qdrant=qdrant, storage=storage)
    return JSONResponse(body.model_dump(), status_code=200 if body.status == "ok" else 503)
