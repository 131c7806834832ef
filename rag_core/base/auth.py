"""API keys: who is calling, and which brand (tenant) they are confined to.

On Azure the Functions host already demands a function key (``authLevel``
FUNCTION); ``API_KEYS`` adds per-caller keys on top, each optionally scoped to
one ``brand_id``. With no keys configured the API is open (local runs, tests).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from rag_core.base.settings import Settings


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. ``brand_id`` None = may see and write every brand."""

    name: str
    brand_id: int | None = None


ANONYMOUS = Caller(name="anonymous")


class AuthError(PermissionError):
    """The request carries no key, or a key that is not configured."""


def authenticate(settings: Settings, presented: str | None) -> Caller:
    """The caller owning ``presented``; AuthError when keys are configured and it matches none.

    Every configured key is compared (constant time each, no early exit), so the
    response time does not tell which key, or how much of one, was right.
    """
    if not settings.api_keys:
        return ANONYMOUS
    if not presented:
        raise AuthError("missing X-API-Key header")
    given = presented.encode()
    found: Caller | None = None
    for entry in settings.api_keys:
        if hmac.compare_digest(given, entry.key.get_secret_value().encode()) and found is None:
            found = Caller(name=entry.name, brand_id=entry.brand_id)
    if found is None:
        raise AuthError("invalid API key")
    return found
