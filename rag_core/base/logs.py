"""Structured logs with job/video correlation, and no secrets in them.

``configure_logging(settings)`` installs two filters on the root handlers (the
Functions worker's own handlers in Azure, a JSON stream handler elsewhere):

* ``CorrelationFilter`` stamps every record with the fields bound by
  ``log_context(job_id=..., video_id=...)`` for the current task/thread, so one
  job's lines can be found across the HTTP call, the queue run and retries;
* ``RedactSecrets`` replaces every configured secret value (API keys, Qdrant and
  Azure OpenAI keys, storage account keys) and anything shaped like a key
  (``AccountKey=…``, ``Bearer …``, ``api-key: …``) with ``***``, in the message
  and its arguments, before any handler formats it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rag_core.base.settings import Settings

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})  # noqa: B039
_KEY_SHAPES = re.compile(
    r"(AccountKey=|SharedAccessSignature=|sig=|Bearer\s+|api[-_]?key[\"']?\s*[:=]\s*[\"']?)([^;\s\"'&,]+)",
    re.IGNORECASE,
)
MASK = "***"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Bind correlation fields (job_id, video_id…) to every log record inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class CorrelationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class RedactSecrets(logging.Filter):
    """Masks known secret values and key-shaped substrings in a record's message."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return _KEY_SHAPES.sub(lambda m: m.group(1) + MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, ensure_ascii=False, default=str)


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, as plain strings."""
    values = [key.key.get_secret_value() for key in settings.api_keys]
    for secret in (settings.qdrant_api_key, settings.azure_openai_api_key, settings.openai_api_key):
        if secret is not None:
            values.append(secret.get_secret_value())
    backfill = getattr(settings, "backfill_api_token", None)
    if backfill is not None:
        values.append(backfill.get_secret_value())
    conn = settings.storage_connection_string or ""
    values += re.findall(r"AccountKey=([^;]+)", conn)
    return values


def configure_logging(settings: Settings) -> None:
    """Install correlation and redaction on the root handlers (idempotent), and keep the Azure
    SDK quiet: at INFO it logs every storage request and response (1.8 MB in 13 minutes of
    light use), so its loggers stay at WARNING unless ``LOG_AZURE_HTTP`` asks for them. What
    remains at INFO is one line per request (the server's access log) and one per job."""
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    logging.getLogger("azure").setLevel(logging.INFO if settings.log_azure_http else logging.WARNING)
    if not root.handlers:
        stream = logging.StreamHandler()
        stream.setFormatter(JsonFormatter())
        root.addHandler(stream)
    redact = RedactSecrets(secret_values(settings))
    for handler in root.handlers:
        handler.filters = [f for f in handler.filters if not isinstance(f, CorrelationFilter | RedactSecrets)]
        handler.addFilter(CorrelationFilter())
        handler.addFilter(redact)
