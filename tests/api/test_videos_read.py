"""``GET /external/videos/{video_id}`` and the CSV exports: shape, provenance, brand scoping, 404."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.ui.session import COOKIE, sign_in
from rag_core.base.settings import ApiKey
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.sales.provenance import FieldProvenance
from tests.appkit import analysis, app_context, app_settings, png, run_queue, sample_records
from tests.azurite import Azurite

OPS, BRAND101, BRAND102 = "k-ops-0123456789abcdef", "k-b101-0123456789abcdef", "k-b102-0123456789abcdef"


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    keys = [
        ApiKey(name="ops", key=OPS),
        ApiKey(name="b101", key=BRAND101, brand_id=101),
        ApiKey(name="b102", key=BRAND102, brand_id=102),
    ]
    context = app_context(app_settings(azurite, tmp_path_factory.mktemp("qdrant"), api_keys=keys), local_embedder)
    with context.knowledge() as kb:
        for record in sample_records(72)[::9]:  # one stream of each liver, all three brands
            kb.ingest(record)
    return context


@pytest.fixture(scope="module")
def samples_by_brand() -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for record in sample_records(72)[::9]:
        out.setdefault(record.brand_id or 0, []).append(record.video_id)
    return out


def test_read_back_has_record_phases_sales_and_metrics(client: TestClient) -> None:
    recorded = next(r for r in sample_records(72)[::9] if r.screen_metrics)
    response = client.get(f"/api/v1/external/videos/{recorded.video_id}", headers={"X-API-Key": OPS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["video_id"] == recorded.video_id and body["liver_id"] == recorded.liver_id
    assert body["brand_id"] == recorded.brand_id
    assert [p["phase_index"] for p in body["phases"]] == [p.phase_index for p in recorded.phases]
    assert body["phases"][0]["speech_text"] == recorded.phases[0].speech_text
    assert body["phases"][0]["quality_score"] is not None
    assert recorded.sales is not None and body["sales"]["gmv"] == recorded.sales.gmv
    assert len(body["screen_metrics"]) == len(recorded.screen_metrics)
    assert body["sales_sources"] == [
        {"kind": "analysis_json", "job_id": None, "status": None, "at": None, "warnings": []}
    ]  # backfilled: no job read it


def test_provenance_names_the_screenshot_job_and_its_warning(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    form = {
        "video_url": "https://www.tiktok.com/@t/live/read-1",
        "liver_id": "liver_test",
        "analysis": json.dumps(analysis("read-1"), ensure_ascii=False),
    }
    files = {"sales_image": ("s.png", png(), "image/png")}
    stored = client.post("/api/v1/external/analysis/store", data=form, files=files, headers={"X-API-Key": OPS})
    assert stored.status_code == 202, stored.text
    assert run_queue(ctx, functions) == 1
    body = client.get("/api/v1/external/videos/read-1", headers={"X-API-Key": OPS}).json()
    kinds = {s["kind"]: s for s in body["sales_sources"]}
    assert set(kinds) == {"analysis_json", "screenshot_ocr"}
    assert kinds["screenshot_ocr"]["job_id"] == stored.json()["job_id"] and kinds["screenshot_ocr"]["status"] == "done"
    assert any("no sales figure" in w for w in kinds["screenshot_ocr"]["warnings"])  # a blank screenshot


SHOT = Path(__file__).resolve().parents[1] / "data" / "sales_screenshots" / "00_cards_light_png.png"


def test_per_field_ocr_confidence_reaches_the_read_back_and_the_stream_page(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    """A real dashboard screenshot through the store route and the queue worker: every field it
    read is kept with its confidence, raw text, provider and job; the analysis' own GMV wins over
    the OCR's, and the page says so; a later read that refuses a field keeps the earlier read."""
    truth = json.loads(SHOT.with_name(f"{SHOT.stem}.truth.json").read_text(encoding="utf-8"))
    own_gmv = truth["sales"]["gmv"] + 12_345
    form = {
        "video_url": "https://www.tiktok.com/@t/live/read-ocr",
        "liver_id": "liver_test",
        "analysis": json.dumps(analysis("read-ocr", sales={"gmv": own_gmv}), ensure_ascii=False),
    }
    files = {"sales_image": (SHOT.name, SHOT.read_bytes(), "image/png")}
    stored = client.post("/api/v1/external/analysis/store", data=form, files=files, headers={"X-API-Key": OPS})
    assert stored.status_code == 202, stored.text
    assert run_queue(ctx, functions) == 1
    body = client.get("/api/v1/external/videos/read-ocr", headers={"X-API-Key": OPS}).json()
    fields = {f["field"]: f for f in body["sales_fields"]}
    for name, value in truth["sales"].items():
        entry = fields[name]
        assert entry["value"] == value and entry["provider"] == "local" and entry["job_id"] == stored.json()["job_id"]
        assert 0 < entry["confidence"] <= 1 and entry["raw_text"] and entry["uncertain"] is False
        assert entry["stored"] is (name != "gmv")  # the analysis' own GMV was kept
    assert any(f.startswith("set_products.0.") and fields[f]["stored"] for f in fields)

    # A second read of the same stream: orders refused as uncertain leaves the first read in place.
    first_gmv = fields["gmv"]
    with ctx.knowledge() as kb:
        doubt = FieldProvenance(field="orders", value=None, confidence=0.4, uncertain=True, provider="local")
        fresh = FieldProvenance(field="new_followers", value=None, confidence=0.3, raw_text="1.2", provider="local")
        kb.record_sales_provenance("read-ocr", [doubt, fresh], replaces_products=False)
    again = {
        f["field"]: f
        for f in client.get("/api/v1/external/videos/read-ocr", headers={"X-API-Key": OPS}).json()["sales_fields"]
    }
    assert (
        again["orders"]["value"] == truth["sales"]["orders"] and again["gmv"]["confidence"] == first_gmv["confidence"]
    )

    with ctx.knowledge() as kb:  # a re-ingest rewrites the stream record: the provenance stays
        record = kb.store.load_record("read-ocr")
        assert record is not None
        kb.ingest(record.model_copy(update={"title": "改題"}))
    reread = client.get("/api/v1/external/videos/read-ocr", headers={"X-API-Key": OPS}).json()
    assert reread["title"] == "改題" and {f["field"] for f in reread["sales_fields"]} == set(again)

    client.cookies.set(COOKIE, sign_in(ctx.settings, OPS)[1])
    try:
        page = client.get("/ui/streams/read-ocr")
    finally:
        client.cookies.clear()
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="ocr-fields"' in html and 'data-field="orders"' in html
    assert f'data-field="gmv" data-confidence="{first_gmv["confidence"]:.2f}"' in html
    assert "分析JSONなどの別の値を採用" in html  # the GMV row
    assert 'data-field="new_followers" data-confidence="0.30"' in html  # never read before: the refusal shows
    assert "より鮮明なスクリーンショットを再アップロード" in html


