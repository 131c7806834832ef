"""The HTTP API: one FastAPI app, served by the Functions host (AsgiFunctionApp) or by uvicorn.

All routes live under ``/api/v1``; the OpenAPI document is ``/api/openapi.json``
and interactive docs ``/api/docs``. Every route except ``/health`` requires an
``X-API-Key`` when ``API_KEYS`` is configured; a brand-scoped key confines every
read and write to its brand.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, FastAPI

from functions.api import (
    routes_feedback,
    routes_health,
    routes_jobs,
    routes_knowledge,
    routes_legacy,
    routes_videos,
)
from functions.api.deps import caller
from functions.api.errors import COMMON_ERRORS, install_error_handlers
from functions.api.limits import BodyLimit
from functions.ui import install as install_dashboard
from rag_core.context import AppContext


def create_api(get_context: Callable[[], AppContext]) -> FastAPI:
    """The API app; ``get_context`` is called per request (the process' context, or a test's)."""
    app = FastAPI(
        title="livecommerce-rag",
        version="1.0.0",
        description=__doc__,
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.get_context = get_context
    install_error_handlers(app)
    app.add_middleware(BodyLimit, get_context=get_context)

    v1 = APIRouter(prefix="/api/v1")
    v1.include_router(routes_health.router)
    secured = APIRouter(dependencies=[Depends(caller)], responses=COMMON_ERRORS)
    for module in (routes_jobs, routes_knowledge, routes_feedback, routes_legacy, routes_videos):
        secured.include_router(module.router)
    v1.include_router(secured)
    app.include_router(v1)
    install_dashboard(app)  # the /ui pages: same process, same context, same brand rules
    return app
