"""Pattern A sales ingestion: screenshots (local tesseract, Azure vision contract) and partner JSON.

The local extractor runs for real on the screenshots shipped in
tests/data/sales_screenshots (made by scripts/generate_sales_screenshots.py),
each read once per module. The Azure path runs the real openai client against
an ``httpx.MockTransport`` that records the request and answers like Azure.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from rag_core.base.settings import Settings, load_settings
from rag_core.ocr.tessdata import find_tessdata
from rag_core.sales import local_ocr as sales_ocr_local
from rag_core.sales.azure_vision import VISION_MAX_RETRIES, response_schema
from rag_core.sales.fields import SALES_FIELDS, ProductReading, Reading, build_extraction
from rag_core.sales.reader import (
    MAX_IMAGE_PIXELS,
    ImageFormatError,
    InvalidInputError,
    PartnerJsonError,
    SalesExtraction,
    VisionRefusalError,
    VisionResponseError,
    extract_sales_from_image,
    load_image,
    sales_from_partner_json,
    sniff_image,
)

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "data" / "sales_screenshots"
ACCURACY_BAR = 0.98
TESSDATA = find_tessdata(None, "jpn+eng")


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


benchmark = _load(ROOT / "benchmarks" / "ocr_accuracy.py", "ocr_accuracy")


def _local_settings(**overrides: Any) -> Settings:
    return load_settings(sales_ocr_provider="local", azure_openai_endpoint=None, **overrides)


@pytest.fixture(scope="module")
def shots() -> list[tuple[Path, dict[str, Any]]]:
    return benchmark.screenshots(SHOTS)


@pytest.fixture(scope="module")
def extractions(shots: list[tuple[Path, dict[str, Any]]]) -> dict[str, SalesExtraction]:
    """Every shipped screenshot read once with the local extractor."""
    settings = _local_settings()
    return {path.name: extract_sales_from_image(path.read_bytes(), settings) for path, _ in shots}


# --- the shipped screenshots -------------------------------------------------------------


def test_shipped_set_covers_layouts_themes_and_formats(shots: list[tuple[Path, dict[str, Any]]]) -> None:
    assert 12 <= len(shots) <= 20
    assert {t["layout"] for _, t in shots} >= {"cards", "list", "desktop"}
    assert {t["theme"] for _, t in shots} == {"light", "dark"}
    assert {sniff_image(p.read_bytes()) for p, _ in shots} == {"png", "jpeg", "webp"}
    assert {t["variant"] for _, t in shots} >= {"png", "small"}
    assert sum(p.stat().st_size for p, _ in shots) < 3_000_000


def test_local_accuracy_meets_the_bar(
    shots: list[tuple[Path, dict[str, Any]]], extractions: dict[str, SalesExtraction]
) -> None:
    score = benchmark.Score()
    for path, truth in shots:
        benchmark.score_one(score, path.name, extractions[path.name], truth)
    assert score.overall >= ACCURACY_BAR, "\n".join(score.misses)
    assert score.wrong_values == 0, "\n".join(score.misses)  # a miss must be an empty field, never a wrong one


def test_every_screenshot_is_read_not_just_the_average(
    shots: list[tuple[Path, dict[str, Any]]], extractions: dict[str, SalesExtraction]
) -> None:
    for path, truth in shots:
        score = benchmark.Score()
        benchmark.score_one(score, path.name, extractions[path.name], truth)
        assert score.overall >= 0.9, (path.name, score.misses)
        assert len(extractions[path.name].set_products) == len(truth["set_products"]), path.name


def test_local_reading_carries_raw_text_confidence_and_provider(
    shots: list[tuple[Path, dict[str, Any]]], extractions: dict[str, SalesExtraction]
) -> None:
    path, truth = shots[0]
    extraction = extractions[path.name]
    assert extraction.provider == "local"
    gmv = extraction.fields["gmv"]
    assert gmv.value == truth["sales"]["gmv"]
    assert gmv.raw_text is not None and any(ch.isdigit() for ch in gmv.raw_text)
    assert 0.6 <= gmv.confidence <= 1
    assert extraction.fields["set_products.0.price"].value == truth["set_products"][0]["price"]
    assert extraction.set_products[0].set_revenue == truth["set_products"][0]["set_revenue"]


def test_generator_reproduces_the_shipped_truth(tmp_path: Path) -> None:
    generator = _load(ROOT / "scripts" / "generate_sales_screenshots.py", "generate_sales_screenshots")
    generator.generate(tmp_path, 20260113)
    shipped = sorted(p.name for p in SHOTS.glob("*.truth.json"))
    assert sorted(p.name for p in tmp_path.glob("*.truth.json")) == shipped
    for name in shipped:
        assert (tmp_path / name).read_text("utf-8") == (SHOTS / name).read_text("utf-8"), name


def test_a_degraded_screenshot_gives_empty_fields_never_wrong_ones(shots: list[tuple[Path, dict[str, Any]]]) -> None:
    path, truth = next((p, t) for p, t in shots if t["layout"] == "cards" and t["variant"] == "png")
    original = Image.open(path).convert("RGB")
    settings = _local_settings()
    for degraded in (
        original.filter(ImageFilter.GaussianBlur(2)),
        original.resize((original.width * 2 // 5, original.height * 2 // 5)),
    ):
        buffer = io.BytesIO()
        degraded.save(buffer, "JPEG", quality=50)
        sales = extract_sales_from_image(buffer.getvalue(), settings).sales.model_dump()
        for name, value in truth["sales"].items():
            assert sales[name] in (None, value), (name, sales[name], value)


# --- confidence threshold ----------------------------------------------------------------


def test_low_confidence_readings_are_null_with_a_warning(shots: list[tuple[Path, dict[str, Any]]]) -> None:
    """The real readings of one screenshot under a threshold no reading reaches."""
    path, _ = shots[0]
    image, _ = load_image(path.read_bytes())
    readings, products, notes = sales_ocr_local.read_screenshot(image, languages="jpn+eng", tessdata=None)
    assert readings
    extraction = build_extraction(
        readings, products, provider="local", min_confidence=1.0, strict_text=True, warnings=notes
    )
    assert all(v is None for k, v in extraction.sales.model_dump().items() if k in SALES_FIELDS)
    for name in readings:
        field = extraction.fields[name]
        assert field.value is None and field.raw_text and field.confidence < 1.0
        assert any(w.startswith(f"{name}: read ") and "left empty" in w for w in extraction.warnings)


def test_threshold_applies_per_field() -> None:
    extraction = build_extraction(
        {"gmv": Reading("¥1,234,567", 0.95), "orders": Reading("120", 0.41)},
        [],
        provider="local",
        min_confidence=0.6,
        strict_text=True,
    )
    assert extraction.sales.gmv == 1_234_567
    assert extraction.sales.orders is None
    assert extraction.fields["orders"].model_dump() == {
        "value": None,
        "confidence": 0.41,
        "raw_text": "120",
        "uncertain": False,
    }
    assert extraction.warnings == ["orders: read '120' with confidence 0.41 < 0.60; left empty"]


# --- validation --------------------------------------------------------------------------


def _sure(**texts: str) -> dict[str, Reading]:
    return {name: Reading(text, 0.9) for name, text in texts.items()}


def test_cvr_is_checked_against_orders_and_viewers() -> None:
    ok = build_extraction(
        _sure(orders="109", viewers="8,955", cvr="1.22%"), [], provider="local", min_confidence=0.6, strict_text=True
    )
    assert ok.warnings == [] and ok.fields["cvr"].confidence == 0.9
    bad = build_extraction(
        _sure(orders="109", viewers="8,955", cvr="7.22%"), [], provider="local", min_confidence=0.6, strict_text=True
    )
    assert bad.sales.cvr == 7.22  # kept: every read agreed, so the dashboard may define CVR otherwise
    assert bad.warnings == ["cvr: 7.22 does not match orders / viewers × 100 = 1.217; kept, every value read alike"]
    assert {bad.fields[k].confidence for k in ("cvr", "orders", "viewers")} == {0.9}


def test_a_failed_cross_check_leaves_the_weakly_read_values_uncertain_never_as_fact() -> None:
    readings = {**_sure(orders="109", viewers="8,955"), "cvr": Reading("7.22%", 0.7)}  # two reads of cvr agree
    mixed = build_extraction(readings, [], provider="local", min_confidence=0.6, strict_text=True)
    assert mixed.sales.cvr is None and mixed.sales.orders == 109 and mixed.sales.viewers == 8955
    cvr = mixed.fields["cvr"]
    assert cvr.uncertain and cvr.value is None and cvr.raw_text == "7.22%" and cvr.confidence == pytest.approx(0.35)
    assert mixed.warnings == [
        "cvr: 7.22 does not match orders / viewers × 100 = 1.217; cvr doubted",
        "cvr: confidence 0.35 after the cross-check; left empty",
    ]
    weak = {name: Reading(text, 0.7) for name, text in (("orders", "109"), ("viewers", "8,955"), ("gpm", "9,999"))}
    both = build_extraction(
        {**weak, "gmv": Reading("¥1,000,000", 0.9), "cvr": Reading("7.22%", 0.7)},
        [], provider="local", min_confidence=0.6, strict_text=True,
    )  # fmt: skip
    # CVR's check takes all three weak values out; GPM's is then not made (no viewers), GMV stays.
    assert (both.sales.cvr, both.sales.orders, both.sales.viewers) == (None, None, None)
    assert both.sales.gmv == 1_000_000 and both.sales.gpm == 9999


def test_orders_above_items_sold_is_not_an_error() -> None:
    extraction = build_extraction(
        _sure(orders="120", items_sold="100"), [], provider="local", min_confidence=0.6, strict_text=True
    )
    assert extraction.sales.orders == 120 and extraction.warnings == []


@pytest.mark.parametrize(
    ("field", "text", "why"),
    [
        ("cvr", "150%", "out of the plausible range"),
        ("gmv", "¥1兆", "out of the plausible range"),
        ("gmv", "+23.6%", "not written like a money value"),  # a comparison under the value
        ("ctr", "4.5", "not written like a percent value"),
        ("avg_watch_time_sec", "25時間", "out of the plausible range"),
        ("orders", "11.85", "not a whole count"),
        ("likes", "abc", "is not a number value"),
    ],
)
def test_absurd_or_misread_values_are_refused(field: str, text: str, why: str) -> None:
    extraction = build_extraction(_sure(**{field: text}), [], provider="local", min_confidence=0.6, strict_text=True)
    assert getattr(extraction.sales, field) is None
    assert extraction.fields[field].raw_text == text
    assert any(why in w for w in extraction.warnings), extraction.warnings


def test_peak_above_viewers_warns() -> None:
    extraction = build_extraction(
        _sure(viewers="900", peak_viewers="1,200"), [], provider="local", min_confidence=0.6, strict_text=True
    )
    assert any("peak_viewers 1200 exceeds viewers 900" in w for w in extraction.warnings)


def test_product_arithmetic_decides_between_reads() -> None:
    row = ProductReading(
        name=Reading("美容液ファンデーション", 0.9),
        numbers={
            "price": Reading("¥2,980", 0.9),
            "sold": Reading("360", 0.7, alternatives=("160",)),  # two reads said 360, one 160
            "set_revenue": Reading("¥476,800", 0.9),
        },
    )
    extraction = build_extraction({}, [row], provider="local", min_confidence=0.6, strict_text=True)
    assert extraction.set_products[0].sold == 160
    assert any("'160' (another read) makes price × sold = set_revenue" in w for w in extraction.warnings)
    unsure = ProductReading(
        name=None,
        numbers={"price": Reading("¥5,020", 0.9), "sold": Reading("7", 0.49), "set_revenue": Reading("¥35,140", 0.9)},
    )
    confirmed = build_extraction({}, [unsure], provider="local", min_confidence=0.6, strict_text=True)
    assert confirmed.set_products[0].sold == 7  # an exact product confirms a low-confidence read


# --- bad image inputs --------------------------------------------------------------------


def _png(width: int = 4, height: int = 3) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, "PNG")
    return buffer.getvalue()


def _with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (CRC fixed): a decompression bomb's disguise."""
    body = b"IHDR" + struct.pack(">II", width, height) + png[24:29]
    return png[:8] + png[8:12] + body + struct.pack(">I", zlib.crc32(body)) + png[33:]


