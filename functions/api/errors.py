"""One error shape for every failure: ``{"error": {"code", "message", "field"?, "details"?}}``.

Exception handlers translate what the core raises into the right status, so a
route never builds an error response itself and bad input never becomes a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.exceptions import HTTPException

from rag_core.analysis.record import AnalysisFormatError, check_video_id
from rag_core.base.auth import AuthError
from rag_core.ingestion.submission import IdempotencyConflictError, StorageUnavailableError
from rag_core.ingestion.uploads import UploadRejected
from rag_core.knowledge.feedback import PhaseNotFoundError
from rag_core.knowledge.search import PhaseTypeNotFoundError
from rag_core.knowledge.store import (
    AmbiguousVideoIdError,
    EmbeddingMismatchError,
    VideoNotFoundError,
    VideoOwnershipError,
)
from rag_core.sales.reader import InvalidInputError, OcrUnavailableError, VisionResponseError

log = logging.getLogger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
MAX_DETAILS = 100


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    details: list[FieldError] | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the error body for ``codes``."""
    return {code: {"model": ErrorResponse} for code in codes}


# What any secured route can answer: malformed body, missing key, body too large, invalid
# input, and a dependency (storage, Qdrant) that is down or mismatched.
COMMON_ERRORS = error_responses(400, 401, 413, 422, 503)


class ApiError(Exception):
    """An error a route raises on purpose, with its status and code."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.field = status, code, field


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    details: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=code, message=message, field=field, details=details))
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "ApiKey"}
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


class VideoIdPathConvertor(PathConvertor):
    """The rest of the path, line breaks included. Starlette's ``path`` (``.*``) stops at a
    line break, so an id with CR/LF matched no route (404) or, with the break last, matched
    the id without it; this one hands every id to :func:`path_video_id` for its 422."""

    regex = r"[\s\S]*"


# Route paths name it as ``{video_id:video_id}``; registered before the routes compile.
register_url_convertor("video_id", VideoIdPathConvertor())


def path_video_id(value: str) -> str:
    """A video id taken from a URL path, held to the video-id grammar (422 naming it otherwise)."""
    try:
        return check_video_id(value)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"video_id {exc}", field="video_id") from None


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "filters", "k")`` → ``filters.k``; the location word is kept only when alone."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_failed(errors: Sequence[Any], code: str = "invalid_request") -> JSONResponse:
    # At most MAX_DETAILS problems are listed: a 10,000-phase analysis with one bad field in
    # every phase must not produce a megabyte of error.
    details = [
        FieldError(field=field_path(e.get("loc", ())), message=str(e.get("msg", "invalid")))
        for e in errors[:MAX_DETAILS]
    ]
    if not details:
        details = [FieldError(field="body", message="invalid request")]
    first = details[0]
    return error_response(422, code, f"{first.field}: {first.message}", field=first.field, details=details)


_STATUS: list[tuple[type[Exception], int, str]] = [
    (AuthError, 401, "unauthorized"),
    (VideoOwnershipError, 403, "forbidden"),
    (VideoNotFoundError, 404, "not_found"),
    (PhaseNotFoundError, 404, "not_found"),
    (PhaseTypeNotFoundError, 422, "unknown_phase_type"),
    (IdempotencyConflictError, 409, "idempotency_conflict"),
    (InvalidInputError, 415, "unsupported_media_type"),
    (OcrUnavailableError, 503, "ocr_unavailable"),
    (VisionResponseError, 502, "ocr_failed"),
    (StorageUnavailableError, 503, "storage_unavailable"),
    (EmbeddingMismatchError, 503, "index_mismatch"),
]


def install_error_handlers(app: FastAPI) -> None:
    async def request_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | ValidationError)
        return _validation_failed(exc.errors())

    async def analysis_invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AnalysisFormatError)
        errors = [{"loc": p.field.split("."), "msg": p.message} for p in exc.problems]
        return _validation_failed(errors, code="invalid_analysis")

    async def upload_rejected(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, UploadRejected)
        return error_response(exc.status, exc.code, f"{exc.field}: {exc}", field=exc.field)

    async def ambiguous_video(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AmbiguousVideoIdError)
        brands = [FieldError(field="brand_id", message="none" if b is None else str(b)) for b in exc.brands]
        return error_response(409, "ambiguous_video_id", str(exc), field="brand_id", details=brands)

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, str(exc), field=exc.field)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        phrase = HTTPStatus(exc.status_code).phrase if exc.status_code in HTTPStatus._value2member_map_ else "error"
        code = phrase.lower().replace(" ", "_").replace("-", "_")
        return error_response(exc.status_code, code, str(exc.detail or phrase), headers=exc.headers)

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error; see the application log")

    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(ValidationError, request_invalid)
    app.add_exception_handler(AnalysisFormatError, analysis_invalid)
    app.add_exception_handler(UploadRejected, upload_rejected)
    app.add_exception_handler(AmbiguousVideoIdError, ambiguous_video)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    for exc_type, status, code in _STATUS:

        async def mapped(_: Request, exc: Exception, status: int = status, code: str = code) -> JSONResponse:
            return error_response(status, code, str(exc) or code)

        app.add_exception_handler(exc_type, mapped)
    app.add_exception_handler(Exception, unexpected)
