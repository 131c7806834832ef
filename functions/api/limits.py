"""Byte limits on request bodies, enforced on the stream as it arrives, before any parsing.

A declared ``Content-Length`` is not enough: a chunked body declares none, and
a multipart or urlencoded parser would read whatever comes. So every body is
read here, counted chunk by chunk, and handed to the app only once it is
complete and within the limit of its content type:

* ``multipart/form-data``: ``MAX_UPLOAD_BYTES`` plus 1 MiB for the text fields;
* anything else (JSON, urlencoded): ``MAX_JSON_BYTES``.

Over the limit the answer is ``413 too_large``. Clients such as urllib,
requests (with a file) or node's fetch write their whole body before they read
the answer; a server that answers and closes first makes them see a reset or a
broken pipe instead of the JSON error. So the rest of an over-limit body is read
and thrown away, up to ``MAX_DISCARD_BYTES``, before answering. Past that amount
(or when the declared length already exceeds it, or the client asked
``Expect: 100-continue``) the 413 is sent at once and the connection closed:
draining would cost more than the client's comfort is worth. A body that
trickles in slower than ``BODY_READ_SECONDS`` in total gets ``408``. A JSON
body nested deeper than ``MAX_JSON_DEPTH`` gets ``422 json_too_deep`` here, for
every route, before any decoder recurses into it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.api.errors import error_response
from rag_core.analysis.record import json_depth
from rag_core.base.settings import Settings
from rag_core.context import AppContext

FORM_OVERHEAD = 1024 * 1024  # room for the form fields beside the largest allowed file
BODY_READ_SECONDS = 60.0


def body_limit(settings: Settings, content_type: str) -> int:
    """The most bytes a body of ``content_type`` may have."""
    if content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return settings.max_upload_bytes + FORM_OVERHEAD
    return settings.max_json_bytes


class BodyLimit:
    """ASGI middleware: buffer each request body within its limit, or answer 413 (see module doc)."""

    def __init__(self, app: ASGIApp, get_context: Callable[[], AppContext]) -> None:
        self.app, self.get_context = app, get_context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared == b"0" or (not declared and b"chunked" not in headers.get(b"transfer-encoding", b"").lower()):
            # No body at all: nothing to count, and no context needed (the OpenAPI document
            # is fetched before one exists).
            await self.app(scope, receive, send)
            return
        settings = self.get_context().settings
        limit = body_limit(settings, headers.get(b"content-type", b"").decode("latin-1"))
        declared_size = int(declared) if declared.isdigit() else None
        if (
            declared_size is not None
            and declared_size > limit
            and (
                b"100-continue" in headers.get(b"expect", b"").lower()
                or declared_size > limit + settings.max_discard_bytes
            )
        ):
            await self._too_large(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + BODY_READ_SECONDS
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                response = error_response(
                    408, "request_timeout", f"the body did not arrive within {BODY_READ_SECONDS:.0f} s",
                    headers={"Connection": "close"},
                )  # fmt: skip
                await response(scope, receive, send)
                return
            if message["type"] == "http.disconnect":
                return
            body: bytes = message.get("body", b"")
            size += len(body)
            if size <= limit:
                chunks.append(body)
            else:
                chunks.clear()
                if size > limit + settings.max_discard_bytes:
                    break
            if not message.get("more_body", False):
                break
        if size > limit:
            await self._too_large(scope, receive, send, limit)
            return
        body = b"".join(chunks)
        if _is_json(headers.get(b"content-type", b"")) and body:
            # Every JSON route, not only the store: FastAPI's own decoding recurses and would
            # answer a 1,000-deep body with a 500 (RecursionError). Counted off the event loop.
            depth = await run_in_threadpool(json_depth, body.decode("utf-8", errors="replace"))
            if depth > settings.max_json_depth:
                response = error_response(
                    422, "json_too_deep",
                    f"body is nested {depth} levels deep; the limit is {settings.max_json_depth} (MAX_JSON_DEPTH)",
                    field="body",
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = error_response(
            413, "too_large", f"the request body exceeds the {limit} bytes allowed for its content type",
            field="body", headers={"Connection": "close"},
        )  # fmt: skip
        await response(scope, receive, send)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";")[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the buffered body in one message, then the real one
    (which then only reports a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