def test_sniff_by_magic_bytes(shots: list[tuple[Path, dict[str, Any]]]) -> None:
    kinds = {p.suffix: sniff_image(p.read_bytes()) for p, _ in shots}
    assert kinds == {".png": "png", ".jpg": "jpeg", ".webp": "webp"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "0 bytes"),
        (b"GMV 1234567\nviewers 8955\n", "not a PNG, JPEG or WebP"),
        (b"GIF89a\x01\x00\x01\x00", "not a PNG, JPEG or WebP"),
        (_png()[:40], "truncated PNG"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, "truncated JPEG"),
        (b"RIFF\xff\x00\x00\x00WEBPVP8 ", "truncated WebP"),
    ],
)
def test_sniff_refuses_non_images_and_cut_files(data: bytes, message: str) -> None:
    with pytest.raises(ImageFormatError, match=message):
        sniff_image(data)


def test_bad_images_raise_a_clear_error_through_the_entry_point(shots: list[tuple[Path, dict[str, Any]]]) -> None:
    settings = _local_settings()
    png = next(p for p, _ in shots if p.suffix == ".png").read_bytes()
    jpeg = next(p for p, _ in shots if p.suffix == ".jpg").read_bytes()
    corrupt = bytearray(png)
    corrupt[200:260] = bytes(60)  # inside the image data, IEND still in place
    broken_jpeg = jpeg[:4] + bytes(200) + jpeg[204:]  # JPEG magic and end marker, no readable header
    for data in (b"", b"just some text", png[: len(png) // 2], jpeg[:-100], bytes(corrupt), broken_jpeg):
        with pytest.raises(ImageFormatError):
            extract_sales_from_image(data, settings)
    assert issubclass(ImageFormatError, InvalidInputError) and issubclass(ImageFormatError, ValueError)


def test_decompression_bombs_are_refused_before_decoding() -> None:
    over_our_limit = _with_ihdr_size(_png(), 8_000, MAX_IMAGE_PIXELS // 8_000 + 1)
    with pytest.raises(ImageFormatError, match="pixels, more than"):
        load_image(over_our_limit)
    over_pillows_limit = _with_ihdr_size(_png(), 100_000, 100_000)
    with pytest.raises(ImageFormatError):
        load_image(over_pillows_limit)


def test_upload_size_limit() -> None:
    with pytest.raises(ImageFormatError, match="more than the 1024 allowed"):
        load_image(_png(200, 200) + bytes(2048), max_bytes=1024)


# --- partner JSON ------------------------------------------------------------------------


def test_partner_json_nested_with_legacy_names() -> None:
    record = {
        "sales_summary": {
            "gmv": "¥368,000",
            "total_orders": 109,
            "product_sales_count": "119",
            "viewers": "8,955人",
            "live_ctr": "4.99%",
            "cvr": 1.22,
            "avg_gpm": 41094,
            "avg_watch_time_sec": "0:52",
            "duration_minutes": "1時間25分",
            "likes": "7.8万",
            "currency": "JPY",
        },
        "products": [
            {"product_name": "ツヤ発色リップティント", "price": "1,580円", "quantity_sold": 17, "original_price": 1980},
            {"name": "9色アイシャドウパレット", "price": 2200, "sold": 25, "set_revenue": 55000},
        ],
    }
    extraction = sales_from_partner_json(record)
    sales = extraction.sales
    assert (sales.gmv, sales.orders, sales.items_sold, sales.viewers) == (368_000, 109, 119, 8_955)
    assert (sales.ctr, sales.cvr, sales.gpm, sales.likes) == (4.99, 1.22, 41_094, 78_000)
    assert (sales.avg_watch_time_sec, sales.duration_minutes, sales.currency) == (52, 85, "JPY")
    first, second = extraction.set_products
    assert (first.name, first.price, first.sold, first.set_revenue) == ("ツヤ発色リップティント", 1580, 17, 26_860)
    assert (second.name, second.set_revenue) == ("9色アイシャドウパレット", 55_000)
    assert extraction.provider == "partner_json"
    assert extraction.fields["orders"].model_dump(exclude={"uncertain"}) == {
        "value": 109,
        "confidence": 1.0,
        "raw_text": "109",
    }
    assert extraction.fields["set_products.0.sold"].raw_text == "17"
    assert extraction.warnings == []


def test_partner_json_flat_as_text() -> None:
    text = json.dumps({"gmv": 150000, "orders": 12, "viewers": 2400, "duration_minutes": 95, "video_id": "v1"})
    extraction = sales_from_partner_json(text.encode())
    assert (extraction.sales.gmv, extraction.sales.orders, extraction.sales.duration_minutes) == (150_000, 12, 95)
    assert extraction.set_products == []
    assert extraction.warnings == ["video_id: not a known field; ignored"]


def test_partner_json_bad_values_are_null_with_warnings() -> None:
    extraction = sales_from_partner_json(
        {"gmv": -5, "orders": "many", "cvr": 250, "viewers": 1000, "total_orders": 12, "traffic_sources": []}
    )
    assert extraction.sales.gmv is None and extraction.sales.orders is None and extraction.sales.cvr is None
    assert extraction.sales.viewers == 1000
    assert any(w.startswith("gmv: -5 is out of the plausible range") for w in extraction.warnings)
    assert any(w.startswith("orders: 'many' is not a number value") for w in extraction.warnings)
    assert any(w.startswith("cvr: 250 is out of the plausible range") for w in extraction.warnings)
    assert any(w.startswith("total_orders: 12 differs from orders") for w in extraction.warnings)


@pytest.mark.parametrize("record", [[1, 2], "not json {", 42, {}, {"video_id": "x"}, {"gmv": 1, "products": {}}])
def test_partner_json_without_sales_is_an_error(record: object) -> None:
    with pytest.raises(PartnerJsonError):
        sales_from_partner_json(record)


# --- Azure OpenAI vision (recorded contract) ---------------------------------------------

ENDPOINT = "https://lcj-aoai.openai.azure.com"


def _azure_settings() -> Settings:
    return load_settings(
        sales_ocr_provider="azure",
        azure_openai_endpoint=ENDPOINT,
        azure_openai_api_key="test-key",
        vision_model="gpt-4o-sales",
        vision_api_version="2024-10-21",
        vision_detail="high",
    )


def _answer(**metrics: tuple[str, float]) -> dict[str, Any]:
    cells: dict[str, dict[str, Any]] = {name: {"raw_text": None, "confidence": 0.0} for name in SALES_FIELDS}
    cells.update({name: {"raw_text": text, "confidence": c} for name, (text, c) in metrics.items()})
    product = {
        "name": {"raw_text": "ツヤ発色リップティント", "confidence": 0.95},
        "price": {"raw_text": "¥1,580", "confidence": 0.97},
        "original_price": {"raw_text": None, "confidence": 0.0},
        "sold": {"raw_text": "17", "confidence": 0.96},
        "set_revenue": {"raw_text": "¥26,860", "confidence": 0.96},
    }
    return {"metrics": cells, "products": [product], "currency": "JPY"}


def _completion(content: str | None, *, refusal: str | None = None, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
            }
        ],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
    }


Responder = Callable[[int], httpx.Response]


def _client(responder: Responder, seen: list[httpx.Request]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responder(len(seen))

    return httpx.Client(transport=httpx.MockTransport(handle))


def _ok(body: dict[str, Any]) -> Responder:
    return lambda _: httpx.Response(200, json=body)


def test_azure_request_contract_and_parsing() -> None:
    seen: list[httpx.Request] = []
    answer = _answer(gmv=("¥123.4万", 0.97), orders=("109", 0.95), viewers=("8,955人", 0.95), cvr=("1.22%", 0.9))
    image = _png(40, 30)
    extraction = extract_sales_from_image(
        image, _azure_settings(), http_client=_client(_ok(_completion(json.dumps(answer))), seen)
    )

    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/openai/deployments/gpt-4o-sales/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "test-key"
    body = json.loads(request.content)
    assert body["model"] == "gpt-4o-sales"
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"] == response_schema()
    image_part = body["messages"][-1]["content"][-1]
    assert image_part["type"] == "image_url"
    url = image_part["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.removeprefix("data:image/png;base64,")) == image
    assert image_part["image_url"]["detail"] == "high"

    assert extraction.provider == "azure"
    assert (extraction.sales.gmv, extraction.sales.orders, extraction.sales.viewers) == (1_234_000, 109, 8_955)
    assert extraction.fields["gmv"].model_dump(exclude={"uncertain"}) == {
        "value": 1_234_000,
        "confidence": 0.97,
        "raw_text": "¥123.4万",
    }
    assert extraction.sales.currency == "JPY"
    assert extraction.set_products[0].name == "ツヤ発色リップティント"
    assert extraction.set_products[0].set_revenue == 26_860
    assert extraction.warnings == []


def test_azure_schema_is_strict_everywhere() -> None:
    def check(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert sorted(node["required"]) == sorted(node["properties"])
            for child in node.values():
                check(child)

    schema = response_schema()
    check(schema)
    assert set(schema["properties"]["metrics"]["properties"]) == set(SALES_FIELDS)


def test_azure_low_confidence_and_misplaced_values_are_refused() -> None:
    answer = _answer(gmv=("+23.6%", 0.9), orders=("109", 0.3))
    extraction = extract_sales_from_image(
        _png(), _azure_settings(), http_client=_client(_ok(_completion(json.dumps(answer))), [])
    )
    assert extraction.sales.gmv is None and extraction.sales.orders is None
    assert any(w.startswith("orders: read '109' with confidence 0.30") for w in extraction.warnings)
    assert any(w.startswith("gmv: '+23.6%' is not written like a money value") for w in extraction.warnings)


@pytest.mark.parametrize(
    ("completion", "error", "message"),
    [
        (_completion(None, refusal="I can't help with that."), VisionRefusalError, "refused: I can't help"),
        (_completion('{"metrics": {"gmv": '), VisionResponseError, "not the JSON the schema asks for"),
        (_completion('{"metrics": "none"}'), VisionResponseError, "not the JSON the schema asks for"),
        (_completion('{"metrics": {}', finish="length"), VisionResponseError, "cut off"),
    ],
)
def test_azure_refusal_and_malformed_answers_raise(
    completion: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        extract_sales_from_image(_png(), _azure_settings(), http_client=_client(_ok(completion), []))


def test_azure_rate_limit_is_retried() -> None:
    seen: list[httpx.Request] = []
    answer = json.dumps(_answer(gmv=("¥1,234,567", 0.95)))

    def responder(call: int) -> httpx.Response:
        if call == 1:
            return httpx.Response(429, headers={"retry-after-ms": "10"}, json={"error": {"code": "429"}})
        return httpx.Response(200, json=_completion(answer))

    extraction = extract_sales_from_image(_png(), _azure_settings(), http_client=_client(responder, seen))
    assert len(seen) == 2
    assert extraction.sales.gmv == 1_234_567


def test_azure_server_errors_give_up_after_the_retries() -> None:
    seen: list[httpx.Request] = []

    def responder(_: int) -> httpx.Response:
        return httpx.Response(503, headers={"retry-after-ms": "5"}, json={"error": {"code": "503"}})

    with pytest.raises(openai.APIStatusError):
        extract_sales_from_image(_png(), _azure_settings(), http_client=_client(responder, seen))
    assert len(seen) == VISION_MAX_RETRIES + 1


# --- one number grammar in every reader ---------------------------------------------------

# (field, text as shown, value): every notation the grammar reads, as a dashboard shows it.
NOTATIONS = [
    ("orders", "1,234", 1_234),
    ("viewers", "1.2万", 12_000),
    ("gmv", "3億", 300_000_000),
    ("likes", "12.5K", 12_500),
    ("likes", "1.2M", 1_200_000),
    ("comments", "１，２３４", 1_234),
    ("gmv", "¥12,345", 12_345),
    ("gmv", "￥12,345", 12_345),
    ("gmv", "12,345円", 12_345),
    ("gmv", "¥123.4万", 1_234_000),
]
NOTATION_IDS = [text for _, text, _ in NOTATIONS]
LABEL_OF = {"orders": "注文数", "viewers": "視聴者数", "gmv": "GMV", "likes": "いいね数", "comments": "コメント数"}


NOTO = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
IPA_GOTHIC = "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf"  # a thin zero the jpn model reads as 9


def _dashboard(cells: list[tuple[str, str]], face_index: int = 0, face: str = NOTO) -> bytes:
    """A minimal card dashboard: each (label, value) as a card, label above value (Noto Sans CJK
    unless ``face`` says otherwise; ``face_index`` 0 is its Japanese face, 2 the Simplified Chinese
    one)."""
    bold = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc" if face == NOTO else face
    image = Image.new("RGB", (720, 60 + 130 * len(cells)), "white")
    draw = ImageDraw.Draw(image)
    for row, (label, value) in enumerate(cells):
        top = 30 + 130 * row
        draw.text((40, top), label, font=ImageFont.truetype(face, 26, index=face_index), fill="#6d6f78")
        draw.text((40, top + 44), value, font=ImageFont.truetype(bold, 44), fill="#161823")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(("field", "text", "value"), NOTATIONS, ids=NOTATION_IDS)
def test_each_notation_through_the_screenshot_reader(field: str, text: str, value: float) -> None:
    extraction = extract_sales_from_image(_dashboard([(LABEL_OF[field], text)]), _local_settings())
    assert getattr(extraction.sales, field) == value, extraction.fields


@pytest.mark.parametrize(("field", "text", "value"), NOTATIONS, ids=NOTATION_IDS)
def test_each_notation_through_partner_json(field: str, text: str, value: float) -> None:
    assert getattr(sales_from_partner_json({field: text}).sales, field) == value


@pytest.mark.parametrize(("field", "text", "value"), NOTATIONS, ids=NOTATION_IDS)
def test_each_notation_through_the_azure_reader(field: str, text: str, value: float) -> None:
    answer = _answer(**{field: (text, 0.95)})
    extraction = extract_sales_from_image(
        _png(), _azure_settings(), http_client=_client(_ok(_completion(json.dumps(answer))), [])
    )
    assert getattr(extraction.sales, field) == value


def test_a_field_without_a_label_stays_empty() -> None:
    """A number under a label the lexicon does not know is never given to a field by position."""
    extraction = extract_sales_from_image(_dashboard([("在庫数", "1,234"), ("注文数", "56")]), _local_settings())
    assert extraction.sales.orders == 56
    read = {k for k, v in extraction.sales.model_dump().items() if v not in (None, [], "JPY")}
    assert read == {"orders"}


def test_a_qualified_label_is_read() -> None:
    """The issue's misses: order and viewer counts under a label that qualifies the core term."""
    cells = [("総注文数(件)", "1,418"), ("Unique viewers", "60,321"), ("SKU注文数", "1,502")]
    sales = extract_sales_from_image(_dashboard(cells), _local_settings()).sales
    assert (sales.orders, sales.viewers) == (1_418, 60_321)  # and SKU orders are not orders


@pytest.mark.skipif(
    not (TESSDATA / f"{sales_ocr_local.CHINESE}.traineddata").is_file(), reason="tesseract-ocr-chi-sim not installed"
)
def test_chinese_labels_are_read() -> None:
    """Simplified Chinese labels, which the jpn model turns into junk ("WBA" for 观看人数)."""
    cells = [("成交金额", "¥12,345"), ("观看人数", "6,789"), ("成交订单数", "321"), ("点赞数", "4,567")]
    sales = extract_sales_from_image(_dashboard(cells, face_index=2), _local_settings()).sales
    assert (sales.gmv, sales.viewers, sales.orders, sales.likes) == (12_345, 6_789, 321, 4_567)


def test_a_thin_zero_is_read_by_the_latin_model_or_left_empty() -> None:
    """IPA Gothic's 0, which every jpn read takes for a 9 ("03:22" as 93:22, 5,602 s), in a clock,
    a count with a unit and a duration with CJK units: right, or uncertain - never wrong."""
    cells = [("平均視聴時間", "03:22"), ("新規フォロワー", "109人"), ("視聴者数", "50,904"), ("配信時間", "1時間40分")]
    sales = extract_sales_from_image(_dashboard(cells, face=IPA_GOTHIC), _local_settings()).sales
    assert (sales.avg_watch_time_sec, sales.viewers) == (202, 50_904)
    assert sales.new_followers in (109, None) and sales.duration_minutes in (100, None)


# --- reads that disagree ------------------------------------------------------------------


def test_reads_that_disagree_are_not_voted_into_confidence() -> None:
    """The issue's case: "4.4%" read right at full size, "44%" by three smaller re-reads."""
    votes = [sales_ocr_local.Vote(4.4, "4.4%", 0.85)] + [sales_ocr_local.Vote(44.0, "44%", 0.9)] * 3
    reading = sales_ocr_local.decide(votes)
    assert reading is not None and reading.disputed
    assert reading.confidence < 0.6 and set((reading.text, *reading.alternatives)) == {"4.4%", "44%"}
    agreeing = sales_ocr_local.decide([sales_ocr_local.Vote(4.4, "4.4%", 0.5)] * 3)
    assert agreeing is not None and not agreeing.disputed and agreeing.confidence == 0.9


@pytest.mark.parametrize(
    ("field", "text", "value"),
    [
        ("viewers", "126,3K", 126_300),  # the point of an abbreviated count read as a comma: not 1,263,000
        ("viewers", "1,2万", 12_000),
        ("gmv", "54,0429", 54_042),  # "54,042円" with 円 read as 9: an amount, the 9 its 円
        ("likes", "11.25", 112_000),  # "11.2万" with 万 read as 5: no count has two decimals
        ("gmv", "¥39.35", 393_000),  # ... nor a yen amount
        ("ctr", "4.35%", 4.35),  # a rate may
        ("avg_watch_time_sec", "1分34秘", 94),  # 秒 read as its look-alike 秘 (M+ Black)
        ("duration_minutes", "3時間190分", None),  # minutes after hours count to 59: a digit inserted
        ("avg_watch_time_sec", "03:72", None),  # ... and so do a clock's seconds
        ("avg_watch_time_sec", "2分49秒", 169),
        ("gmv", "¥54,0429", None),  # ... but after a ¥ no 円 is meant: no number is written so
        ("viewers", "54,0429", None),  # a count has no 円
        ("viewers", "3,17人", None),  # "3,017人" with a digit lost
        ("viewers", "1,234人", 1_234),
        ("gmv", "¥1,234,567", 1_234_567),
    ],
)
def test_a_read_whose_digit_groups_cannot_be_a_number_is_no_vote(field: str, text: str, value: float | None) -> None:
    vote = sales_ocr_local.vote_of(text, 0.9, SALES_FIELDS[field])
    assert (vote.value if vote else None) == value


def test_a_multiplier_read_as_digits_is_no_vote() -> None:
    """万 read as "45" by a smaller re-read: "36.645" is not 36,645 when another read shows 36.6万."""
    vote = sales_ocr_local.Vote
    reading = sales_ocr_local.decide([vote(366_000, "36.6万", 0.9), vote(36_645, "36.645", 0.8)])
    assert reading is not None and not reading.disputed and reading.text == "36.6万"
    alone = sales_ocr_local.decide([vote(36_645, "36.645", 0.8), vote(36_645, "36,645", 0.9)])
    assert alone is not None and not alone.disputed and alone.confidence >= 0.7  # no multiplier seen: both count


def test_a_decimal_point_disagreement_comes_back_uncertain() -> None:
    """CTR 5.4 % or 54 %: both plausible, no other field decides: uncertain, never a value."""
    extraction = build_extraction(
        {"ctr": Reading("54%", 0.3, ("5.4%",), disputed=True), "gmv": Reading("¥1,234", 0.9)},
        [],
        provider="local",
        min_confidence=0.6,
        strict_text=True,
    )
    assert extraction.sales.ctr is None and extraction.sales.gmv == 1_234
    field = extraction.fields["ctr"]
    assert (field.value, field.uncertain, field.raw_text) == (None, True, "54%")
    assert any(w.startswith("ctr: the reads disagree ('54%' / '5.4%')") for w in extraction.warnings)


def test_a_disagreement_is_settled_by_evidence_only() -> None:
    def cvr(orders: str, viewers: str) -> tuple[float | None, list[str]]:
        readings = {"cvr": Reading("44%", 0.3, ("4.4%",), disputed=True)}
        if orders:
            readings |= _sure(orders=orders, viewers=viewers)
        extraction = build_extraction(readings, [], provider="local", min_confidence=0.6, strict_text=True)
        return extraction.sales.cvr, extraction.warnings

    value, warnings = cvr("441", "10,000")  # orders / viewers = 4.41 %
    assert value == 4.4 and "rates confirm" in warnings[0]
    value, warnings = cvr("", "")  # no other field: 44 % is above any live-commerce CVR, 4.4 % is not
    assert value == 4.4 and "plausible range" in warnings[0]
    value, _ = cvr("4,400", "10,000")  # the rates say 44 %, the range says 4.4 %: nothing decides
    assert value is None


@pytest.mark.parametrize(
    ("reads", "value"),
    [
        (("1,188,546円", "1,188,540円"), 1_188_540),  # IPA Gothic's 0円 read as 6円
        (("199人", "109人", "189人"), 109),  # a 0 read as 9 by one model, as 8 by another
        (("2,516", "2,510"), 2_510),
        (("1,188,541円", "1,188,540円"), None),  # 1 or 0: no looped digit, nothing decides
        (("1,096", "1,690"), None),  # a 0 on each side: nothing decides
        (("17,000", "1,700"), None),  # not the same digits
    ],
)
def test_a_zero_read_as_a_looped_digit_is_settled_for_the_zero(reads: tuple[str, ...], value: float | None) -> None:
    name = "new_followers" if "人" in reads[0] else "gmv" if "円" in reads[0] else "orders"
    reading = Reading(reads[0], 0.3, reads[1:], disputed=True)
    extraction = build_extraction({name: reading}, [], provider="local", min_confidence=0.6, strict_text=True)
    assert getattr(extraction.sales, name) == value
    assert extraction.fields[name].uncertain is (value is None)


def test_a_disputed_gmv_is_settled_by_a_table_that_adds_up_exactly() -> None:
    rows = [
        ProductReading(name=None, numbers={"set_revenue": Reading("¥10,000", 0.9)}),
        ProductReading(name=None, numbers={"set_revenue": Reading("¥1,178,540", 0.9)}),
    ]
    gmv = Reading("1,188,541円", 0.3, ("1,188,540円",), disputed=True)  # 0 or 1: no glyph evidence decides
    settled = build_extraction({"gmv": gmv}, rows, provider="local", min_confidence=0.6, strict_text=True)
    assert settled.sales.gmv == 1_188_540
    partial = build_extraction({"gmv": gmv}, rows[1:], provider="local", min_confidence=0.6, strict_text=True)
    assert partial.sales.gmv is None and partial.fields["gmv"].uncertain  # a partial table says nothing


# --- layouts and misreads the wider dev split showed ----------------------------------------------


NOTO_BOLD = "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"


def _tiles(cells: list[tuple[str, str]]) -> bytes:
    """Tiles that set the big number over its caption, three to a row (Noto Sans CJK)."""
    image = Image.new("RGB", (1080, 60 + 190 * -(-len(cells) // 3)), "white")
    draw = ImageDraw.Draw(image)
    for i, (label, value) in enumerate(cells):
        x, top = 40 + 340 * (i % 3), 30 + 190 * (i // 3)
        draw.text((x, top), value, font=ImageFont.truetype(NOTO_BOLD, 44), fill="#161823")
        draw.text((x, top + 64), label, font=ImageFont.truetype(NOTO, 26), fill="#6d6f78")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_value_above_its_caption_is_read() -> None:
    """Tiles with the number over its label; a label with no number of its own kind near it stays empty."""
    cells = [("GMV", "¥1,234,567"), ("注文数", "812"), ("視聴者数", "45,120"), ("在庫数", "77"), ("いいね数", "3,456")]
    sales = extract_sales_from_image(_tiles(cells), _local_settings()).sales
    assert (sales.gmv, sales.orders, sales.viewers, sales.likes) == (1_234_567, 812, 45_120, 3_456)
    read = {k for k, v in sales.model_dump().items() if v not in (None, [], "JPY")}
    assert read == {"gmv", "orders", "viewers", "likes"}  # 77 has no known label: no field


def test_a_number_that_ends_in_its_unit_is_not_held_open_by_the_next_card() -> None:
    """ "1,188,540円" with a three-digit value 1.5 line heights to its right: the unit ends the
    amount, so the 606 beside it cannot be its missing group (it was left uncertain)."""
    image = Image.new("RGB", (900, 200), "white")
    draw = ImageDraw.Draw(image)
    label, value = ImageFont.truetype(NOTO, 26), ImageFont.truetype(NOTO_BOLD, 44)
    draw.text((40, 30), "GMV", font=label, fill="#6d6f78")
    draw.text((40, 74), "1,188,540円", font=value, fill="#161823")
    right = 40 + draw.textlength("1,188,540円", font=value) + 70
    draw.text((right, 30), "注文数", font=label, fill="#6d6f78")
    draw.text((right, 74), "606", font=value, fill="#161823")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    sales = extract_sales_from_image(buffer.getvalue(), _local_settings()).sales
    assert (sales.gmv, sales.orders) == (1_188_540, 606)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("ぎ\\1,153,400", 1_153_400),  # a full-width ￥ read as a stray glyph and a backslash
        ("¥i1,409,710", 1_409_710),  # ... or as ¥ and a stray glyph
        ("14,119,080F3", 14_119_080),  # 円 read as "F3" after a complete group
        ("3,058,400/F4", 3_058_400),  # ... as ASCII junk in a Mincho face
        ('690,900}"}', 690_900),
        ("72,7787", 72_778),  # ... or as one digit: no amount has four digits after its last comma
        ("¥72,7787", None),  # with a ¥ before it no 円 is meant: a broken group, no vote
        ("*2,514,880", 2_514_880),  # a full-width ￥ read as one symbol
        ("l2,345円", None),  # a letter may be a misread 1: never taken for a currency mark
        ("1,188,540F9", 1_188_540),
        ("-¥1,234", None),  # a comparison's sign is no stray glyph
        ("1,18F9", None),  # no complete group before the "F": no 円 is meant
        ("39,7871]", 39_787),  # 円 in a Mincho face as its left stroke and a symbol
        ('39,7871")', 39_787),
        ("39,78l]", None),  # ... only after a complete group
    ],
)
def test_yen_marks_as_some_faces_read_them(text: str, value: float | None) -> None:
    vote = sales_ocr_local.vote_of(text, 0.9, SALES_FIELDS["gmv"])
    assert (vote.value if vote else None) == value


@pytest.mark.parametrize("text", ["—25.3%", "−4.1%", "–12%", "-3.3%", "+8.0%"])
def test_a_comparison_with_any_dash_is_no_value(text: str) -> None:
    assert sales_ocr_local.vote_of(text, 0.9, SALES_FIELDS["ctr"]) is None


def test_a_label_with_a_misread_qualifier_has_no_inline_value() -> None:
    """ "Shop GMV (円)" read as "Shop GMV (FQ)": the label, and its value still to be looked for."""
    phrase = sales_ocr_local.Phrase("Shop GMV (FQ)", 0.9, sales_ocr_local.Box(0, 0, 200, 30))
    assert sales_ocr_local._split_label(phrase) == (["gmv"], None)
    inline = sales_ocr_local.Phrase("GMV ¥1,234", 0.9, sales_ocr_local.Box(0, 0, 200, 30))
    split = sales_ocr_local._split_label(inline)
    assert split is not None and split[0] == ["gmv"] and split[1] is not None
    assert split[1].text == "¥1,234"


def _ctr(reads: tuple[str, ...], **counts: str) -> float | None:
    readings = {"ctr": Reading(reads[0], 0.3, reads[1:], disputed=True)} | _sure(**counts)
    return build_extraction(readings, [], provider="local", min_confidence=0.6, strict_text=True).sales.ctr


def test_a_rate_is_vouched_for_only_to_its_shown_digits() -> None:
    """ "4.4%" read as "4.49%" and "44%": 44 % is implausible, but 4.49 is a single read's digits,
    within 3 % (or an abbreviated count's range) of the derived rate: uncertain, never taken."""
    assert _ctr(("44%", "4.49%"), product_clicks="2,627", viewers="5.9万") is None
    assert _ctr(("44%", "4.49%"), product_clicks="2,627", viewers="59,170") is None  # 4.44 %: refuted
    assert _ctr(("44%", "4.44%"), product_clicks="2,627", viewers="59,170") == 4.44  # exact counts confirm
    assert _ctr(("74%", "7.4%")) == 7.4  # the same digits: only the point in dispute, 74 % implausible
    assert _ctr(("74%", "7.49%")) is None  # digits one read alone shows


# --- styles of the widened dev split: Mincho faces, inline pairs, hero numbers, ledgers ------------


SAWARABI_MINCHO = "/usr/share/fonts/truetype/sawarabi-mincho/sawarabi-mincho-medium.ttf"
IPA_MINCHO = "/usr/share/fonts/opentype/ipafont-mincho/ipam.ttf"


@pytest.mark.skipif(not Path(SAWARABI_MINCHO).is_file(), reason="fonts-sawarabi-mincho not installed")
def test_a_mincho_dashboard_is_read() -> None:
    """A serif (Mincho) face, labels and values: the thin strokes and serifs of its digits, 円 and
    ¥ read as other glyphs, are read right or left empty - never wrong."""
    cells = [("売上金額", "3,058,400円"), ("視聴者数", "12,691人"), ("注文数", "1,135"), ("クリック率", "4.54%")]
    sales = extract_sales_from_image(_dashboard(cells, face=SAWARABI_MINCHO), _local_settings()).sales
    assert (sales.gmv, sales.viewers, sales.orders, sales.ctr) == (3_058_400, 12_691, 1_135, 4.54)


@pytest.mark.skipif(not Path(IPA_MINCHO).is_file(), reason="fonts-ipafont-mincho not installed")
def test_a_small_mincho_label_in_a_compressed_screenshot_is_read() -> None:
    """Thin Mincho strokes of a small grey label break up at the black-and-white threshold after
    JPEG compression and downscaling, and jpn+eng then reads Latin junk: the label is read again
    in grey. Values are right or empty, never wrong."""
    cells = [("ライブ購入率", "1.07%"), ("クリック率", "7.5%"), ("コメント数", "3,755")]
    full = Image.open(io.BytesIO(_dashboard(cells, face=IPA_MINCHO)))
    image = full.resize((full.width * 3 // 5, full.height * 3 // 5), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=70)
    sales = extract_sales_from_image(buffer.getvalue(), _local_settings()).sales
    assert sales.cvr in (1.07, None) and sales.ctr in (7.5, None) and sales.comments in (3_755, None)
    assert sum(v is not None for v in (sales.cvr, sales.ctr, sales.comments)) >= 2


def _inline(pairs: list[tuple[str, str]], space: int) -> bytes:
    """A summary strip: ``label：value`` pairs two to a row, the value ``space`` px after its label."""
    image = Image.new("RGB", (1180, 60 + 80 * -(-len(pairs) // 2)), "white")
    draw = ImageDraw.Draw(image)
    label, value = ImageFont.truetype(NOTO, 24), ImageFont.truetype(NOTO_BOLD, 32)
    for i, (name, shown) in enumerate(pairs):
        x, baseline = 40 + 580 * (i % 2), 70 + 80 * (i // 2)
        draw.text((x, baseline), name, font=label, fill="#6d6f78", anchor="ls")
        value_x = x + draw.textlength(name, font=label) + space
        draw.text((value_x, baseline), shown, font=value, fill="#161823", anchor="ls")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("space", [8, 40])
def test_inline_label_value_pairs_are_read_three_ways(space: int) -> None:
    """ "視聴者数：31,270" on one line, the value a word space or a few characters after its
    label: the value is cut off at the blank columns before it and read like any other (three
    reads that agree, not one read at the label's confidence)."""
    pairs = [("視聴者数：", "31,270"), ("注文数：", "900"), ("Likes:", "163,239"), ("GMV:", "¥2,414,890")]
    extraction = extract_sales_from_image(_inline(pairs, space), _local_settings())
    sales = extraction.sales
    assert (sales.viewers, sales.orders, sales.likes, sales.gmv) == (31_270, 900, 163_239, 2_414_890)
    assert all(extraction.fields[f].confidence >= 0.7 for f in ("viewers", "orders", "likes", "gmv"))


def test_a_label_ending_in_a_colon_splits_from_its_value() -> None:
    phrase = sales_ocr_local.Phrase("Total Like count:163,239", 0.9, sales_ocr_local.Box(0, 0, 400, 30))
    split = sales_ocr_local._split_label(phrase)
    assert split is not None and split[0] == ["likes"] and split[1] is not None
    assert split[1].text == "163,239" and not split[1].glyphs  # no glyph positions: its text alone


def test_a_hero_number_below_a_small_caption_is_read() -> None:
    """A phone page led by the GMV at 100 px under a 22 px caption: the big number's ascent leaves
    a gap wider than 2.5 caption heights, so the reach below grows with the candidate's size."""
    image = Image.new("RGB", (750, 420), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), "Gross revenue", font=ImageFont.truetype(NOTO, 22), fill="#6d6f78")
    draw.text((40, 66), "858,600円", font=ImageFont.truetype(NOTO_BOLD, 100), fill="#161823")
    draw.text((40, 260), "注文数", font=ImageFont.truetype(NOTO, 22), fill="#6d6f78")
    draw.text((40, 296), "220", font=ImageFont.truetype(NOTO_BOLD, 44), fill="#161823")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    sales = extract_sales_from_image(buffer.getvalue(), _local_settings()).sales
    assert (sales.gmv, sales.orders) == (858_600, 220)


def test_a_full_width_number_split_at_its_comma_is_joined() -> None:
    """ "￥１，８１１，７４０" at hero size: the full-width comma's empty cell splits it, and its last
    piece reads as "フ 40", no number; a piece that ends in a separator takes the next one."""
    image = Image.new("RGB", (1100, 260), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), "GMV", font=ImageFont.truetype(NOTO, 26), fill="#6d6f78")
    draw.text((40, 80), "￥１，８１１，７４０", font=ImageFont.truetype(NOTO_BOLD, 80), fill="#161823")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    assert extract_sales_from_image(buffer.getvalue(), _local_settings()).sales.gmv in (1_811_740, None)


def test_a_label_beside_a_misread_bracket_still_reaches_its_value() -> None:
    """ "LIVE GMV (円)" with the bracket read as "(FA)" and cut off: the second phrase to the right
    is a candidate too, so the value far right on the row (a ledger) is found."""
    box = sales_ocr_local.Box
    label = sales_ocr_local.Phrase("LIVE GMV", 0.9, box(90, 410, 290, 440))
    junk = sales_ocr_local.Phrase("(FA)", 0.6, box(310, 410, 370, 440))
    value = sales_ocr_local.Phrase("¥2,528,490", 0.9, box(1500, 395, 1880, 452))
    assert sales_ocr_local._candidates(label, [junk, value], [label]) == [junk, value]


@pytest.mark.parametrize(
    ("label", "fields"),
    [
        ("ライブビーーク視聴者数", ["peak_viewers"]),  # ピ read as ビ and its long vowel twice
        ("ニーク視聴者数", []),  # as near to ユニーク視聴者数 (viewers) as to ピーク視聴者数: edits decide nothing
    ],
)
def test_a_misread_label_is_matched_only_when_no_other_field_is_as_near(label: str, fields: list[str]) -> None:
    from rag_core.sales.lexicon import sales_labels

    assert sales_labels().match(label) == fields


def test_a_product_row_the_equation_refutes_is_not_written_as_fact() -> None:
    """price × sold = revenue is exact: a row whose reads cannot satisfy it, even with a thin zero
    read back, has a wrong value somewhere, and the penalty leaves all three uncertain."""
    numbers = {"price": Reading("¥986", 0.9), "sold": Reading("577", 0.9), "set_revenue": Reading("¥566,446", 0.9)}
    rows = [ProductReading(name=None, numbers=numbers)]
    extraction = build_extraction({}, rows, provider="local", min_confidence=0.6, strict_text=True)
    product = extraction.set_products[0]
    assert (product.price, product.sold, product.set_revenue) == (None, None, None)
    assert extraction.fields["set_products.0.set_revenue"].uncertain


def test_a_product_revenue_with_a_thin_zero_read_as_six_is_put_right_by_the_equation() -> None:
    """Every read saw ¥3,438,700's thin zero as a 6, and the price is disputed: 5,020 × 685 =
    ¥3,438,700 holds with the 6 read back as 0 (the one-way confusion), so the row is right."""
    numbers = {
        "price": Reading("¥5,020", 0.3, ("¥5,620",), disputed=True),
        "sold": Reading("685", 0.9),
        "set_revenue": Reading("¥3,438,760", 0.9),
    }
    rows = [ProductReading(name=None, numbers=numbers)]
    product = build_extraction({}, rows, provider="local", min_confidence=0.6, strict_text=True).set_products[0]
    assert (product.price, product.sold, product.set_revenue) == (5_020, 685, 3_438_700)


def test_words_of_one_label_are_joined_across_a_monospaced_space_and_uneven_tops() -> None:
    """IPA Gothic sets Latin half-width: "Order rate" has a gap of more than a line height
    between its words, and words of one row start at different tops ("rate" has no capital)."""
    box, phrase = sales_ocr_local.Box, sales_ocr_local.Phrase
    words = [
        phrase("rate (%)", 0.9, box(353, 325, 495, 360)),
        phrase("Order", 0.9, box(603, 327, 700, 356)),
        phrase("Click-through", 0.9, box(79, 328, 325, 361)),
        phrase("rate", 0.9, box(731, 331, 805, 356)),
    ]
    texts = [p.text for p in sales_ocr_local._join_labels(words)]
    assert texts == ["Click-through rate (%)", "Order rate"]


# --- hero numbers, misread inline labels and the product table's total (dev round 5) ------------


def _revenue_rows(*revenues: str) -> list[ProductReading]:
    return [ProductReading(name=None, numbers={"set_revenue": Reading(text, 0.9)}) for text in revenues]


def _gmv(reads: tuple[str, ...], rows: list[ProductReading]) -> tuple[float | None, bool]:
    gmv = Reading(reads[0], 0.3, reads[1:], disputed=True)
    extraction = build_extraction({"gmv": gmv}, rows, provider="local", min_confidence=0.6, strict_text=True)
    return extraction.sales.gmv, extraction.fields["gmv"].uncertain


def test_an_abbreviated_gmv_is_confirmed_by_the_table_to_its_shown_digits() -> None:
    """ "4746.6万円" / "4746万円" (a point and a digit lost): the table's ¥47,466,120 lies in both
    ranges, and the narrower one, the read that shows more digits, is taken; a table that lies
    in neither confirms nothing."""
    reads = ("4746.6万円", "4746万円")
    assert _gmv(reads, _revenue_rows("¥47,000,000", "¥466,120")) == (47_466_000, False)
    assert _gmv(reads, _revenue_rows("¥47,000,000", "¥866,120")) == (None, True)


def test_a_gmv_whose_zeros_every_read_saw_as_loops_is_put_right_by_the_table() -> None:
    """¥1,721,000 in a thin face read as ¥1,721,800 / ¥1,721,900 / ¥1,721,606: no read shows the
    zeros, but one with its 6, 8 or 9 read back as 0 equals the table's revenue; a table that
    adds up to something else leaves it uncertain."""
    reads = ("¥1,721,800", "¥1,721,900", "¥1,721,606")
    assert _gmv(reads, _revenue_rows("¥979,200", "¥741,800")) == (1_721_000, False)
    assert _gmv(reads, _revenue_rows("¥979,200", "¥741,700")) == (None, True)


def test_the_table_total_counts_rows_the_equation_settled() -> None:
    """A row whose revenue was disputed but that price × sold = set_revenue settled counts in the
    table's total, which then settles the GMV."""
    row = {
        "price": Reading("¥6,800", 0.9),
        "sold": Reading("144", 0.9),
        "set_revenue": Reading("¥979,206", 0.3, ("¥979,200",), disputed=True),
    }
    rows = [ProductReading(name=None, numbers=row), *_revenue_rows("¥741,800")]
    assert _gmv(("¥1,721,000", "¥1,721,806"), rows) == (1_721_000, False)


def test_a_multiplier_read_as_letters_backs_a_read_that_shows_it() -> None:
    """A bold "¥39.3万": the page-scale read gives "¥39.35" (万 as 5), the re-reads "¥39.3FA" and
    "¥39.3H" - no value of their own, but the same digits with something after them, which a
    whole amount with one decimal has only as a multiplier: two reads agree. Letters never
    back a read with other digits, nor stand alone (they do not say which multiplier)."""
    spec = SALES_FIELDS["gmv"]
    shown = sales_ocr_local.vote_of("¥39.35", 0.0, spec)
    assert shown is not None and shown.value == 393_000
    reads = [("¥39.35", 0.0), ("¥39.3", 0.3), ("¥39.3FA", 0.0)]
    reading = sales_ocr_local.decide([shown, *sales_ocr_local._unread_multipliers(reads, [shown], spec)])
    assert reading is not None and not reading.disputed and reading.confidence >= 0.7
    assert sales_ocr_local._unread_multipliers([("¥39.4FA", 0.5)], [shown], spec) == []
    assert sales_ocr_local._unread_multipliers([("¥39.3FA", 0.5)], [], spec) == []
    assert sales_ocr_local.vote_of("¥39.3FA", 0.9, spec) is None


def test_a_misread_label_before_an_inline_value_is_read_again_alone() -> None:
    """ "売上: ¥414,850" whose label came out as "AL:" with the value beside it: the words before
    the value are cut off and read again alone, and the value is read as usual. A comparison
    ("前回比 +12.3%") is no label and value, whatever its words read as."""
    image = Image.new("RGB", (900, 160), "white")
    draw = ImageDraw.Draw(image)
    label = ImageFont.truetype(NOTO, 28)
    draw.text((40, 70), "売上:", font=label, fill="#6d6f78", anchor="ls")
    value_x = 40 + draw.textlength("売上:", font=label) + 10
    draw.text((value_x, 70), "¥414,850", font=ImageFont.truetype(NOTO_BOLD, 34), fill="#161823", anchor="ls")
    draw.text((500, 40), "前回比 +12.3%", font=ImageFont.truetype(NOTO, 28), fill="#6d6f78")
    engine = sales_ocr_local._engine(TESSDATA, "jpn+eng")
    with engine.lock:
        page = sales_ocr_local._Page(sales_ocr_local.prepare(image), engine)
        inline = next(p for p in page.phrases if "414" in p.text)
        assert len(inline.glyphs) == len(inline.text.replace(" ", "")) and inline.glyphs[0].char == "売"
        glyphs = (inline.glyphs[0]._replace(char="A"), inline.glyphs[1]._replace(char="L"), *inline.glyphs[2:])
        misread = sales_ocr_local.Phrase("AL" + inline.text[2:], inline.confidence, inline.box, glyphs)
        assert sales_ocr_local._split_label(misread) is None
        split = page.label(misread)
        assert split is not None and split[0] == ["gmv"] and split[1] is not None
        reading = page.read_value(split[1], SALES_FIELDS["gmv"])
        assert reading is not None and reading.text == "¥414,850" and reading.confidence >= 0.7
        comparison = next(p for p in page.phrases if "12" in p.text)
        assert page.label(comparison) is None


def _hero_card(value: str, after: Callable[[ImageDraw.ImageDraw, float, int], None]) -> bytes:
    """A card with a GMV caption, the value under it and ``after(draw, x, baseline)`` drawing a
    decoration right after the value, as hero numbers are dressed."""
    image = Image.new("RGB", (900, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.text((40, 30), "GMV", font=ImageFont.truetype(NOTO, 26), fill="#6d6f78")
    font = ImageFont.truetype(NOTO_BOLD, 44)
    draw.text((40, 130), value, font=font, fill="#161823", anchor="ls")
    after(draw, 40 + draw.textlength(value, font=font), 130)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _trend(draw: ImageDraw.ImageDraw, x: float, baseline: int) -> None:
    draw.text((x + 14, baseline), "▲15.5%", font=ImageFont.truetype(NOTO, 20), fill="#12a150", anchor="ls")


def _sparkline(draw: ImageDraw.ImageDraw, x: float, baseline: int) -> None:
    heights = (0.2, 0.7, 0.4, 0.9, 0.3, 0.6, 0.1, 0.8)
    points = [(x + 22 + 14 * i, baseline - 26 * h) for i, h in enumerate(heights)]
    draw.line(points, fill="#12a150", width=3)


@pytest.mark.parametrize(
    ("value", "after", "expected"),
    [("¥5,451,820", _trend, 5_451_820), ("¥1,809,700", _sparkline, 1_809_700), ("169.6万円", _sparkline, 1_696_000)],
)
def test_a_value_with_a_trend_or_a_sparkline_after_it_is_read(
    value: str, after: Callable[[ImageDraw.ImageDraw, float, int], None], expected: int
) -> None:
    """ "¥5,451,820 ▲15.5%" or a sparkline just after the number: one segment, read as no value
    ("¥5,451,82015.5:"); its head before the blank, ending in a complete thousands group, is
    read again alone."""
    assert extract_sales_from_image(_hero_card(value, after), _local_settings()).sales.gmv == expected


@pytest.mark.parametrize(
    ("tail", "goes_on"), [("，７４０", True), ("740", True), (",740", True), ("▲15.5%", False), ("ん、", False)]
)
def test_a_value_is_cut_before_a_decoration_never_inside_a_wide_number(tail: str, goes_on: bool) -> None:
    """A head ends a value only when what follows cannot go on with it: a separator or a
    thousands group is the rest of a number set wide (full-width digits), a trend is not."""
    assert sales_ocr_local._goes_on_with(tail) is goes_on


@pytest.mark.parametrize(
    ("text", "value"),
    [("6348, 25m", None), ("1,234.5K", None), ("12.5K", 12_500), ("999.9K", 999_900), ("1.25M", 1_250_000)],
)
def test_k_and_m_have_at_most_three_digits_before_the_point(text: str, value: float | None) -> None:
    """ "6348.2万" whose 万 came out as "5m" read as 6,348,250,000: K and M abbreviate below the
    next step, so four digits (or a thousands group) before one is a misread unit, no vote."""
    vote = sales_ocr_local.vote_of(text, 0.9, SALES_FIELDS["likes"])
    assert (vote.value if vote else None) == value


@pytest.mark.parametrize(
    ("inline", "right", "rest"),
    [
        ("4,", (1040, "615"), True),  # "Clicks ４，" "６１５": the label swallowed the number's start
        ("1", (1040, "018"), True),  # "売れた商品数：１" "０１８"
        ("4,", (1400, "615"), False),  # too far: another column's value
        ("12", (1040, "5%"), False),  # no thousands group, no separator: nothing says they are one
    ],
)
def test_the_rest_of_a_number_cut_off_with_its_label_is_never_read_alone(
    inline: str, right: tuple[int, str], rest: bool
) -> None:
    box, phrase = sales_ocr_local.Box, sales_ocr_local.Phrase
    start = phrase(inline, 0.0, box(854, 389, 1004, 430))
    other = phrase(right[1], 0.9, box(right[0], 389, right[0] + 118, 423))
    assert sales_ocr_local._rest_of(start, other) is rest


def test_two_routes_to_the_same_row_values_are_one_answer() -> None:
    """ "¥2,980" is both another read of the price and "¥2,986" with its 6 read back as 0: the
    same values reached twice are no ambiguity, and the row is put right."""
    numbers = {
        "price": Reading("¥2,986", 0.3, ("¥2,980", "¥2,988"), disputed=True),
        "sold": Reading("1,676", 0.9),
        "set_revenue": Reading("¥3,206,486", 0.3, ("¥3,206,480",), disputed=True),
    }
    rows = [ProductReading(name=None, numbers=numbers)]
    product = build_extraction({}, rows, provider="local", min_confidence=0.6, strict_text=True).set_products[0]
    assert (product.price, product.sold, product.set_revenue) == (2_980, 1_076, 3_206_480)


def test_a_cell_that_no_read_of_its_row_can_satisfy_is_not_kept_beside_uncertain_ones() -> None:
    """Price and revenue disputed (left empty) and no read of the row, zeros read back included,
    makes the equation hold: the sold count read alone is not written as fact either."""
    numbers = {
        "price": Reading("¥2,986", 0.3, ("¥2,987",), disputed=True),
        "sold": Reading("1,675", 0.9),
        "set_revenue": Reading("¥3,206,485", 0.3, ("¥3,206,487",), disputed=True),
    }
    rows = [ProductReading(name=None, numbers=numbers)]
    extraction = build_extraction({}, rows, provider="local", min_confidence=0.6, strict_text=True)
    assert extraction.set_products[0].sold is None
    assert extraction.fields["set_products.0.sold"].uncertain


@pytest.mark.parametrize(
    ("text", "piece"), [("*2, 795,", True), ("¥2,795,", True), ("前回比 -9.1%", False), ("@)", False)]
)
def test_a_yen_mark_read_as_a_symbol_still_starts_a_number_piece(text: str, piece: bool) -> None:
    """ "￥２，７９５，" "６００" with the ￥ read as "*": the first piece is still a number's, so the
    rest is joined to it (the amount was left uncertain, its pieces apart)."""
    phrase = sales_ocr_local.Phrase(text, 0.9, sales_ocr_local.Box(93, 395, 650, 480))
    assert sales_ocr_local._number_piece(phrase, None) is piece


def _dressed_gmv(label: str, value: str, *, chip: bool = False, raised: str = "", comparison: str = "") -> bytes:
    """A GMV card dressed as dashboards dress their hero number: the label in a filled **chip**
    (light words on a green pill), the unit set small and **raised** to the digits' top (its own
    baseline), a **comparison** on the value's line after it, set smaller."""
    image = Image.new("RGB", (900, 170), "white")
    draw = ImageDraw.Draw(image)
    label_font = ImageFont.truetype(NOTO, 26)
    if chip:
        width = draw.textlength(label, font=label_font)
        draw.rounded_rectangle((28, 22, 52 + width, 66), 22, fill="#12a150")
    draw.text((40, 26), label, font=label_font, fill="#f4f5f7" if chip else "#6d6f78")
    font = ImageFont.truetype(NOTO_BOLD, 56)
    draw.text((40, 120), value, font=font, fill="#161823", anchor="ls")
    x = 40 + draw.textlength(value, font=font)
    if raised:
        small = ImageFont.truetype(NOTO_BOLD, 30)
        digit_top = 120 + font.getbbox("0", anchor="ls")[1]
        draw.text((x + 4, digit_top - small.getbbox(raised[0])[1]), raised, font=small, fill="#161823")
        x += 4 + draw.textlength(raised, font=small)
    if comparison:
        draw.text((x + 24, 120), comparison, font=ImageFont.truetype(NOTO, 22), fill="#12a150", anchor="ls")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("label", ["LIVE GMV", "売上金額", "Gross revenue (円)"])
def test_a_label_in_a_filled_chip_is_read(label: str) -> None:
    """Light words on a coloured pill are one filled box to the segmenter: flipped, with the
    pill's outside cleared, they read as the label; the value under it is found. A label's own
    unit bracket misread as a weak inline value ("(円)" as "(F3)J") does not end the search."""
    extraction = extract_sales_from_image(_dressed_gmv(label, "¥5,451,820", chip=True), _local_settings())
    assert extraction.sales.gmv == 5_451_820


def test_a_unit_raised_off_the_baseline_is_read_apart_never_as_digits() -> None:
    """``196.5`` with 万円 small and raised to the digits' top: read as one line, the 万円 came out
    as two more digits (``196.541``, ¥196,541 by every read alike). Read apart, it is its unit."""
    extraction = extract_sales_from_image(_dressed_gmv("GMV", "196.5", raised="万円"), _local_settings())
    assert extraction.sales.gmv == 1_965_000


def test_a_decimal_number_whose_raised_unit_is_unread_is_uncertain() -> None:
    """A raised mark that is no unit (here a ``*`` footnote) leaves ``196.5`` disputed: an amount
    with a decimal point and no multiplier is no yen amount to state."""
    extraction = extract_sales_from_image(_dressed_gmv("GMV", "196.5", raised="*"), _local_settings())
    assert extraction.sales.gmv is None


@pytest.mark.parametrize(("value", "expected"), [("¥818.3万", 8_183_000), ("¥5,451,820", 5_451_820)])
def test_a_comparison_on_the_value_line_is_cut_off(value: str, expected: int) -> None:
    """``¥818.3万  前回比 +14.8%``: the comparison, set smaller, lies within a segment gap of the
    value; the value's head before it is read alone, whatever the whole's read made of it."""
    data = _dressed_gmv("GMV", value, comparison="前回比 +14.8%")
    assert extract_sales_from_image(data, _local_settings()).sales.gmv == expected