def test_brand_scoped_key_reads_only_its_brand(client: TestClient, samples_by_brand: dict[int, list[str]]) -> None:
    own, other = samples_by_brand[101][0], samples_by_brand[102][0]
    assert client.get(f"/api/v1/external/videos/{own}", headers={"X-API-Key": BRAND101}).status_code == 200
    hidden = client.get(f"/api/v1/external/videos/{other}", headers={"X-API-Key": BRAND101})
    missing = client.get("/api/v1/external/videos/no-such-video", headers={"X-API-Key": BRAND101})
    assert hidden.status_code == missing.status_code == 404  # another brand's video looks absent
    assert hidden.json()["error"]["code"] == "not_found"
    assert client.get(f"/api/v1/external/videos/{own}").status_code == 401


def _rows(response: Any) -> list[dict[str, str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_exports_are_brand_scoped(client: TestClient, samples_by_brand: dict[int, list[str]]) -> None:
    streams = _rows(client.get("/api/v1/external/export/streams.csv", headers={"X-API-Key": BRAND101}))
    assert sorted(r["video_id"] for r in streams) == sorted(samples_by_brand[101])
    assert list(streams[0])[:3] == ["video_id", "stream_date", "liver_id"]
    phases = _rows(client.get("/api/v1/external/export/phases.csv", headers={"X-API-Key": BRAND101}))
    expected = sum(len(r.phases) for r in sample_records(72)[::9] if r.brand_id == 101)
    assert len(phases) == expected and {r["video_id"] for r in phases} == set(samples_by_brand[101])
    liver = streams[0]["liver_id"]
    one = _rows(
        client.get("/api/v1/external/export/streams.csv", params={"liver_id": liver}, headers={"X-API-Key": OPS})
    )
    assert {r["liver_id"] for r in one} == {liver}


def test_an_admin_export_names_each_rows_brand(client: TestClient, samples_by_brand: dict[int, list[str]]) -> None:
    """Video ids are unique per brand only, so the export spanning brands says whose each row is."""
    streams = _rows(client.get("/api/v1/external/export/streams.csv", headers={"X-API-Key": OPS}))
    assert list(streams[0])[:2] == ["brand_id", "video_id"]
    owners = {(int(r["brand_id"] or 0), r["video_id"]) for r in streams}
    samples = {(brand, video) for brand, videos in samples_by_brand.items() for video in videos}
    assert samples <= owners and all(brand for brand, _ in samples)  # (other tests add unscoped videos)
    phases = _rows(client.get("/api/v1/external/export/phases.csv", headers={"X-API-Key": OPS}))
    assert samples <= {(int(r["brand_id"] or 0), r["video_id"]) for r in phases}


def test_routes_are_in_openapi(client: TestClient) -> None:
    paths = client.get("/api/openapi.json").json()["paths"]
    assert "get" in paths["/api/v1/external/videos/{video_id}"]
    assert "/api/v1/external/export/streams.csv" in paths and "/api/v1/external/export/phases.csv" in paths
