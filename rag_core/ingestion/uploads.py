"""Validation of what callers submit, done completely before anything is stored.

``POST /external/analysis/store`` writes blobs, a job record and a queue
message; if any input is wrong none of these may exist afterwards. So every
check that can fail on the caller's input lives here and runs first: the
video URL (https, optionally an allow-listed host; also inside a JSON record),
the form fields, the analysis JSON (with field paths), the sales image (size,
then format by magic bytes, not by the declared content type) and blob names
(the screen-recording reference, and the names the blob triggers are given).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from rag_core.analysis.record import (
    AnalysisFormatError,
    AnalysisRecord,
    FieldProblem,
    JsonDepthError,
    StreamDate,
    VideoId,
    load_json,
    parse_analysis,
)
from rag_core.sales.reader import ImageFormatError, sniff_image

RECORDINGS_PREFIX = "screen-recordings/"
SALES_PREFIX = "sales/"


class UploadRejected(ValueError):
    """An uploaded file is refused; ``status`` is the HTTP status that says why (413, 415, 422)."""

    def __init__(self, field: str, message: str, *, status: int, code: str) -> None:
        super().__init__(message)
        self.field = field
        self.status = status
        self.code = code


def check_video_url(url: str, allowed_hosts: list[str]) -> str:
    """``url`` if it is an https URL with a host (on the allow-list, when one is configured)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "https":
        raise ValueError("must be an https:// URL")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("has no host")
    allowed = [h.lower().lstrip(".") for h in allowed_hosts]
    if allowed and not any(host == h or host.endswith("." + h) for h in allowed):
        raise ValueError(f"host {host!r} is not allowed (VIDEO_URL_ALLOWED_HOSTS)")
    return url.strip()


def check_blob_name(name: str, *, prefix: str = "") -> str:
    """``name`` if it is a plain blob name under ``prefix``; ValueError otherwise.

    Blob names travel inside request URLs, where ``.`` and ``..`` segments get
    resolved on the way (Azurite does; a shared-key request then fails its
    signature, a bearer-token one, as deployed with managed identity, has none to
    fail): ``sales/../jobs/<id>/sales.png`` would read another job's input and
    ``../uploads/x`` written to the rejected container would land in uploads. So
    names with empty, ``.`` or ``..`` segments (which includes absolute paths), a
    backslash (a separator to some tools), percent-escapes (they decode to
    another name on the way) or control characters are refused, not cleaned.
    """
    if not name.startswith(prefix) or len(name) <= len(prefix):
        raise ValueError(f"must name a blob under {prefix} in the uploads container" if prefix else "is empty")
    if (
        len(name) > 1024
        or "\\" in name
        or unquote(name) != name
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
        or any(part in ("", ".", "..") for part in name.split("/"))
    ):
        raise ValueError("has a path trick (a '', '.' or '..' segment, a backslash, a %-escape or a control character)")
    return name


def upload_brand(metadata: Mapping[str, str] | None) -> int | None:
    """The brand (tenant) an uploaded blob is marked with (its ``brand_id`` metadata), if any."""
    brand = (metadata or {}).get("brand_id")
    return int(brand) if brand and brand.isdigit() else None


def check_analysis_video_url(analysis: Mapping[str, Any], allowed_hosts: list[str]) -> None:
    """Hold a JSON-submitted record's ``video_url`` to the rule of the form field.

    The app never fetches it, but whatever reads stored records later might; the
    allow-list must not be bypassed by sending the record as JSON instead of a form.
    """
    url = analysis.get("video_url")
    if not isinstance(url, str) or not url:
        return
    try:
        check_video_url(url, allowed_hosts)
    except ValueError as exc:
        raise AnalysisFormatError([FieldProblem(field="video_url", message=str(exc))]) from None


class StoreForm(BaseModel):
    """The form fields of a multipart store request (files are checked separately).

    Validate with ``context={"allowed_hosts": [...]}`` to apply the host allow-list.
    """

    video_url: str = Field(max_length=2048)
    liver_id: str = Field(min_length=1, max_length=200)
    liver_name: str | None = Field(None, max_length=200)
    platform: str | None = Field(None, min_length=1, max_length=50)
    stream_date: StreamDate = None
    video_id: VideoId | None = None
    screen_recording: str | None = Field(None, description="Blob name under screen-recordings/ in uploads")

    @field_validator("video_url")
    @classmethod
    def _https(cls, value: str, info: ValidationInfo) -> str:
        return check_video_url(value, (info.context or {}).get("allowed_hosts", []))

    @field_validator("screen_recording")
    @classmethod
    def _recording(cls, value: str | None) -> str | None:
        return None if value is None else check_blob_name(value, prefix=RECORDINGS_PREFIX)


def check_image(data: bytes, *, max_bytes: int, field: str) -> str:
    """The image's format ('png', 'jpeg', 'webp'); UploadRejected when too big or not an image."""
    if len(data) > max_bytes:
        raise UploadRejected(
            field, f"{len(data)} bytes, more than the {max_bytes} allowed", status=413, code="too_large"
        )
    try:
        return sniff_image(data)
    except ImageFormatError as exc:
        raise UploadRejected(field, str(exc), status=415, code="unsupported_media_type") from None


def _prefixed(problems: list[FieldProblem], prefix: str) -> AnalysisFormatError:
    return AnalysisFormatError(
        [FieldProblem(field=prefix if p.field == "$" else f"{prefix}.{p.field}", message=p.message) for p in problems]
    )


def analysis_from_form(form: StoreForm, analysis_json: str, *, max_depth: int) -> tuple[dict[str, Any], AnalysisRecord]:
    """Parse the multipart ``analysis`` field with the form's fields laid over it (the form wins);
    returns the JSON object to store and its parsed record.

    Raises AnalysisFormatError with field paths under ``analysis.`` (or ``video_id``
    when the form names another video than the analysis).
    """
    try:
        data: Any = load_json(analysis_json, max_depth=max_depth)
    except JsonDepthError as exc:
        raise AnalysisFormatError([FieldProblem(field="analysis", message=str(exc))]) from None
    except ValueError as exc:
        raise AnalysisFormatError([FieldProblem(field="analysis", message=f"not valid JSON: {exc}")]) from None
    if not isinstance(data, dict):
        raise AnalysisFormatError([FieldProblem(field="analysis", message="must be a JSON object")])
    own_id = data.get("video_id", data.get("id"))
    if form.video_id is not None and own_id is not None and str(own_id) != form.video_id:
        raise AnalysisFormatError([FieldProblem(field="video_id", message="differs from analysis.video_id")])
    merged = {**data, **form.model_dump(mode="json", exclude={"screen_recording"}, exclude_none=True)}
    try:
        return merged, parse_analysis(merged)
    except AnalysisFormatError as exc:
        raise _prefixed(exc.problems, "analysis") from None
