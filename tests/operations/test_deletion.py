"""``DELETE /api/v1/external/videos/{video_id}`` through the ASGI app, on real Azurite and embedded Qdrant.

A video stored the way callers store one (multipart with a sales screenshot and a
referenced screen recording, plus screenshots and recordings dropped into
uploads for it) is deleted; afterwards nothing of it, and none of the personal
data it carried (the submitter's e-mail, the transcript, viewers' comments), is
left in Qdrant, Blob or Table storage, while a second video stays intact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from qdrant_client import models as qm

from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from tests.appkit import analysis, app_context, app_settings, input_stream, png, run_queue
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"
VIDEOS = "/api/v1/external/videos"
VIDEO = "del-video-1"
KEPT = "del-video-2"
EMAIL = "taro.yamada@example.jp"
TRANSCRIPT = "削除テスト専用の台詞です、ユニコーンの角のような限定美容液を今夜だけご案内します"
COMMENT = "視聴者さくらのコメント：送料はいくらですか"


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    return app_context(app_settings(azurite, tmp_path_factory.mktemp("qdrant")), local_embedder)


def personal_analysis(video_id: str, speech: str, email: str, comment: str) -> dict[str, Any]:
    """An analysis carrying every kind of personal data: e-mail, transcript, a viewer's comment."""
    data = analysis(video_id, user_email=email, screen_metrics={"viewer_count": 120, "comments": [comment]})
    data["phases"][1]["speech_text"] = speech
    return data


def store(
    client: TestClient, video_id: str, speech: str, email: str = EMAIL, comment: str = COMMENT, **fields: str
) -> dict[str, Any]:
    response = client.post(
        STORE,
        data={
            "video_url": f"https://www.tiktok.com/@test/live/{video_id}",
            "liver_id": "liver_del",
            "analysis": json.dumps(personal_analysis(video_id, speech, email, comment), ensure_ascii=False),
            **fields,
        },
        files={"sales_image": ("sales.png", png(), "image/png")},
    )
    assert response.status_code == 202, response.text
    return dict(response.json())


def points_of(ctx: AppContext, video_id: str) -> list[dict[str, Any]]:
    flt = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))])
    with ctx.knowledge() as kb:
        return [p.payload or {} for p in kb.store.scroll(kb.store.phases, flt)]


def blobs(ctx: AppContext) -> dict[str, bytes]:
    uploads = ctx.storage.container(ctx.settings.uploads_container)
    return {b.name: uploads.download_blob(b.name).readall() for b in uploads.list_blobs()}


def job_rows(ctx: AppContext) -> list[str]:
    """Every job entity as text, so a search for personal data covers every column."""
    rows = ctx.storage.table(ctx.settings.jobs_table).list_entities()
    return [json.dumps(dict(row), ensure_ascii=False, default=str) for row in rows]


def mentions(data: bytes | str, *needles: str) -> bool:
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    return any(n in text for n in needles)


