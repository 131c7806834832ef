"""Dashboard sign-in: an API key entered once becomes a signed session cookie.

The cookie carries the caller's key *name* and brand, never the key: it is signed (itsdangerous)
with a secret derived from the configured keys, so changing or removing a key ends the sessions
made with it, and no separate session secret has to be configured and kept. Each request checks
that the named key still exists with the same brand scope. The cookie is HttpOnly (no script reads
it) and SameSite=Strict (no other site's page sends it), and every form that changes data also
carries a token bound to the session and must come from this origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from rag_core.base.auth import ANONYMOUS, Caller, authenticate
from rag_core.base.settings import Settings

COOKIE = "lcr_session"
MAX_AGE = 12 * 3600  # a working day; then the key is asked for again


class SignInRequired(Exception):
    """The request has no valid session while API keys are configured."""


class CsrfRejected(Exception):
    """A data-changing form came without this session's token or from another origin."""


def _secret(settings: Settings) -> bytes:
    material = "\n".join(sorted(f"{k.name}:{k.brand_id}:{k.key.get_secret_value()}" for k in settings.api_keys))
    return hashlib.sha256(b"livecommerce-rag ui session\n" + material.encode()).digest()


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_secret(settings), salt="ui-session")


def sign_in(settings: Settings, key: str) -> tuple[Caller, str]:
    """The caller of ``key`` and the cookie value of its new session (AuthError when no key matches)."""
    caller = authenticate(settings, key)
    token = _serializer(settings).dumps({"name": caller.name, "brand": caller.brand_id, "n": secrets.token_hex(8)})
    return caller, token


def _session(settings: Settings, request: Request) -> dict[str, object] | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(settings).loads(raw, max_age=MAX_AGE)
    except BadSignature:
        return None
    return data if isinstance(data, dict) else None


def current_caller(settings: Settings, request: Request) -> Caller:
    """The signed-in caller; anonymous (all brands) when no API keys are configured, as in the API."""
    if not settings.api_keys:
        return ANONYMOUS
    data = _session(settings, request)
    if data is None:
        raise SignInRequired
    for entry in settings.api_keys:
        if entry.name == data.get("name") and entry.brand_id == data.get("brand"):
            return Caller(name=entry.name, brand_id=entry.brand_id)
    raise SignInRequired  # the key was removed or re-scoped since


def csrf_token(settings: Settings, request: Request) -> str:
    """The form token of this session (of the open mode when no keys are configured)."""
    data = _session(settings, request) or {}
    nonce = str(data.get("n", "open"))
    return hmac.new(_secret(settings), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def check_form(settings: Settings, request: Request, token: str) -> None:
    """Refuse a data-changing form without this session's token or sent from another origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfRejected(f"form posted from {origin}")
    if not hmac.compare_digest(token, csrf_token(settings, request)):
        raise CsrfRejected("missing or wrong form token")
