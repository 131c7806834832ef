"""The queue, blob and HTTP functions called directly with real azure.functions objects, and the
no-host local worker, on real Azurite and embedded Qdrant."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage as TriggerMessage

from functions.local_host import LocalWorker
from rag_core.app_context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.jobs import JobKind, JobMessage, JobStatus, job_id_for
from rag_core.models import parse_analysis
from rag_core.schemas import SearchRequest
from rag_core.settings import Settings, load_settings
from rag_core.store import VideoNotFoundError
from rag_core.submission import submit_job
from tests.appkit import (
    ROOT,
    analysis,
    app_context,
    app_settings,
    function_map,
    input_stream,
    png,
    run_queue,
    storage_snapshot,
)
from tests.azurite import Azurite


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    return app_context(app_settings(azurite, tmp_path_factory.mktemp("qdrant")), local_embedder)


@pytest.fixture(scope="module")
def functions(ctx: AppContext) -> dict[str, Callable[..., Any]]:
    return function_map(ctx)


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


# ------------------------------------------------------------------ wiring --
def test_function_app_registers_every_function() -> None:
    import function_app
    from rag_core.app_context import default_context

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
    must_stay_unset = {"embedding_dimensions", "tessdata_dir", "backfill_api_token"}  # "" would not parse
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
    worker = LocalWorker(ctx, retry_delay=0, visibility_timeout=30)
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


def test_screen_recording_upload_that_is_not_a_video_fails_with_the_reason(
    ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    with ctx.knowledge() as kb:
        kb.ingest(parse_analysis(analysis("recorded")))
    name = "screen-recordings/recorded/stream.mp4"
    ctx.storage.container(ctx.settings.uploads_container).upload_blob(name, b"not a video at all")
    functions["screen_recording_upload"](input_stream(ctx.settings.uploads_container, name, b"not a video at all"))
    assert run_queue(ctx, functions) == 1  # consumed: no retry can help
    job = _job(ctx, job_id_for("upload", name, len(b"not a video at all")))
    assert job.kind == JobKind.EXTRACT_SCREEN and job.video_id == "recorded"
    assert job.status == JobStatus.FAILED and "nothing could be read" in job.error and name in job.error


def test_local_worker_ingests_an_inbox_drop(ctx: AppContext) -> None:
    inbox = ctx.storage.container(ctx.settings.inbox_container)
    data = json.dumps(analysis("worker-drop"), ensure_ascii=False).encode()
    inbox.upload_blob("worker-drop.json", data)
    worker = LocalWorker(ctx, retry_delay=0)
    assert worker.poll_once() >= 1
    job = _job(ctx, job_id_for("inbox", "worker-drop.json", hashlib.sha256(data).hexdigest(), 1))
    assert job.status == JobStatus.DONE and job.source == "inbox"
    assert worker.poll_once() == 0, "a blob already handled is not submitted again"


def test_http_store_then_queue_with_a_sales_image_blob_drop(
    ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    """uploads/sales/<video>.png for a stored video: an extraction job; a blank image reads nothing."""
    with ctx.knowledge() as kb:
        kb.ingest(parse_analysis(analysis("with-shot")))
    name = "sales/with-shot.png"
    image = png()
    ctx.storage.container(ctx.settings.uploads_container).upload_blob(name, image)
    functions["sales_upload"](input_stream(ctx.settings.uploads_container, name, image))
    assert run_queue(ctx, functions) == 1
    job = _job(ctx, job_id_for("upload", name, len(image)))
    assert job.kind == JobKind.EXTRACT_SALES and job.status == JobStatus.FAILED
    assert "no sales figure could be read" in job.error
