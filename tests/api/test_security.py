"""Security through the real entry points (ASGI app, blob and queue triggers) on Azurite and embedded Qdrant.

* Tenant isolation: a brand-scoped API key can neither see nor change another
  brand's videos through any route; an unscoped key sees every brand.
* SSRF: ``video_url`` is never fetched (a local server counts zero connections
  through store → job → done), and with ``VIDEO_URL_ALLOWED_HOSTS`` set, other
  hosts are refused with 422 naming the field.
* Path traversal: blob names with path tricks, from the store form or handed to
  the blob triggers, are refused and write nothing anywhere in the account.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from qdrant_client import models as qm

from functions.api import create_api
from rag_core.base.settings import ApiKey
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.ingestion.blob_intake import accept_inbox_file, accept_upload
from rag_core.ingestion.uploads import check_blob_name
from tests.appkit import (
    analysis,
    app_context,
    app_settings,
    error_of,
    input_stream,
    png,
    run_queue,
    storage_snapshot,
)
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"
OPS = {"X-API-Key": "k-ops-0123456789abcdef"}
BRAND_A = {"X-API-Key": "k-brand-a-0123456789abcdef"}
BRAND_B = {"X-API-Key": "k-brand-b-0123456789abcdef"}
KEYS = [
    ApiKey(name="ops", key=OPS["X-API-Key"]),
    ApiKey(name="brand-a", key=BRAND_A["X-API-Key"], brand_id=1),
    ApiKey(name="brand-b", key=BRAND_B["X-API-Key"], brand_id=2),
]

A_VIDEO, B_VIDEO = "tenant-a-1", "tenant-b-1"
A_TEXT = "ブランドAの日焼け止め、塗り心地を腕で見せながら紹介します"
B_TEXT = "ブランドBだけの秘密の美容液、今夜限定で九千八百円にします"


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    settings = app_settings(azurite, tmp_path_factory.mktemp("qdrant"), api_keys=KEYS)
    return app_context(settings, local_embedder)


def tenant_analysis(video_id: str, liver: str, text: str, gmv: int) -> dict[str, Any]:
    data = analysis(video_id, liver_id=liver, liver_name=liver.upper(), sales={"gmv": gmv, "orders": 10, "cvr": 2.0})
    data["phases"][1]["speech_text"] = text
    return data


@pytest.fixture(scope="module")
def tenants(client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]) -> dict[str, str]:
    """One video per brand, each stored through the API with its brand's key; their job ids."""
    jobs = {}
    for video, liver, text, gmv, key in (
        (A_VIDEO, "liver_a", A_TEXT, 100_000, BRAND_A),
        (B_VIDEO, "liver_b", B_TEXT, 900_000, BRAND_B),
    ):
        response = client.post(STORE, json=tenant_analysis(video, liver, text, gmv), headers=key)
        assert response.status_code == 202, response.text
        jobs[video] = response.json()["job_id"]
    assert run_queue(ctx, functions) == 2
    return jobs


def phase_payloads(ctx: AppContext, video_id: str) -> list[dict[str, Any]]:
    flt = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))])
    with ctx.knowledge() as kb:
        return [p.payload or {} for p in kb.store.scroll(kb.store.phases, flt)]


# ------------------------------------------------------------------ tenants --
def test_brand_id_is_on_every_point_and_stream(ctx: AppContext, tenants: dict[str, str]) -> None:
    for video, brand in ((A_VIDEO, 1), (B_VIDEO, 2)):
        payloads = phase_payloads(ctx, video)
        assert len(payloads) == 2 and all(p["brand_id"] == brand for p in payloads), payloads
        with ctx.knowledge() as kb:
            stream = kb.get_video(video)
        assert stream is not None and stream["brand_id"] == brand


