"""The HTTP API through its ASGI app, on real Azurite and embedded Qdrant.

Store → 202 → the queue trigger runs the job read back from Azurite → the phases
are searchable; duplicates; every bad input is a 4xx JSON error that leaves no
blob, message or job behind; the read, feedback and legacy routes; API keys.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from qdrant_client import QdrantClient

from functions.api import create_api
from rag_core.base.settings import ApiKey
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.store import point_id
from scripts.generate_screen_recording import RecordingSpec, still_frame
from tests.appkit import (
    analysis,
    app_context,
    app_settings,
    error_of,
    png,
    receive_all,
    run_queue,
    sample_records,
    storage_snapshot,
)
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    settings = app_settings(azurite, tmp_path_factory.mktemp("qdrant"))
    context = app_context(settings, local_embedder)
    with context.knowledge() as kb:
        for record in sample_records(4):
            kb.ingest(record)
    return context


def form(video_id: str, **fields: str) -> dict[str, str]:
    return {
        "video_url": f"https://www.tiktok.com/@test/live/{video_id}",
        "liver_id": "liver_test",
        "analysis": json.dumps(analysis(video_id), ensure_ascii=False),
        **fields,
    }


# ----------------------------------------------------------- store → done --
def test_store_multipart_runs_to_done_and_is_searchable(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    response = client.post(
        STORE,
        data=form("api-e2e-1", liver_name="テスト配信者"),
        files={"sales_image": ("sales.png", png(), "image/png")},
        headers={"Idempotency-Key": "e2e-1"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["video_id"] == "api-e2e-1" and not body["duplicate"]
    assert body["status_url"] == f"/api/v1/external/analysis/{body['job_id']}"
    assert client.get(body["status_url"]).json()["status"] == "queued"

    assert run_queue(ctx, functions) == 1
    job = client.get(body["status_url"]).json()
    assert job["status"] == "done", job
    assert job["result"]["inserted"] == 2 and job["attempts"] == 1
    assert any("sales image" in w for w in job["warnings"])  # a blank screenshot: nothing read, said so

    hits = client.post(
        "/api/v1/external/search", json={"query": "保湿クリームが今夜だけ二個で四千九百八十円", "k": 3}
    ).json()
    assert hits["results"][0]["video_id"] == "api-e2e-1"
    assert hits["results"][0]["gmv"] == 321000  # the analysis' own sales, not the (empty) OCR
    with ctx.knowledge() as kb:
        stream = kb.get_video("api-e2e-1")
    assert stream is not None and stream["liver_name"] == "テスト配信者"  # the form field wins


def test_duplicate_store_is_one_job(client: TestClient, ctx: AppContext) -> None:
    before = storage_snapshot(ctx)
    first = client.post(STORE, data=form("api-dup"), files={"sales_image": ("s.png", png(), "image/png")})
    second = client.post(STORE, data=form("api-dup"), files={"sales_image": ("s.png", png(), "image/png")})
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"] and second.json()["duplicate"]
    keyed = [client.post(STORE, data=form(f"api-key-{i}"), headers={"Idempotency-Key": "same-key"}) for i in (1, 1)]
    assert [r.status_code for r in keyed] == [202, 202], keyed[1].text
    assert keyed[0].json()["job_id"] == keyed[1].json()["job_id"]
    conflict = client.post(STORE, data=form("api-key-2"), headers={"Idempotency-Key": "same-key"})
    assert conflict.status_code == 409 and error_of(conflict)["code"] == "idempotency_conflict"
    after = storage_snapshot(ctx)
    assert len(after["jobs"]) - len(before["jobs"]) == 2
    assert after["messages"] - before["messages"] == 2
    for msg in receive_all(ctx, visibility_timeout=1):  # leave the queue as found for later tests
        ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)


def test_legacy_json_store(client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]) -> None:
    legacy = {
        "id": "api-legacy-1",
        "user_email": "a@example.jp",
        "liver_id": "liver_legacy",
        "sales_data": {"gmv": "￥150,000", "total_orders": 40},
        "report": {"phases": [{"behavior_label": "qna", "speech_text": "質問ありがとう", "duration_seconds": 60}]},
    }
    response = client.post(STORE, json=legacy)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["success"] is True and body["video_id"] == "api-legacy-1"
    assert body["point_ids"] == [point_id("api-legacy-1", 0)]
    run_queue(ctx, functions)
    assert client.get(body["status_url"]).json()["status"] == "done"
    with ctx.knowledge() as kb:
        stream = kb.get_video("api-legacy-1")
    assert stream is not None and stream["gmv"] == 150000 and stream["orders"] == 40


# -------------------------------------------------------------- bad input --
BIG = b"\x89PNG\r\n\x1a\n" + b"\0" * (11 * 1024 * 1024)


# fmt: off
BAD_STORES: list[tuple[str, Callable[[], dict[str, Any]], int, str | None]] = [
        (
            "missing liver_id",
            lambda: {"data": {k: v for k, v in form("bad-1").items() if k != "liver_id"}},
            422,
            "liver_id",
        ),
        ("wrong type", lambda: {"data": form("bad-2", stream_date="yesterday")}, 422, "stream_date"),
        ("http url", lambda: {"data": form("bad-3", video_url="http://www.tiktok.com/live/1")}, 422, "video_url"),
        ("host not https", lambda: {"data": form("bad-4", video_url="ftp://x/y")}, 422, "video_url"),
        ("malformed analysis", lambda: {"data": form("bad-5", analysis="{not json")}, 422, "analysis"),
        (
            "analysis field error",
            lambda: {
                "data": form("bad-6", analysis=json.dumps(analysis("bad-6", phases=[{"start_sec": 9, "end_sec": 1}])))
            },
            422,
            "analysis.phases.0.end_sec",
        ),
        (
            "image that is text",
            lambda: {
                "data": form("bad-7"),
                "files": {"sales_image": ("s.png", b"just some text, honest", "image/png")},
            },
            415,
            "sales_image",
        ),
        (
            "11 MB image",
            lambda: {"data": form("bad-8"), "files": {"sales_image": ("s.png", BIG, "image/png")}},
            413,
            None,
        ),
        (
            "no analysis no video",
            lambda: {"data": {k: v for k, v in form("bad-9").items() if k != "analysis"}},
            422,
            "video_id",
        ),
        (
            "unknown recording",
            lambda: {"data": form("bad-10", screen_recording="screen-recordings/none.mp4")},
            422,
            "screen_recording",
        ),
        (
            "recording path trick",
            lambda: {"data": form("bad-11", screen_recording="screen-recordings/../x")},
            422,
            "screen_recording",
        ),
        ("legacy json invalid", lambda: {"json": {"id": "bad-12", "phases": []}}, 422, "phases"),
        ("not json", lambda: {"content": b"{oops", "headers": {"content-type": "application/json"}}, 422, "body"),
        ("text/plain", lambda: {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "content-type"),
]
# fmt: on


@pytest.mark.parametrize(("name", "send", "status", "field"), BAD_STORES)
def test_bad_store_is_a_4xx_json_error_and_stores_nothing(
    client: TestClient, ctx: AppContext, name: str, send: Callable[[], dict[str, Any]], status: int, field: str | None
) -> None:
    before = storage_snapshot(ctx)
    response = client.post(STORE, **send())
    assert response.status_code == status, (name, response.text)
    error = error_of(response)
    if field is not None:
        assert error.get("field") == field, (name, error)
    assert storage_snapshot(ctx) == before, name


def test_unknown_job_ids_are_404_whatever_they_look_like(client: TestClient) -> None:
    """An unknown job is 404 however its id is spelled; ids Table Storage could not even take
    as a row key (``#``, ``?``, ``%2F``) are never looked up, so they cannot turn into a 500."""
    for job_id in ("00000000-0000-4000-8000-000000000000", "not-a-job", "a%23b", "x%3Fy", "a%2Fb", "x" * 200):
        response = client.get(f"/api/v1/external/analysis/{job_id}")
        assert response.status_code == 404 and error_of(response)["code"] == "not_found", job_id


# ------------------------------------------------------------------ reads --
def test_stats_have_new_and_legacy_keys(client: TestClient) -> None:
    body = client.get("/api/v1/external/stats").json()
    for key in (
        "total_gmv", "total_livers", "total_videos", "total_phases", "avg_cvr", "updated_at",
        "total_entries", "high_quality_entries", "phase_type_distribution", "average_quality_score",
        "avg_gmv_per_stream", "data_source_distribution",
    ):  # fmt: skip
        assert key in body, key
    assert body["total_entries"] == body["total_phases"] > 0 and body["total_gmv"] > 0


def test_liver_top_performers_and_prompt(client: TestClient) -> None:
    liver_id = sample_records(1)[0].liver_id
    summary = client.get(f"/api/v1/external/livers/{liver_id}")
    assert summary.status_code == 200 and summary.json()["videos"] >= 1
    missing = client.get("/api/v1/external/livers/nobody")
    assert missing.status_code == 404 and error_of(missing)["field"] == "liver_id"
    top = client.get("/api/v1/external/top-performers", params={"metric": "gmv", "limit": 2, "compare_to": liver_id})
    assert top.status_code == 200 and len(top.json()["top"]) <= 2 and top.json()["compare_to"] == liver_id
    bad_metric = client.get("/api/v1/external/top-performers", params={"metric": "likes"})
    assert bad_metric.status_code == 422 and error_of(bad_metric)["field"] == "metric"
    prompt = client.post("/api/v1/external/prompt", json={"speech_text": "今だけの価格です", "k": 2})
    assert prompt.status_code == 200 and prompt.json()["chars"] > 0


def test_search_validation(client: TestClient) -> None:
    empty = client.post("/api/v1/external/search", json={"k": 3})
    assert empty.status_code == 422 and "query" in error_of(empty)["message"]
    too_many = client.post("/api/v1/external/search", json={"query": "x", "k": 500})
    assert too_many.status_code == 422 and error_of(too_many)["field"] == "k"
    absent = client.post("/api/v1/external/search", json={"query": "x", "filters": {"phase_type": "giveaway"}})
    assert absent.status_code == 422 and error_of(absent)["code"] == "unknown_phase_type"
    assert "types present: " in error_of(absent)["message"]


def test_feedback_routes(client: TestClient) -> None:
    record = sample_records(1)[0]
    video, phase = record.video_id, record.phases[0].phase_index
    new = client.post("/api/v1/feedback", json={"video_id": video, "phase_index": phase, "rating": 5})
    assert new.status_code == 200 and new.json()["feedback_count"] == 1
    legacy = client.post("/api/v1/feedback/", json={"video_id": video, "phase_index": phase, "rating": -1})
    assert legacy.status_code == 200 and legacy.json()["success"] is True
    assert legacy.json()["new_quality_score"] < new.json()["new_quality_score"]  # -1 maps to 1 of 5
    rating = client.put(f"/api/v1/videos/{video}/phases/{phase}/rating", json={"rating": 4, "reviewer_name": "qa"})
    assert rating.status_code == 200 and rating.json()["feedback_count"] == 3
    assert (
        client.post("/api/v1/feedback/", json={"video_id": video, "phase_index": phase, "rating": 5}).status_code == 422
    )
    unknown = client.post("/api/v1/feedback", json={"video_id": "nope", "rating": 3})
    assert unknown.status_code == 404 and error_of(unknown)["code"] == "not_found"


def test_legacy_retrieval_routes(client: TestClient) -> None:
    similar = client.post(
        "/api/v1/external/retrieve/similar", json={"speech_text": "この価格は今日だけです", "top_k": 3}
    ).json()
    assert similar["success"] and similar["count"] == len(similar["results"]) == 3
    assert similar["results"][0]["visual_context"] == similar["results"][0]["description"]
    liver_id = sample_records(1)[0].liver_id
    history = client.post("/api/v1/external/retrieve/liver-history", json={"liver_id": liver_id, "top_k": 100}).json()
    dates = [h["stream_date"] for h in history["history"]]
    assert history["count"] >= 1 and dates == sorted(dates, reverse=True)
    top = client.post("/api/v1/external/retrieve/top-performers", json={"min_gmv": 0, "top_k": 5}).json()
    gmvs = [r["gmv"] for r in top["results"]]
    assert top["count"] == 5 and gmvs == sorted(gmvs, reverse=True)


def test_sales_json_attaches_to_a_stored_video(client: TestClient, ctx: AppContext) -> None:
    video = sample_records(2)[1].video_id
    body = {"video_id": video, "sales_summary": {"gmv": "1.2万", "total_orders": 7}, "products": []}
    response = client.post("/api/v1/external/sales/ingest-json", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["stored"] is True and response.json()["sales_data"]["gmv"] == 12000
    with ctx.knowledge() as kb:
        stream = kb.get_video(video)
    assert stream is not None and stream["gmv"] == 12000
    empty = client.post("/api/v1/external/sales/ingest-json", json={"note": "nothing"})
    assert empty.status_code == 422


def test_screenshot_route_refuses_text(client: TestClient) -> None:
    response = client.post(
        "/api/v1/external/sales/ingest-screenshot",
        data={"video_id": "v"},
        files={"screenshot": ("s.png", b"plain text", "image/png")},
    )
    assert response.status_code == 415 and error_of(response)["field"] == "screenshot"


def test_extract_frame_reads_the_overlay_of_a_screenshot(client: TestClient) -> None:
    spec = RecordingSpec(duration_sec=20)
    image, truth = still_frame(spec, 11.5)  # a purchase pop-up is on screen then
    assert truth["popup"]
    shot = io.BytesIO()
    image.save(shot, format="PNG")
    response = client.post(
        "/api/v1/external/metrics/extract-frame", files={"frame": ("f.png", shot.getvalue(), "image/png")}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    metrics = body["metrics"]
    assert (metrics["viewer_count"], metrics["likes"], metrics["comment_count"]) == (
        truth["viewers"],
        truth["likes"],
        truth["comments"],
    )
    [popup] = metrics["purchase_notifications"]
    assert popup.endswith("さんが購入しました")


def test_extract_frame_refuses_what_it_cannot_read(client: TestClient) -> None:
    route = "/api/v1/external/metrics/extract-frame"
    text = client.post(route, files={"frame": ("f.png", b"plain text", "image/png")})
    assert text.status_code == 415 and error_of(text)["field"] == "frame"
    blank = client.post(route, files={"frame": ("f.png", png(540, 960), "image/png")})
    assert blank.status_code == 422 and error_of(blank)["code"] == "unreadable", blank.text


# --------------------------------------------------------------- security --
@pytest.fixture(scope="module")
def keyed_client(ctx: AppContext) -> Iterator[TestClient]:
    keys = [
        ApiKey(name="ops", key="k-ops-0123456789abcdef"),
        ApiKey(name="brand7", key="k-brand7-0123456789abcdef", brand_id=7),
    ]
    settings = ctx.settings.model_copy(update={"api_keys": keys})
    with ctx.knowledge() as kb:
        keyed = AppContext(settings, kb=kb)
    with TestClient(create_api(lambda: keyed)) as test_client:
        yield test_client


def test_api_keys(keyed_client: TestClient) -> None:
    missing = keyed_client.get("/api/v1/external/stats")
    assert missing.status_code == 401 and error_of(missing)["code"] == "unauthorized"
    wrong = keyed_client.get("/api/v1/external/stats", headers={"X-API-Key": "k-ops-0123456789abcdeX"})
    assert wrong.status_code == 401
    assert keyed_client.post(STORE, json={"id": "x", "phases": [{}]}).status_code == 401
    ok = keyed_client.get("/api/v1/external/stats", headers={"X-API-Key": "k-ops-0123456789abcdef"})
    assert ok.status_code == 200 and ok.json()["total_videos"] > 0
    scoped = keyed_client.get("/api/v1/external/stats", headers={"X-API-Key": "k-brand7-0123456789abcdef"})
    assert scoped.status_code == 200 and scoped.json()["total_videos"] == 0  # brand 7 has nothing stored
    assert keyed_client.get("/api/v1/health").status_code == 200  # health needs no key


def test_brand_scoped_key_cannot_store_for_another_brand(keyed_client: TestClient) -> None:
    response = keyed_client.post(
        STORE, json=analysis("brand-x", brand_id=8), headers={"X-API-Key": "k-brand7-0123456789abcdef"}
    )
    assert response.status_code == 403 and error_of(response)["code"] == "forbidden"


def test_health_reports_an_unreachable_qdrant(ctx: AppContext, local_embedder: LocalE5Embedder) -> None:
    broken = KnowledgeBase(
        ctx.settings, client=QdrantClient(url="http://127.0.0.1:9", timeout=1), embedder=local_embedder
    )
    down = AppContext(ctx.settings, kb=broken)
    with TestClient(create_api(lambda: down)) as test_client:
        response = test_client.get("/api/v1/health")
    assert response.status_code == 503 and response.json() == {"status": "degraded", "qdrant": False, "storage": True}


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert "/api/v1/external/analysis/store" in spec["paths"]
    assert "X-API-Key" in json.dumps(spec["components"]["securitySchemes"])
    assert client.get("/api/docs").status_code == 200
