"""The HTTP API: one FastAPI app, served by the Functions host (AsgiFunctionApp) or by uvicorn.

All routes live under ``/api/v1``; the OpenAPI document is ``/api/openapi.json``
and interactive docs ``/api/docs``. Every route except ``/health`` requires an
``X-API-Key`` when ``API_KEYS`` is configured; a brand-scoped key confines every
read and write to its brand.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.api import (
    routes_feedback,
    routes_health,
    routes_jobs,
    routes_knowledge,
    routes_legacy,
    routes_videos,
)
from functions.api.deps import caller
from functions.api.errors import COMMON_ERRORS, error_response, install_error_handlers
from functions.ui import install as install_dashboard
from rag_core.context import AppContext

_FORM_OVERHEAD = 1024 * 1024  # room for the form fields beside the largest allowed file


class BodyLimit:
    """Refuse a request whose declared body exceeds the upload limit before reading it (413)."""

    def __init__(self, app: ASGIApp, get_context: Callable[[], AppContext]) -> None:
        self.app, self.get_context = app, get_context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length", b"") if scope["type"] == "http" else b""
        # Only a declared body needs the settings: a bodiless request (the OpenAPI document
        # fetched before any context exists, say) must not build one.
        if declared.isdigit():
            limit = self.get_context().settings.max_upload_bytes + _FORM_OVERHEAD
            if int(declared) > limit:
                response = error_response(
                    413, "too_large", f"request body of {int(declared)} bytes exceeds the {limit} allowed"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