def test_a_brand_key_neither_sees_nor_changes_another_brands_data(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]], tenants: dict[str, str]
) -> None:
    def get(path: str, **params: Any) -> Any:
        return client.get(f"/api/v1{path}", params=params, headers=BRAND_A)

    def post(path: str, body: dict[str, Any]) -> Any:
        return client.post(f"/api/v1{path}", json=body, headers=BRAND_A)

    # reads: stats, liver summaries, top performers, search, prompts, job status
    stats = get("/external/stats").json()
    assert (stats["total_videos"], stats["total_livers"], stats["total_gmv"]) == (1, 1, 100_000)
    assert get("/external/livers/liver_b").status_code == 404
    assert get("/external/livers/liver_a").json()["videos"] == 1
    for group_by in ("liver", "video"):
        top = get("/external/top-performers", group_by=group_by, compare_to="liver_b").json()
        assert {r["key"] for r in top["top"]} <= {"liver_a", A_VIDEO} and top["top"]
        assert top["target"] is None and all(p["video_id"] == A_VIDEO for p in top["example_phases"])
    searched = post("/external/search", {"query": B_TEXT, "k": 20}).json()["results"]
    similar = post("/external/retrieve/similar", {"speech_text": B_TEXT, "top_k": 20}).json()["results"]
    top_phases = post("/external/retrieve/top-performers", {"min_gmv": 0, "top_k": 50}).json()["results"]
    for results in (searched, similar, top_phases):
        assert results and {r["video_id"] for r in results} == {A_VIDEO}
    assert post("/external/retrieve/liver-history", {"liver_id": "liver_b"}).json()["count"] == 0
    prompt = post("/external/prompt", {"speech_text": B_TEXT, "liver_id": "liver_b", "k": 5}).json()
    assert {h["video_id"] for h in prompt["similar"]} == {A_VIDEO}
    assert "九千八百円にします" not in prompt["text"].replace(B_TEXT, "", 1)  # only the asked-for text itself
    assert "LIVER_B" not in prompt["text"] and "900,000" not in prompt["text"]
    assert get(f"/external/analysis/{tenants[B_VIDEO]}").status_code == 404
    assert get(f"/external/analysis/{tenants[A_VIDEO]}").json()["status"] == "done"

    # writes: feedback (three routes), sales attach, deletion, a store under B's video id
    phase = {"video_id": B_VIDEO, "phase_index": 1}
    assert post("/feedback", {**phase, "rating": 1}).status_code == 404
    assert post("/feedback/", {**phase, "rating": -1}).status_code == 404
    rated = client.put(f"/api/v1/videos/{B_VIDEO}/phases/1/rating", json={"rating": 1}, headers=BRAND_A)
    assert rated.status_code == 404 and error_of(rated)["code"] == "not_found"
    attach = post("/external/sales/ingest-json", {"video_id": B_VIDEO, "gmv": 1, "total_orders": 1})
    assert attach.status_code == 200 and attach.json()["stored"] is False
    deleted = client.delete(f"/api/v1/external/videos/{B_VIDEO}", headers=BRAND_A)
    unknown = client.delete("/api/v1/external/videos/tenant-none", headers=BRAND_A)
    assert deleted.status_code == unknown.status_code == 404
    assert error_of(deleted) == {**error_of(unknown), "message": f"no video {B_VIDEO!r}"}, "B's video looks unknown"
    # video ids are per brand: A storing B's id stores A's own video, and B's is untouched
    own = client.post(STORE, json=tenant_analysis(B_VIDEO, "liver_a", "乗っ取り", 1), headers=BRAND_A)
    assert own.status_code == 202
    assert run_queue(ctx, functions) == 1
    assert get(f"/external/analysis/{own.json()['job_id']}").json()["status"] == "done"
    assert get(f"/external/videos/{B_VIDEO}").json()["liver_id"] == "liver_a"
    assert get("/external/stats").json()["total_videos"] == 2
    mine = client.delete(f"/api/v1/external/videos/{B_VIDEO}", headers=BRAND_A)
    assert mine.status_code == 200 and mine.json()["deleted_jobs"] == [own.json()["job_id"]]

    # B's video is untouched: same points, same texts, no feedback, same sales, its job kept
    payloads = phase_payloads(ctx, B_VIDEO)
    assert len(payloads) == 2 and {p["speech_text"] for p in payloads} >= {B_TEXT}
    assert all(p["feedback_count"] == 0 and p["gmv"] == 900_000 and p["brand_id"] == 2 for p in payloads)
    status = client.get(f"/api/v1/external/analysis/{tenants[B_VIDEO]}", headers=BRAND_B)
    assert status.status_code == 200
    assert client.get("/api/v1/external/stats", headers=BRAND_B).json()["total_videos"] == 1


def test_an_unscoped_key_sees_every_brand(client: TestClient, tenants: dict[str, str]) -> None:
    stats = client.get("/api/v1/external/stats", headers=OPS).json()
    assert (stats["total_videos"], stats["total_livers"]) == (2, 2)
    hits = client.post("/api/v1/external/search", json={"query": B_TEXT, "k": 20}, headers=OPS).json()["results"]
    assert hits[0]["video_id"] == B_VIDEO and {h["video_id"] for h in hits} == {A_VIDEO, B_VIDEO}
    for job_id in tenants.values():
        assert client.get(f"/api/v1/external/analysis/{job_id}", headers=OPS).status_code == 200
    for liver in ("liver_a", "liver_b"):
        assert client.get(f"/api/v1/external/livers/{liver}", headers=OPS).status_code == 200


