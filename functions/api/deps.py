"""Request dependencies: the process' AppContext and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from rag_core.base.auth import Caller, authenticate
from rag_core.context import AppContext

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
