"""The queue, blob and HTTP functions called directly with real azure.functions objects, and the
no-host local worker, on real Azurite and embedded Qdrant."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage as TriggerMessage
from fastapi.testclient import TestClient

from functions.api import create_api
from functions.local_host import LocalWorker
from rag_core.analysis.record import Phase, PhaseScreenSummary, parse_analysis
from rag_core.base.settings import Settings, load_settings
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.ingestion.submission import submit_job
from rag_core.jobs.records import JobKind, JobMessage, JobStatus, job_id_for
from rag_core.knowledge.schemas import SearchRequest
from rag_core.knowledge.store import VideoNotFoundError, point_id
from rag_core.screen.summary import summarise_for_phases
from scripts.generate_screen_recording import RecordingSpec, generate
from tests.appkit import (
    ROOT,
    analysis,
    app_context,
    app_settings,
    input_stream,
    png,
    run_queue,
    storage_snapshot,
)
from tests.azurite import Azurite


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    return app_context(app_settings(azurite, tmp_path_factory.mktemp("qdrant")), local_embedder)


SHOT = ROOT / "tests" / "data" / "sales_screenshots" / "00_cards_light_png.png"
RECORDING = RecordingSpec(duration_sec=30, width=360, height=640)  # short and small: the test stays quick
RECORDED_PHASES: list[
    dict[str, Any]
] = [  # two phases splitting the 30 s recording, so each gets its own share of the series
    {"phase_index": 0, "phase_type": "opening", "start_sec": 0, "end_sec": 14, "speech_text": "こんばんは、始めます"},
    {"phase_index": 1, "phase_type": "product_demo", "start_sec": 14, "speech_text": "この美容液を見てください"},
]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, Any]]:
    """A generated screen recording and its truth (what every frame's overlay shows)."""
    video = tmp_path_factory.mktemp("recording") / "stream.mp4"
    truth = json.loads(generate(video, RECORDING).read_text(encoding="utf-8"))
    return video.read_bytes(), truth


def _shown_at(truth: dict[str, Any], t_sec: float) -> dict[str, Any]:
    """The truth row of the frame shown at ``t_sec``."""
    frames = truth["frames"]
    return dict(frames[min(len(frames) - 1, round(t_sec * truth["spec"]["fps"]))])


def _job(ctx: AppContext, job_id: str) -> Any:
    job = ctx.jobs.get(job_id)
    assert job is not None
    return job


def _ghost_job(ctx: AppContext, video_id: str) -> JobMessage:
    """A sales-screenshot job for a video that is never stored: it fails on every delivery."""
    blob = f"jobs/{video_id}/sales.png"
    message = JobMessage(
        job_id=job_id_for("test", video_id), kind=JobKind.EXTRACT_SALES, video_id=video_id, sales_image_blob=blob
    )
    submit_job(ctx, message, {blob: png()}, source="test")
    return message


def _upload(ctx: AppContext, functions: dict[str, Callable[..., Any]], trigger: str, name: str, data: bytes) -> Any:
    """Drop a file into uploads, fire its blob trigger, drain the queue; the job it made.

    The one message is consumed (``run_queue`` would raise if the worker did), as the host
    does when the trigger returns.
    """
    ctx.storage.container(ctx.settings.uploads_container).upload_blob(name, data)
    functions[trigger](input_stream(ctx.settings.uploads_container, name, data))
    assert run_queue(ctx, functions) == 1
    return _job(ctx, job_id_for("upload", name, len(data)))


# ------------------------------------------------------------------ wiring --
def test_function_app_registers_every_function() -> None:
    import function_app
    from rag_core.context import default_context

    bindings = {
        f.get_function_name(): {b["type"]: b for b in json.loads(f.get_function_json())["bindings"]}
        for f in function_app.app.get_functions()  # the function.json the host indexes
    }
    assert bindings["http_app_func"]["httpTrigger"]["route"] == "/{*route}"
    assert bindings["http_app_func"]["httpTrigger"]["authLevel"] == "FUNCTION"
    assert bindings["ingest_job"]["queueTrigger"]["queueName"] == "%INGEST_QUEUE%"
    assert bindings["inbox_file"]["blobTrigger"]["path"] == "%INBOX_CONTAINER%/{name}"
    assert bindings["sales_upload"]["blobTrigger"]["path"] == "%UPLOADS_CONTAINER%/sales/{name}"
    assert bindings["screen_recording_upload"]["blobTrigger"]["path"] == "%UPLOADS_CONTAINER%/screen-recordings/{name}"
    assert {b["blobTrigger"]["source"] for n, b in bindings.items() if "blobTrigger" in b} == {"EventGrid"}
    assert bindings["qdrant_snapshot"]["timerTrigger"]["schedule"] == "%SNAPSHOT_SCHEDULE%"
    assert bindings["stuck_job_sweep"]["timerTrigger"]["schedule"] == "0 */10 * * * *"
    assert default_context.cache_info().currsize == 0, "importing function_app must not open storage or Qdrant"


def test_http_function_serves_the_api(functions: dict[str, Callable[..., Any]]) -> None:
    request = func.HttpRequest(method="GET", url="http://localhost:7071/api/v1/external/stats", headers={}, body=b"")
    response = asyncio.run(functions["http_app_func"](request, None))
    assert response.status_code == 200 and "total_gmv" in json.loads(response.get_body())
    bad = func.HttpRequest(
        method="POST",
        url="http://localhost:7071/api/v1/external/search",
        headers={"content-type": "application/json"},
        body=b"[1,",
    )
    response = asyncio.run(functions["http_app_func"](bad, None))
    assert response.status_code == 422 and json.loads(response.get_body())["error"]["code"] == "invalid_request"


def test_host_json_and_local_settings_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["extensionBundle"]["version"].startswith("[4.")
    assert host["extensions"]["queues"]["maxDequeueCount"] == Settings.model_fields["max_dequeue_count"].default
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    assert example["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert example["FUNCTIONS_WORKER_RUNTIME"] == "python"
    # "" would not parse for these
    must_stay_unset = {"embedding_dimensions", "embedding_workers", "tessdata_dir", "backfill_api_token"}
    named = {k.lower() for k in example}
    for name, field in Settings.model_fields.items():
        aliases = [str(a).lower() for a in getattr(field.validation_alias, "choices", [])] or [name]
        assert (name in must_stay_unset) != any(a in named for a in aliases), name
    shutil.copy(ROOT / "local.settings.example.json", tmp_path / "local.settings.json")
    monkeypatch.chdir(tmp_path)
    for key in [*example, "COLLECTION_NAME", "STORAGE_CONNECTION_STRING"]:
        monkeypatch.delenv(key, raising=False)
    loaded = load_settings()
    assert loaded.embedding_provider == "local" and loaded.storage_connection_string == "UseDevelopmentStorage=true"
    assert loaded.ingest_queue == "ingest-jobs" and loaded.api_keys == [] and not loaded.qdrant_url


# ------------------------------------------------------------------- queue --
def test_queue_trigger_marks_the_job_failed_on_the_last_delivery(
    ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    message = _ghost_job(ctx, "ghost-trigger")
    body = message.model_dump_json().encode()
    for attempt in range(1, ctx.settings.max_dequeue_count + 1):
        with pytest.raises(VideoNotFoundError):
            functions["ingest_job"](TriggerMessage(id=f"m{attempt}", body=body, dequeue_count=attempt))
        job = _job(ctx, message.job_id)
        if attempt < ctx.settings.max_dequeue_count:
            assert job.status == JobStatus.QUEUED and job.error.startswith(f"attempt {attempt} failed")
    assert job.status == JobStatus.FAILED and job.attempts == ctx.settings.max_dequeue_count
    assert "failed after 5 attempts: VideoNotFoundError" in job.error and "not stored yet" in job.error
    queue = ctx.storage.queue(ctx.settings.ingest_queue)
    for msg in queue.receive_messages(max_messages=5):  # what the host does now: off to the poison queue
        queue.delete_message(msg)


def test_local_worker_moves_an_always_failing_message_to_poison(ctx: AppContext) -> None:
    message = _ghost_job(ctx, "ghost-local")
    worker = LocalWorker(ctx, retry_delay=0)
    poison = ctx.storage.queue(f"{ctx.settings.ingest_queue}-poison")
    for _ in range(3 * ctx.settings.max_dequeue_count):
        if poison.peek_messages(max_messages=1):
            break
        worker.poll_once()
    poisoned = [JobMessage.model_validate_json(m.content) for m in poison.receive_messages(max_messages=5)]
    assert [m.job_id for m in poisoned] == [message.job_id]
    assert "VideoNotFoundError" in (poisoned[0].poison_reason or "")
    job = _job(ctx, message.job_id)
    assert job.status == JobStatus.FAILED and "failed after 5 attempts" in job.error
    assert ctx.storage.queue(ctx.settings.ingest_queue).peek_messages(max_messages=1) == []


def test_redelivery_of_a_done_job_changes_nothing(ctx: AppContext, functions: dict[str, Callable[..., Any]]) -> None:
    blob = "jobs/redeliver/analysis.json"
    message = JobMessage(
        job_id=job_id_for("test", "redeliver"),
        kind=JobKind.INGEST_ANALYSIS,
        video_id="redeliver",
        analysis_blob=blob,
    )
    submit_job(ctx, message, {blob: json.dumps(analysis("redeliver")).encode()}, source="test")
    run_queue(ctx, functions)
    done = _job(ctx, message.job_id)
    assert done.status == JobStatus.DONE and done.result["inserted"] == 2
    functions["ingest_job"](TriggerMessage(id="again", body=message.model_dump_json().encode(), dequeue_count=2))
    assert _job(ctx, message.job_id) == done


# ------------------------------------------------------------------- blobs --
def test_inbox_drop_of_a_good_and_a_bad_file(ctx: AppContext, functions: dict[str, Callable[..., Any]]) -> None:
    s = ctx.settings
    good = "\n".join(json.dumps(analysis(f"inbox-{i}"), ensure_ascii=False) for i in (1, 2)).encode()
    bad = json.dumps([analysis("inbox-3"), analysis("inbox-4", phases=[{"start_sec": 5, "end_sec": 1}])]).encode()
    inbox = ctx.storage.container(s.inbox_container)
    inbox.upload_blob("batch/good.jsonl", good)
    inbox.upload_blob("bad.json", bad)
    before = storage_snapshot(ctx)

    functions["inbox_file"](input_stream(s.inbox_container, "bad.json", bad))
    assert storage_snapshot(ctx) == before, "an invalid file enqueues nothing"
    rejected = ctx.storage.container(s.rejected_container)
    assert rejected.download_blob("bad.json").readall() == bad
    report = json.loads(rejected.download_blob("bad.json.error.json").readall())
    assert {(p["record"], p["field"]) for p in report["problems"]} == {(2, "phases.0.end_sec")}
    assert [b.name for b in inbox.list_blobs()] == ["batch/good.jsonl"]

    functions["inbox_file"](input_stream(s.inbox_container, "batch/good.jsonl", good))
    functions["inbox_file"](input_stream(s.inbox_container, "batch/good.jsonl", good))  # replayed trigger
    assert run_queue(ctx, functions) == 2
    with ctx.knowledge() as kb:
        hits = kb.search(SearchRequest(query="保湿クリーム 四千九百八十円", k=10))
    assert {"inbox-1", "inbox-2"} <= {h.video_id for h in hits}


def test_local_worker_ingests_an_inbox_drop(ctx: AppContext) -> None:
    inbox = ctx.storage.container(ctx.settings.inbox_container)
    data = json.dumps(analysis("worker-drop"), ensure_ascii=False).encode()
    inbox.upload_blob("worker-drop.json", data)
    worker = LocalWorker(ctx, retry_delay=0)
    assert worker.poll_once() >= 1
    job = _job(ctx, job_id_for("inbox", "worker-drop.json", hashlib.sha256(data).hexdigest(), 1))
    assert job.status == JobStatus.DONE and job.source == "inbox"
    assert worker.poll_once() == 0, "a blob already handled is not submitted again"


def test_screen_recording_upload_attaches_metrics_without_reembedding(
    ctx: AppContext, functions: dict[str, Callable[..., Any]], recording: tuple[bytes, dict[str, Any]]
) -> None:
    """A recording dropped for a stored video: the series and per-phase summaries land on its
    points through a payload-only rewrite, so no embedding call is made and no vector moves."""
    data, truth = recording
    video_id = "recorded-e2e"
    with ctx.knowledge() as kb:
        kb.ingest(parse_analysis(analysis(video_id, phases=RECORDED_PHASES)))
        ids = [point_id(video_id, p["phase_index"]) for p in RECORDED_PHASES]
        vectors = {p.id: p.vector for p in kb.client.retrieve(ctx.settings.qdrant_collection, ids, with_vectors=True)}
        usage = (kb.embedder.usage.calls, kb.embedder.usage.texts)
    job = _upload(ctx, functions, "screen_recording_upload", f"screen-recordings/{video_id}/stream.mp4", data)
    assert job.kind == JobKind.EXTRACT_SCREEN and job.video_id == video_id
    assert job.status == JobStatus.DONE, job.error
    assert (job.result["payload_updated"], job.result["embedded"], job.result["updated"]) == (2, 0, 0)
    with ctx.knowledge() as kb:
        assert (kb.embedder.usage.calls, kb.embedder.usage.texts) == usage, "no embedding call for an outcome"
        points = kb.client.retrieve(ctx.settings.qdrant_collection, ids, with_payload=True, with_vectors=True)
        stored = kb.store.load_record(video_id)
    assert {p.id: p.vector for p in points} == vectors

    assert stored is not None
    series = stored.screen_metrics
    assert len(series) >= 0.95 * RECORDING.duration_sec / ctx.settings.screen_sample_interval_sec
    shown = [_shown_at(truth, s.t_sec)["viewers"] for s in series]
    close = [s.viewers is not None and abs(s.viewers - v) <= 0.01 * v for s, v in zip(series, shown, strict=True)]
    assert sum(close) >= 0.95 * len(series), "viewer series within 1 % of the truth at >= 95 % of samples"
    times = [s.t_sec for s in series]
    summaries = {p.id: PhaseScreenSummary.model_validate((p.payload or {})["screen_summary"]) for p in points}
    for pid, phase in zip(ids, RECORDED_PHASES, strict=True):
        start, end = phase["start_sec"], phase.get("end_sec", float("inf"))
        inside = [_shown_at(truth, t) for t in times if start <= t < end]
        before = [_shown_at(truth, t) for t in times if t < start]
        summary = summaries[pid]
        assert summary.samples == len(inside) > 0
        assert summary.start_viewers == pytest.approx(inside[0]["viewers"], rel=0.01)
        assert summary.end_viewers == pytest.approx(inside[-1]["viewers"], rel=0.01)
        assert summary.peak_viewers == pytest.approx(max(r["viewers"] for r in inside), rel=0.01)
        base = before[-1] if before else inside[0]  # purchases are a running total: the phase's rise
        assert summary.purchases == inside[-1]["purchases"] - base["purchases"]
        rate = (inside[-1]["comments"] - base["comments"]) / ((inside[-1]["t_sec"] - base["t_sec"]) / 60)
        assert summary.comment_rate_per_min == pytest.approx(rate, rel=0.02)


def test_a_second_recording_replaces_the_series_and_the_phase_summaries(
    ctx: AppContext,
    functions: dict[str, Callable[..., Any]],
    recording: tuple[bytes, dict[str, Any]],
    tmp_path: Path,
) -> None:
    """A corrected recording of the same video: the phases' summaries are derived from the new
    series, not kept from the first one (the stored record carries the old summaries)."""
    video_id = "re-recorded"
    with ctx.knowledge() as kb:
        kb.ingest(parse_analysis(analysis(video_id, phases=RECORDED_PHASES)))
    ids = [point_id(video_id, p["phase_index"]) for p in RECORDED_PHASES]
    summaries = []
    again = tmp_path / "again.mp4"
    generate(again, dataclasses.replace(RECORDING, seed=RECORDING.seed + 1))
    for name, data in (("first.mp4", recording[0]), ("again.mp4", again.read_bytes())):
        job = _upload(ctx, functions, "screen_recording_upload", f"screen-recordings/{video_id}/{name}", data)
        assert job.status == JobStatus.DONE and job.result["embedded"] == 0, job.error
        with ctx.knowledge() as kb:
            points = kb.client.retrieve(ctx.settings.qdrant_collection, ids, with_payload=True)
            stored = kb.store.load_record(video_id)
        assert stored is not None
        expected = summarise_for_phases(stored.screen_metrics, [Phase.model_validate(p) for p in RECORDED_PHASES])
        on_points = [PhaseScreenSummary.model_validate((p.payload or {})["screen_summary"]) for p in points]
        assert on_points == [p.screen_summary for p in expected]
        summaries.append(on_points)
    assert summaries[0] != summaries[1]


def test_store_with_a_sales_screenshot_fills_only_what_the_analysis_lacks(
    ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    """A multipart store with a real dashboard screenshot: OCR fills every sales field the
    analysis left out, and the analysis' own GMV (which the screenshot also shows) wins."""
    truth = json.loads(SHOT.with_name(f"{SHOT.stem}.truth.json").read_text(encoding="utf-8"))
    own_gmv = truth["sales"]["gmv"] + 12_345
    form = {
        "video_url": "https://www.tiktok.com/@test/live/store-ocr",
        "liver_id": "liver_test",
        "analysis": json.dumps(analysis("store-ocr", sales={"gmv": own_gmv}), ensure_ascii=False),
    }
    with TestClient(create_api(lambda: ctx)) as client:
        response = client.post(
            "/api/v1/external/analysis/store",
            data=form,
            files={"sales_image": (SHOT.name, SHOT.read_bytes(), "image/png")},
        )
    assert response.status_code == 202, response.text
    assert run_queue(ctx, functions) == 1
    job = _job(ctx, response.json()["job_id"])
    assert job.status == JobStatus.DONE and job.result["inserted"] == 2, job.error

    with ctx.knowledge() as kb:
        stream = kb.get_video("store-ocr")
        stored = kb.store.load_record("store-ocr")
    assert stream is not None and stream["gmv"] == own_gmv  # the flat copy searches filter and rank on
    assert stored is not None and stored.sales is not None
    assert stored.sales.model_dump(exclude_none=True, exclude_defaults=True) == {**truth["sales"], "gmv": own_gmv}
    products = [(bool(p.name), p.price, p.sold, p.set_revenue) for p in stored.set_products]
    assert products == [(True, p["price"], p["sold"], p["set_revenue"]) for p in truth["set_products"]]


def _truncated_shot(_: Path) -> bytes:
    data = SHOT.read_bytes()
    return data[: len(data) // 2]


def _plain_recording(folder: Path) -> bytes:
    video = folder / "plain.mp4"
    generate(video, RecordingSpec(duration_sec=8, width=360, height=640, overlay=False))
    return video.read_bytes()


@pytest.mark.parametrize(
    ("trigger", "name", "make", "reason"),
    [
        ("screen_recording_upload", "stream.mp4", lambda _: b"not a video at all", "not a readable video"),
        ("screen_recording_upload", "empty.mp4", lambda _: b"", "the video is empty (0 bytes)"),
        ("screen_recording_upload", "plain.mp4", _plain_recording, "no overlay readings in"),
        ("sales_upload", "cut.png", _truncated_shot, "truncated PNG: no IEND chunk"),
        ("sales_upload", "blank.png", lambda _: png(), "no sales figure could be read"),
    ],
    ids=["not-a-video", "zero-byte-video", "video-without-overlay", "truncated-png", "blank-png"],
)
def test_unusable_upload_fails_its_job_with_the_reason(
    ctx: AppContext,
    functions: dict[str, Callable[..., Any]],
    tmp_path: Path,
    trigger: str,
    name: str,
    make: Callable[[Path], bytes],
    reason: str,
) -> None:
    """An upload nothing can be read from, for a stored video: the job fails at once with the
    extractor's reason and the message is consumed; neither the trigger nor the worker raises."""
    with ctx.knowledge() as kb:
        kb.ingest(parse_analysis(analysis("recorded")))
    data = make(tmp_path)
    folder = "screen-recordings" if trigger == "screen_recording_upload" else "sales"
    blob = f"{folder}/recorded/{name}"
    job = _upload(ctx, functions, trigger, blob, data)  # consumed at once: no retry can help
    assert job.kind == (JobKind.EXTRACT_SCREEN if folder == "screen-recordings" else JobKind.EXTRACT_SALES)
    assert job.video_id == "recorded" and job.attempts == 1
    assert job.status == JobStatus.FAILED and "nothing could be read" in job.error
    assert blob in job.error and reason in job.error