def test_a_brand_key_cannot_use_another_brands_recording(client: TestClient, ctx: AppContext) -> None:
    """A recording marked for brand B answers like a missing one to brand A (no read, no probe)."""
    name = "screen-recordings/tenant-b-1/stream.mp4"
    ctx.storage.container(ctx.settings.uploads_container).upload_blob(
        name, b"recording of brand b", metadata={"brand_id": "2"}
    )
    before = storage_snapshot(ctx)
    fields = {"video_url": "https://www.tiktok.com/@a/live/1", "liver_id": "liver_a", "video_id": A_VIDEO}
    borrowed = client.post(STORE, data={**fields, "screen_recording": name}, headers=BRAND_A)
    missing = client.post(STORE, data={**fields, "screen_recording": name + ".none"}, headers=BRAND_A)
    assert borrowed.status_code == missing.status_code == 422
    assert error_of(borrowed)["field"] == error_of(missing)["field"] == "screen_recording"
    assert storage_snapshot(ctx) == before


def test_a_brand_key_deletes_its_own_video_only(client: TestClient, ctx: AppContext, tenants: dict[str, str]) -> None:
    response = client.delete(f"/api/v1/external/videos/{A_VIDEO}", headers=BRAND_A)
    assert response.status_code == 200, response.text
    assert response.json()["deleted_points"] == 2 and tenants[A_VIDEO] in response.json()["deleted_jobs"]
    assert phase_payloads(ctx, A_VIDEO) == [] and len(phase_payloads(ctx, B_VIDEO)) == 2
    assert client.get("/api/v1/external/stats", headers=OPS).json()["total_videos"] == 1