def test_delete_removes_every_trace_of_the_video(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    s = ctx.settings
    uploads = ctx.storage.container(s.uploads_container)
    recording = f"screen-recordings/{VIDEO}/stream.mp4"
    uploads.upload_blob(recording, b"not really a video")
    stored = store(client, VIDEO, TRANSCRIPT, screen_recording=recording)
    kept = store(client, KEPT, "残る配信の台詞、日焼け止めの塗り方を見せます", "hanako@example.jp", "別の視聴者の質問")
    assert run_queue(ctx, functions) == 2
    assert client.get(stored["status_url"]).json()["status"] == "done"
    # Files dropped into uploads for the stored video, as the platform does: each its own job.
    extra = {f"sales/{VIDEO}/products.png": png(), f"screen-recordings/{VIDEO}.mp4": b"still not a video"}
    for name, data in extra.items():
        uploads.upload_blob(name, data)
        trigger = "sales_upload" if name.startswith("sales/") else "screen_recording_upload"
        functions[trigger](input_stream(s.uploads_container, name, data))
    assert run_queue(ctx, functions) == 2  # both fail (nothing readable) and are consumed

    stats_before = client.get("/api/v1/external/stats").json()
    assert {p["brand_id"] for p in points_of(ctx, VIDEO)} == {None} and len(points_of(ctx, VIDEO)) == 2
    with ctx.knowledge() as kb:
        stream = kb.get_video(VIDEO)
    assert stream is not None and EMAIL in json.dumps(stream, ensure_ascii=False)
    assert COMMENT in json.dumps(stream, ensure_ascii=False)
    assert any(mentions(data, EMAIL, TRANSCRIPT) for data in blobs(ctx).values()), "the job input holds them"
    jobs = ctx.jobs.for_video(VIDEO)
    assert len(jobs) == 3
    kept_blobs = {n: d for n, d in blobs(ctx).items() if n.startswith(f"jobs/{kept['job_id']}/")}
    assert len(kept_blobs) == 2

    response = client.delete(f"{VIDEOS}/{VIDEO}")

    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["video_id"] == VIDEO and summary["deleted_points"] == 2 and summary["deleted_stream"] is True
    assert sorted(summary["deleted_jobs"]) == sorted(j.job_id for j in jobs)
    assert set(summary["deleted_blobs"]) == {
        f"jobs/{stored['job_id']}/analysis.json",
        f"jobs/{stored['job_id']}/sales.png",
        recording,
        *extra,
    }
    # Nothing of the video is left: not in Qdrant...
    assert points_of(ctx, VIDEO) == []
    with ctx.knowledge() as kb:
        assert kb.get_video(VIDEO) is None
    hits = client.post("/api/v1/external/search", json={"query": TRANSCRIPT, "k": 50}).json()["results"]
    assert hits and all(h["video_id"] != VIDEO for h in hits)
    stats = client.get("/api/v1/external/stats").json()
    assert stats["total_videos"] == stats_before["total_videos"] - 1
    assert stats["total_phases"] == stats_before["total_phases"] - 2
    # ...nor in Blob storage (by name or by content), nor in Table storage.
    remaining = blobs(ctx)
    assert not [n for n, d in remaining.items() if VIDEO in n or mentions(d, VIDEO, EMAIL, TRANSCRIPT, COMMENT)]
    assert ctx.jobs.for_video(VIDEO) == []
    assert not [row for row in job_rows(ctx) if mentions(row, VIDEO, EMAIL, TRANSCRIPT)]
    gone = client.get(stored["status_url"])
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    # The other video keeps everything.
    assert len(points_of(ctx, KEPT)) == 2
    assert client.get(kept["status_url"]).json()["status"] == "done"
    assert {n: d for n, d in remaining.items() if n.startswith(f"jobs/{kept['job_id']}/")} == kept_blobs


def test_deleting_an_unknown_or_already_deleted_video_is_a_404(client: TestClient) -> None:
    for video_id in ("never-stored", VIDEO):
        response = client.delete(f"{VIDEOS}/{video_id}")
        assert response.status_code == 404, response.text
        assert response.json() == {
            "error": {"code": "not_found", "message": f"no video {video_id!r}", "field": "video_id"}
        }


def test_a_video_known_only_by_a_failed_job_can_be_deleted(
    client: TestClient, ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    """A screenshot for a video never stored: its job and blob hold data too, so they can be removed."""
    name = "sales/del-never-stored.png"
    ctx.storage.container(ctx.settings.uploads_container).upload_blob(name, png())
    functions["sales_upload"](input_stream(ctx.settings.uploads_container, name, png()))
    jobs = ctx.jobs.for_video("del-never-stored")
    assert len(jobs) == 1
    for msg in ctx.storage.queue(ctx.settings.ingest_queue).receive_messages(max_messages=32):
        ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)  # no delivery needed here

    response = client.delete(f"{VIDEOS}/del-never-stored")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "video_id": "del-never-stored",
        "deleted_points": 0,
        "deleted_stream": False,
        "deleted_jobs": [jobs[0].job_id],
        "deleted_blobs": [name],
    }


def test_delete_route_is_documented(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    operation = spec["paths"]["/api/v1/external/videos/{video_id}"]["delete"]
    assert {"200", "401", "404"} <= set(operation["responses"])
