"""Form bodies whose text fields must be UTF-8: a byte that is not is an error, never mojibake.

Starlette's parsers decode a text part that is not valid in the declared
charset as Latin-1 instead (``\\xc3\\x28`` became the video id ``vid-Ã(``), and
its urlencoded parser replaces bad percent-escapes silently. Both forms are
parsed here instead, strictly; the body was already bounded by
:mod:`functions.api.limits`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import unquote_to_bytes

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from functions.api.errors import ApiError


def _not_utf8(field: str) -> ApiError:
    return ApiError(422, "invalid_encoding", "is not valid UTF-8 text", field=field)


class _StrictMultiPartParser(MultiPartParser):
    """Starlette's multipart parser, remembering which text parts were not UTF-8."""

    def __init__(self, headers: Headers, stream: AsyncGenerator[bytes, None], **limits: int) -> None:
        super().__init__(headers, stream, **limits)
        self.undecodable: list[str] = []

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                bytes(part.data).decode("utf-8")
            except UnicodeDecodeError:
                self.undecodable.append(part.field_name)
        super().on_part_end()


async def parse_multipart(
    headers: Headers, stream: AsyncGenerator[bytes, None], *, max_files: int, max_fields: int, max_part_size: int
) -> FormData:
    """The form, or ApiError 422 naming the first text field that is not UTF-8 (or the parser's
    complaint: too many fields/files, a part over ``max_part_size``)."""
    parser = _StrictMultiPartParser(
        headers, stream, max_files=max_files, max_fields=max_fields, max_part_size=max_part_size
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ApiError(422, "invalid_form", exc.message, field="body") from None
    if parser.undecodable:
        await form.close()
        raise _not_utf8(parser.undecodable[0])
    return form


def parse_urlencoded(body: bytes, *, max_fields: int) -> FormData:
    """An ``application/x-www-form-urlencoded`` body, each name and value strictly UTF-8."""
    items: list[tuple[str, str | UploadFile]] = []
    for pair in body.split(b"&"):
        if not pair:
            continue
        if len(items) >= max_fields:
            raise ApiError(422, "invalid_form", f"more than {max_fields} fields", field="body")
        raw_name, _, raw_value = pair.partition(b"=")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8("body") from None
        try:
            value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            raise _not_utf8(name) from None
        items.append((name, value))
    return FormData(items)