# --------------------------------------------------------------------- SSRF --
class CountingServer(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 that counts every connection made to it (TLS attempts too)."""

    connections = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"video bytes")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def target() -> Iterator[CountingServer]:
    server = CountingServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


def test_video_url_is_never_fetched(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]], target: CountingServer
) -> None:
    port = target.server_address[1]
    record = analysis("ssrf-form", video_url=f"https://127.0.0.1:{port}/in-analysis.mp4")
    form = {
        "video_url": f"https://127.0.0.1:{port}/live.mp4",
        "liver_id": "liver_ssrf",
        "analysis": json.dumps(record, ensure_ascii=False),
    }
    stored = client.post(STORE, data=form, files={"sales_image": ("s.png", png(), "image/png")}, headers=OPS)
    legacy = analysis("ssrf-json", video_url=f"https://127.0.0.1:{port}/legacy.mp4")
    stored_json = client.post(STORE, json=legacy, headers=OPS)
    assert stored.status_code == stored_json.status_code == 202, (stored.text, stored_json.text)

    assert run_queue(ctx, functions) == 2
    for response in (stored, stored_json):
        job = client.get(response.json()["status_url"], headers=OPS).json()
        assert job["status"] == "done", job
    with ctx.knowledge() as kb:
        form_stream, json_stream = kb.store.get_stream("ssrf-form"), kb.store.get_stream("ssrf-json")
    assert form_stream is not None and form_stream["record"]["video_url"] == form["video_url"]  # stored, not fetched
    assert json_stream is not None and json_stream["record"]["video_url"] == legacy["video_url"]
    assert target.connections == 0
    urllib.request.urlopen(f"http://127.0.0.1:{port}/probe", timeout=5).read()
    assert target.connections == 1, "the counter itself sees a fetch"
    with ctx.knowledge() as kb:
        kb.delete_video("ssrf-form")
        kb.delete_video("ssrf-json")


@pytest.fixture(scope="module")
def allow_listed(ctx: AppContext) -> Iterator[TestClient]:
    """The same app with VIDEO_URL_ALLOWED_HOSTS=["tiktok.com"]."""
    settings = ctx.settings.model_copy(update={"video_url_allowed_hosts": ["tiktok.com"]})
    with ctx.knowledge() as kb:
        restricted = AppContext(settings, kb=kb)
    with TestClient(create_api(lambda: restricted)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8080/live.mp4",
        "https://localhost/live.mp4",
        "https://169.254.169.254/metadata",
        "https://tiktok.com.evil.example/live",
        "https://www.tiktok.com@127.0.0.1/live",
        "https://evil.example/?next=https://www.tiktok.com/",
        "https://evil.example#www.tiktok.com",
        "https://nottiktok.com/live",
    ],
)
def test_a_host_off_the_allow_list_is_refused(
    allow_listed: TestClient, ctx: AppContext, target: CountingServer, url: str
) -> None:
    before = storage_snapshot(ctx)
    form = {"video_url": url, "liver_id": "liver_ssrf", "analysis": json.dumps(analysis("ssrf-refused"))}
    by_form = allow_listed.post(STORE, data=form, headers=OPS)
    by_json = allow_listed.post(STORE, json=analysis("ssrf-refused", video_url=url), headers=OPS)
    for response in (by_form, by_json):
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["field"] == "video_url" and "not allowed" in error["message"], error
    assert storage_snapshot(ctx) == before
    assert target.connections == 0


def test_an_allow_listed_host_is_accepted(allow_listed: TestClient, ctx: AppContext) -> None:
    for n, url in enumerate(("https://www.tiktok.com/@x/live/1", "https://TikTok.com/@x/live/2")):
        form = {"video_url": url, "liver_id": "liver_ssrf", "analysis": json.dumps(analysis(f"ssrf-ok-{n}"))}
        assert allow_listed.post(STORE, data=form, headers=OPS).status_code == 202
    queue = ctx.storage.queue(ctx.settings.ingest_queue)
    for msg in queue.receive_messages(max_messages=32):  # leave nothing for later tests
        queue.delete_message(msg)


# ------------------------------------------------------------ path traversal --
TRICKS = [
    "{prefix}../x",
    "{prefix}../../etc/passwd",
    "{prefix}a/../../jobs/j/sales.png",
    "{prefix}./x.png",
    "{prefix}/etc/passwd",
    "{prefix}a\\..\\..\\x.png",
    "{prefix}..%2F..%2Fjobs%2Fj%2Fsales.png",
    "{prefix}%2e%2e/x.png",
    "{prefix}x.png%00.txt",
    "{prefix}x\x00.png",
]


def account_snapshot(ctx: AppContext) -> dict[str, list[str]]:
    """Every blob of every container in the storage account: a write anywhere shows."""
    service = ctx.storage.blobs
    return {
        c.name: sorted(b.name for b in service.get_container_client(c.name).list_blobs())
        for c in service.list_containers()
    }


@pytest.mark.parametrize(
    "name",
    [
        *(t.format(prefix="screen-recordings/") for t in TRICKS),
        "sales/../../etc/passwd",
        "/etc/passwd",
        "../screen-recordings/x.mp4",
        "screen-recordings\\x.mp4",
        "screen-recordings/",
    ],
)
def test_store_refuses_a_recording_reference_with_path_tricks(client: TestClient, ctx: AppContext, name: str) -> None:
    before = storage_snapshot(ctx), account_snapshot(ctx)
    form = {
        "video_url": "https://www.tiktok.com/@x/live/1",
        "liver_id": "liver_x",
        "video_id": "trick",
        "screen_recording": name,
    }
    response = client.post(STORE, data=form, headers=OPS)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == "screen_recording"
    assert (storage_snapshot(ctx), account_snapshot(ctx)) == before


@pytest.mark.parametrize(
    ("trigger", "name"),
    [
        *(("sales_upload", t.format(prefix="sales/")) for t in TRICKS),
        *(("screen_recording_upload", t.format(prefix="screen-recordings/")) for t in TRICKS),
    ],
)
def test_upload_triggers_refuse_names_with_path_tricks(
    ctx: AppContext, functions: dict[str, Callable[..., Any]], trigger: str, name: str
) -> None:
    before = storage_snapshot(ctx), account_snapshot(ctx)
    functions[trigger](input_stream(ctx.settings.uploads_container, name, png(), {"video_id": "trick"}))
    assert accept_upload(ctx, name, 100) is None
    assert (storage_snapshot(ctx), account_snapshot(ctx)) == before, "no job, no message, no blob"


@pytest.mark.parametrize(
    "name",
    [
        *(t.format(prefix="") for t in TRICKS),
        "batch/../../uploads-x/jobs/j/analysis.json",
        "a\\b.json",
    ],
)
@pytest.mark.parametrize("valid", [True, False])
def test_inbox_trigger_refuses_names_with_path_tricks(
    ctx: AppContext, functions: dict[str, Callable[..., Any]], name: str, valid: bool
) -> None:
    """Valid or not, the file submits nothing and is not copied to the rejected container."""
    data = json.dumps(analysis("trick") if valid else {"video_id": "trick", "phases": []}).encode()
    before = storage_snapshot(ctx), account_snapshot(ctx)
    functions["inbox_file"](input_stream(ctx.settings.inbox_container, name, data))
    result = accept_inbox_file(ctx, name, data)
    assert result.rejected and result.problems[0]["field"] == "name" and not result.job_ids
    assert (storage_snapshot(ctx), account_snapshot(ctx)) == before, "no job, no message, no blob"


@pytest.mark.parametrize(
    "name", ["sales/v1.png", "sales/v1/shot 2.png", "sales/50%off.png", "sales/配信/売上.jpg", "sales/a.b/c..png"]
)
def test_plain_blob_names_pass(name: str) -> None:
    assert check_blob_name(name, prefix="sales/") == name
