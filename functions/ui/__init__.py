"""The dashboard: Japanese pages under ``/ui``, served by the same FastAPI app as the API.

Server-rendered (Jinja2) so a phone gets a finished page without a client framework; the charts are
Plotly, whose JavaScript comes inside the ``plotly`` wheel and is served from it here, so the pages
work offline and on Azure without a CDN or node_modules. Every read goes through
``rag_core.dashboard`` with the caller's brand, exactly as the API's routes do.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from functions.ui import pages
from functions.ui.session import CsrfRejected, SignInRequired

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Add the pages, their static files and their sign-in / CSRF handling to ``app``."""
    app.include_router(pages.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")

    async def sign_in(request: Request, exc: Exception) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={pages.quote(target)}", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        return pages.message(
            request, 403, "送信を受け付けられませんでした", "ページを開き直してから、もう一度送信してください。"
        )

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(CsrfRejected, refused)
