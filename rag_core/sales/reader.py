"""Pattern A: sales data from a dashboard screenshot or a partner JSON record.

The two entry points return the same :class:`SalesExtraction` (``Sales``,
``SetProduct`` list, per-field value/confidence/raw text, warnings), so the
caller stores a screenshot's outcome and a partner record's the same way:

* :func:`extract_sales_from_image` takes PNG/JPEG/WebP bytes, checks them
  (magic bytes, truncation, pixel count) before any decoder runs, and reads
  them with the configured provider: ``local`` (tesseract, offline) or
  ``azure`` (a gpt-4o deployment with a strict JSON schema);
* :func:`sales_from_partner_json` maps the partner API's record, nested
  (``{"sales_summary": {...}, "products": [...]}``) or flat (``{"gmv": ...}``),
  legacy key names included.

Inputs that cannot be read raise :class:`InvalidInputError` subclasses (a
client error); a misbehaving vision model raises :class:`VisionResponseError`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import httpx
from PIL import Image, ImageOps
from pydantic import ValidationError

from rag_core.base.settings import Settings
from rag_core.ocr.tessdata import OcrUnavailableError
from rag_core.sales.azure_vision import AzureVisionReader
from rag_core.sales.fields import (
    PRODUCT_FIELDS,
    SALES_FIELDS,
    FieldReading,
    ImageFormatError,
    InvalidInputError,
    PartnerJsonError,
    ProductReading,
    Reading,
    SalesExtraction,
    SalesExtractionError,
    VisionRefusalError,
    VisionResponseError,
    build_extraction,
)
from rag_core.sales.local_ocr import LocalOcrReader
from rag_core.sales.screenshot_reader import ImageKind, ScreenshotReader

__all__ = [
    "FieldReading",
    "ImageFormatError",
    "InvalidInputError",
    "OcrUnavailableError",
    "PartnerJsonError",
    "SalesExtraction",
    "SalesExtractionError",
    "VisionRefusalError",
    "VisionResponseError",
    "extract_sales_from_image",
    "load_image",
    "sales_from_partner_json",
    "sniff_image",
]

MAX_IMAGE_PIXELS = 40_000_000  # a long scrolling phone capture is ~15 MP; more is a decompression bomb
_PNG_END = b"IEND\xaeB`\x82"
_PARTNER_ALIASES = {  # partner API names -> Sales / SetProduct names
    "total_orders": "orders",
    "product_sales_count": "items_sold",
    "live_ctr": "ctr",
    "avg_gpm": "gpm",
    "quantity_sold": "sold",
    "product_name": "name",
    "revenue": "set_revenue",
}
_SUMMARY_KEYS = ("sales_summary", "sales", "sales_data")
_PRODUCT_KEYS = ("products", "set_products")
_PASSED_THROUGH = {"currency", "traffic_sources"}


def sniff_image(data: bytes) -> ImageKind:
    """The image format by magic bytes; ImageFormatError for anything else or a cut-off file."""
    if not data:
        raise ImageFormatError("empty upload: 0 bytes")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        if data.rfind(_PNG_END) == -1:
            raise ImageFormatError("truncated PNG: no IEND chunk at the end")
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        if data.rfind(b"\xff\xd9") < 3:
            raise ImageFormatError("truncated JPEG: no end-of-image marker")
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        if int.from_bytes(data[4:8], "little") + 8 > len(data):
            raise ImageFormatError("truncated WebP: shorter than its RIFF header says")
        return "webp"
    raise ImageFormatError(f"not a PNG, JPEG or WebP image (starts with {data[:8]!r})")


def load_image(data: bytes, *, max_bytes: int | None = None) -> tuple[Image.Image, ImageKind]:
    """Decode checked bytes with only the sniffed decoder; the pixel count is checked from the
    header, before any pixel is decoded (Pillow's own bomb limit is 89 MP and only warns)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ImageFormatError(f"image is {len(data)} bytes, more than the {max_bytes} allowed")
    kind = sniff_image(data)
    try:
        image = Image.open(io.BytesIO(data), formats=[kind.upper()])  # reads the header only
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageFormatError(f"cannot read the {kind.upper()} header: {exc}") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageFormatError(f"image is {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS} allowed")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageFormatError(f"cannot decode the {kind.upper()} image: {exc}") from None
    return ImageOps.exif_transpose(image), kind


def build_screenshot_reader(settings: Settings, *, http_client: httpx.Client | None = None) -> ScreenshotReader:
    """The reader ``settings.sales_ocr_provider`` names. ``http_client`` reaches the openai
    client (``azure`` only): a proxy, or a recorded transport in tests."""
    if settings.sales_ocr_provider == "azure":
        return AzureVisionReader(settings, http_client=http_client)
    return LocalOcrReader(languages=settings.ocr_languages, tessdata=settings.tessdata_dir)


def extract_sales_from_image(
    data: bytes, settings: Settings, *, http_client: httpx.Client | None = None
) -> SalesExtraction:
    """Read a dashboard screenshot with ``settings.sales_ocr_provider``.

    ``http_client`` is handed to the openai client (``azure`` only): a proxy,
    or a recorded transport in tests. Raises ImageFormatError for bytes that
    are not a sound PNG/JPEG/WebP, OcrUnavailableError when tesseract is
    missing, VisionResponseError when the vision model does not answer in schema.
    """
    image, kind = load_image(data, max_bytes=settings.max_upload_bytes)
    reader = build_screenshot_reader(settings, http_client=http_client)
    seen = reader.read(data, image, kind)
    return build_extraction(
        seen.readings,
        seen.products,
        provider=reader.provider,
        min_confidence=settings.ocr_min_confidence,
        strict_text=True,
        warnings=seen.notes,
        sales_extra=seen.sales_extra or None,
    )


def _canonical(record: Mapping[str, Any], known: set[str], where: str, notes: list[str]) -> dict[str, Any]:
    """``record`` under our field names: partner aliases renamed (the canonical name wins when
    both are given), unknown keys dropped with a note."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = _PARTNER_ALIASES.get(key, key)
        if name not in known:
            notes.append(f"{where}{key}: not a known field; ignored")
        elif name == key or record.get(name) is None:
            out[name] = value
        elif record[name] != value:
            notes.append(f"{where}{key}: {value!r} differs from {name} {record[name]!r}; {name} kept")
    return out


def _product(index: int, row: object, notes: list[str]) -> ProductReading | None:
    if not isinstance(row, Mapping):
        notes.append(f"products.{index}: not an object; ignored")
        return None
    fields = _canonical(row, {*PRODUCT_FIELDS, "name"}, f"products.{index}.", notes)
    name = fields.pop("name", None)
    numbers = {k: Reading(v, 1.0) for k, v in fields.items() if k in PRODUCT_FIELDS and v is not None}
    return ProductReading(name=Reading(name, 1.0) if name is not None else None, numbers=numbers)


def sales_from_partner_json(obj: object) -> SalesExtraction:
    """Map one partner record (a dict, or JSON text/bytes) to a SalesExtraction.

    Every value the partner sends has confidence 1; a value that is not a
    number of its kind, negative or absurd is left empty with a warning (the
    rest of the record is kept). Raises PartnerJsonError when the record is
    not a JSON object or has no sales field or product at all.
    """
    if isinstance(obj, bytes | str):
        try:
            obj = json.loads(obj)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PartnerJsonError(f"not JSON: {exc}") from None
    if not isinstance(obj, Mapping):
        raise PartnerJsonError(f"a sales record must be a JSON object, not {type(obj).__name__}")
    notes: list[str] = []
    nested = next((obj[k] for k in _SUMMARY_KEYS if isinstance(obj.get(k), Mapping)), None)
    summary: Mapping[str, Any] = nested if nested is not None else obj
    rows: object = next((obj[k] for k in _PRODUCT_KEYS if obj.get(k) is not None), [])
    if not isinstance(rows, list):
        raise PartnerJsonError("products must be a list")
    skip = set(_SUMMARY_KEYS) | set(_PRODUCT_KEYS) if nested is None else set()
    summary = {k: v for k, v in summary.items() if k not in skip}
    fields = _canonical(summary, {*SALES_FIELDS, *_PASSED_THROUGH}, "", notes)
    extra = {k: fields.pop(k) for k in _PASSED_THROUGH if fields.get(k) is not None}
    readings = {k: Reading(v, 1.0) for k, v in fields.items() if v is not None}
    products = [p for i, row in enumerate(rows) if (p := _product(i, row, notes)) is not None]
    if not readings and not products:
        raise PartnerJsonError("no sales field (gmv, orders, viewers, ...) and no products in the record")
    try:
        return build_extraction(
            readings,
            products,
            provider="partner_json",
            min_confidence=0.0,  # the partner's numbers are not readings: nothing to doubt
            strict_text=False,
            warnings=notes,
            sales_extra=extra,
        )
    except ValidationError as exc:  # currency / traffic_sources, which are passed through as given
        raise PartnerJsonError(f"invalid {', '.join(sorted(extra))}: {exc}") from None
