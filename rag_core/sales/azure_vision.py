"""Read a sales dashboard screenshot with an Azure OpenAI vision deployment (gpt-4o).

The model only transcribes: for each metric it returns the text exactly as the
screen shows it (``¥123.4万``, ``3分20秒``) and how sure it is, under a strict
JSON schema, so the answer always has one shape. The numbers are then parsed by
our own normaliser like the OCR's, never by the model. Rate limits and 5xx
are retried by the openai client (``VISION_MAX_RETRIES``, honouring
Retry-After); a refusal, a cut-off or a malformed answer raises
:class:`VisionResponseError` instead of producing empty sales.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image
from pydantic import BaseModel, ValidationError

from rag_core.base.azure_openai import azure_openai_client
from rag_core.base.settings import Settings
from rag_core.sales.fields import (
    PRODUCT_FIELDS,
    SALES_FIELDS,
    ProductReading,
    Provider,
    Reading,
    VisionRefusalError,
    VisionResponseError,
)
from rag_core.sales.lexicon import OTHER, terms_by_field
from rag_core.sales.screenshot_reader import ImageKind, ScreenshotReading

VISION_MAX_RETRIES = 3  # 429/5xx/timeouts, with the client's backoff and Retry-After
VISION_TIMEOUT_SEC = 60.0
PRODUCT_READ_FIELDS = ("price", "original_price", "sold", "set_revenue")
MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_INSTRUCTIONS = """You transcribe TikTok Shop / TikTok LIVE analytics dashboard screenshots
(Seller Center, LIVE Dashboard, LIVE Diagnosis, Kalodata, FastMoss, EchoTik; Japanese, English or Chinese).
For every metric in the schema, copy the value text exactly as displayed next to or under its label,
with its currency mark, separators, 万/億/K/M abbreviations and units (例: "¥1,234,567", "12.3万", "3,200人",
"12.5K", "4.99%", "1分23秒").
A label names a metric when it contains one of the metric's terms below, with or without qualifiers
around it (総, 合計, 累計, LIVE, Total, 数, (円), (%)). When a label fits several metrics, the longest
term wins: 最大同時視聴者数 / Peak viewers is peak_viewers, not viewers. These are NOT any metric of the
schema, never copy their values: {other}.
Ignore comparison figures such as "前回比 +12.3%". If a metric is not shown, give raw_text null.
Never compute, convert or guess a value. confidence is 0-1: how sure you are the text is exactly right.
List the products of a product table (name, price, sold units, revenue) in screen order, or [] if none.
Metric terms:
{terms}"""


def system_prompt() -> str:
    """The instructions, with every field's terms from the label lexicon (as the local reader matches)."""
    terms = terms_by_field()
    other = " / ".join(terms.pop(OTHER))
    lines = "\n".join(f"- {field}: {' / '.join(words)}" for field, words in terms.items())
    return _INSTRUCTIONS.format(other=other, terms=lines)


def _reading_schema(description: str | None = None) -> dict[str, Any]:
    return {
        **({"description": description} if description else {}),
        "type": "object",
        "properties": {"raw_text": {"type": ["string", "null"]}, "confidence": {"type": "number"}},
        "required": ["raw_text", "confidence"],
        "additionalProperties": False,
    }


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def response_schema() -> dict[str, Any]:
    """The strict JSON schema of the answer: every metric and product cell as {raw_text, confidence}."""
    terms = terms_by_field()
    metrics = _object({name: _reading_schema("labelled " + " / ".join(terms[name])) for name in SALES_FIELDS})
    product = _object({"name": _reading_schema(), **{f: _reading_schema() for f in PRODUCT_READ_FIELDS}})
    return _object(
        {"metrics": metrics, "products": {"type": "array", "items": product}, "currency": {"type": ["string", "null"]}}
    )


class _Cell(BaseModel):
    raw_text: str | None
    confidence: float


class _Answer(BaseModel):
    metrics: dict[str, _Cell]
    products: list[dict[str, _Cell]]
    currency: str | None


def _client(settings: Settings, http_client: httpx.Client | None) -> Any:
    return azure_openai_client(
        settings,
        api_version=settings.vision_api_version,
        max_retries=VISION_MAX_RETRIES,
        timeout=VISION_TIMEOUT_SEC,
        http_client=http_client,
    )


def request_messages(data: bytes, image_format: str, detail: str) -> list[dict[str, Any]]:
    """The chat messages: instructions, and the image as a base64 data URL."""
    url = f"data:{MIME[image_format]};base64,{base64.b64encode(data).decode('ascii')}"
    return [
        {"role": "system", "content": system_prompt()},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "この配信ダッシュボードの数値を書き写してください。"},
                {"type": "image_url", "image_url": {"url": url, "detail": detail}},
            ],
        },
    ]


def parse_answer(completion: Any) -> tuple[dict[str, Reading], list[ProductReading], str | None]:
    """The readings in a chat completion, or VisionResponseError / VisionRefusalError."""
    if not completion.choices:
        raise VisionResponseError("the vision model returned no choices")
    choice = completion.choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise VisionRefusalError(message.refusal)
    if choice.finish_reason != "stop":
        raise VisionResponseError(f"the vision answer was cut off (finish_reason={choice.finish_reason!r})")
    try:
        answer = _Answer.model_validate(json.loads(message.content or ""))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise VisionResponseError(f"the vision answer is not the JSON the schema asks for: {exc}") from None
    readings = {
        name: Reading(cell.raw_text, cell.confidence)
        for name, cell in answer.metrics.items()
        if name in SALES_FIELDS and cell.raw_text not in (None, "")
    }
    products = []
    for row in answer.products:
        name = row.get("name")
        numbers = {
            field: Reading(cell.raw_text, cell.confidence)
            for field, cell in row.items()
            if field in PRODUCT_FIELDS and cell.raw_text not in (None, "")
        }
        products.append(ProductReading(name=Reading(name.raw_text, name.confidence) if name else None, numbers=numbers))
    return readings, products, answer.currency


def read_screenshot(
    data: bytes, image_format: str, settings: Settings, *, http_client: httpx.Client | None = None
) -> tuple[dict[str, Reading], list[ProductReading], str | None]:
    """Ask the deployment ``settings.vision_model`` to transcribe the screenshot."""
    completion = _client(settings, http_client).chat.completions.create(
        model=settings.vision_model,
        messages=request_messages(data, image_format, settings.vision_detail),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "sales_dashboard", "strict": True, "schema": response_schema()},
        },
        temperature=0,
    )
    return parse_answer(completion)


@dataclass
class AzureVisionReader:
    """The vision-model reader: a gpt-4o deployment on Azure OpenAI with a strict JSON schema."""

    settings: Settings
    http_client: httpx.Client | None = None
    provider: Provider = "azure"

    def read(self, data: bytes, image: Image.Image, kind: ImageKind) -> ScreenshotReading:
        readings, products, currency = read_screenshot(data, kind, self.settings, http_client=self.http_client)
        code = _currency(currency)
        return ScreenshotReading(readings, products, sales_extra={"currency": code} if code else {})


def _currency(text: str | None) -> str | None:
    """An ISO 4217 code from the model's currency answer (a code or a symbol), else None."""
    if not text:
        return None
    symbol = {"¥": "JPY", "￥": "JPY", "円": "JPY", "$": "USD", "€": "EUR"}.get(text.strip())
    code = symbol or text.strip().upper()
    return code if re.fullmatch(r"[A-Z]{3}", code) else None
