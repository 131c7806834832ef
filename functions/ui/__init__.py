"""The dashboard: Japanese pages under ``/ui``, served by the same FastAPI app as the API.

Server-rendered (Jinja2) so a phone gets a finished page without a client framework; the charts are
Plotly, whose JavaScript comes inside the ``plotly`` wheel and is served from it here, so the pages
work offline and on Azure without a CDN or node_modules. Every read goes through
``rag_core.dashboard`` with the caller's brand, exactly as the API's routes do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from functions.api.deps import context
from functions.ui import pages
from functions.ui.session import CsrfRejected, SignInRequired, current_caller
from rag_core.knowledge.store import AmbiguousVideoIdError

STATIC = Path(__file__).parent / "static"


PageHandler = Callable[[Request, Exception], Awaitable[Response]]


def _on_pages(app: FastAPI, exc_type: type[Exception], page: PageHandler) -> None:
    """Answer ``exc_type`` with ``page`` under ``/ui/`` and as the API does (the handler installed
    before) everywhere else: a person on a page gets a page, never the API's JSON error."""
    api = cast(PageHandler | None, app.exception_handlers.get(exc_type))  # the API's are all HTTP handlers

    async def handle(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/ui/") or api is None:
            return await page(request, exc)
        return await api(request, exc)

    app.add_exception_handler(exc_type, handle)


def install(app: FastAPI) -> None:
    """Add the pages, their static files and their sign-in / CSRF handling to ``app`` (after the
    API's error handlers: an id several brands hold and a malformed query get pages here)."""
    app.include_router(pages.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    async def sign_in(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={pages.quote(target)}", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        return pages.message(
            request, 403, "送信を受け付けられませんでした", "ページを開き直してから、もう一度送信してください。"
        )

    async def ambiguous(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AmbiguousVideoIdError)
        ctx = context(request)
        return pages.ambiguous(request, ctx, current_caller(ctx.settings, request), exc)

    async def invalid(request: Request, exc: Exception) -> Response:
        return pages.invalid(request)

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(CsrfRejected, refused)
    _on_pages(app, AmbiguousVideoIdError, ambiguous)
    _on_pages(app, RequestValidationError, invalid)
