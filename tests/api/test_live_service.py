"""The real service with its queue worker, in a child process on 127.0.0.1, crashed and restarted.

* Chaos: fifty stores accepted, the process SIGKILLed while their jobs run, a poisoned
  message (not a job at all) and a job with a missing input waiting in the queue; the
  service restarted on the same Azurite data and Qdrant folder. Every accepted job ends
  ``done`` exactly once (one record each, one point per phase, no duplicate), the poison
  is set aside at once, and work resumes within seconds (the message that was running
  comes back after ``QUEUE_VISIBILITY_SEC``; those not started were never hidden).
* Heavy work does not stop the service: while the worker decodes and OCRs a 150-second
  screen recording (the costliest job there is), ``/health`` and ``/external/stats`` keep
  answering within 1 s (95th percentile; see ``LatencyMonitor``). Decoding and OCR run
  in the worker thread holding no lock the reads need; the knowledge-base lock is taken
  only for the short lookups and the final write. (A large analysis under the same
  watch is ``test_large_analysis.py``.)
* Ids as callers write them: ``/``, ``%2F``, spaces, ``..`` and Japanese in a video id are
  stored, and deleted through ``DELETE /external/videos/{id}`` with the id percent-encoded.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from qdrant_client import models as qm

from rag_core.base.settings import Settings
from rag_core.context import AppContext
from rag_core.jobs.records import JobKind, JobMessage, JobStatus, job_id_for
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.store import point_id
from scripts.generate_screen_recording import RecordingSpec, generate
from tests.api.live_server import LatencyMonitor, LiveServer
from tests.appkit import analysis, app_settings
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"
PHASES = len(analysis("any")["phases"])


@pytest.fixture
def settings(azurite: Azurite, tmp_path: Path) -> Settings:
    return app_settings(azurite, tmp_path / "qdrant", queue_visibility_sec=6, log_level="WARNING")


def _wait(condition: object, *, within: float, what: str) -> float:
    """Poll ``condition()`` until true; returns the seconds it took."""
    assert callable(condition)
    start = time.monotonic()
    while time.monotonic() - start < within:
        if condition():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {within} s")


def _statuses(ctx: AppContext, job_ids: list[str]) -> list[JobStatus | None]:
    return [job.status if (job := ctx.jobs.get(j)) else None for j in job_ids]


@pytest.mark.slow
def test_killed_mid_batch_every_job_ends_once(settings: Settings, server: LiveServer, tmp_path: Path) -> None:
    ctx = AppContext(settings)  # storage only: the server holds the Qdrant folder
    videos = [f"chaos-{i:02d}" for i in range(50)]
    server.start()
    with server.client() as http, ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda v: http.post(STORE, json=analysis(v)), videos))
    assert {a.status_code for a in answers} == {202}
    job_ids = [a.json()["job_id"] for a in answers]

    queue = ctx.storage.queue(settings.ingest_queue)
    queue.send_message(b"this is not a job")  # poison: no delivery can ever read it
    missing = JobMessage(
        job_id="3b7c1d2e-0000-4000-8000-00000000beef",
        kind=JobKind.INGEST_ANALYSIS,
        video_id="chaos-missing",
        analysis_blob="jobs/none/analysis.json",
    )
    queue.send_message(missing.model_dump_json().encode())

    _wait(lambda: _statuses(ctx, job_ids).count(JobStatus.DONE) >= 3, within=300, what="three jobs done")
    server.kill()
    left = [s for s in _statuses(ctx, job_ids) if s != JobStatus.DONE]
    assert left, "every job finished before the kill; nothing was interrupted"

    restarted = LiveServer(settings, tmp_path / "restarted", worker=True).start()
    try:
        took = _wait(
            lambda: set(_statuses(ctx, job_ids)) == {JobStatus.DONE}, within=300, what="every job done after restart"
        )
        with restarted.client() as http:
            assert http.get("/api/v1/health").status_code == 200
    finally:
        restarted.stop()
    print(f"{len(left)} jobs unfinished at the kill; all done {took:.1f} s after the restart was ready")

    failed = ctx.jobs.get(missing.job_id)
    assert failed is not None and failed.status == JobStatus.FAILED and "is missing" in (failed.error or "")
    poison = ctx.storage.queue(f"{settings.ingest_queue}-poison")
    poisoned = [m.content for m in poison.receive_messages(max_messages=32)]
    assert poisoned == [b"this is not a job"]
    assert queue.get_queue_properties().approximate_message_count == 0
    table = ctx.storage.table(settings.jobs_table)
    assert sorted(e["RowKey"] for e in table.list_entities() if e["RowKey"] != missing.job_id) == sorted(job_ids)

    kb = KnowledgeBase(settings)
    collection = settings.qdrant_collection
    assert kb.client.count(collection, exact=True).count == 50 * PHASES
    for video_id in videos:
        cond = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))])
        ids = sorted(str(p.id) for p in kb.store.scroll(collection, cond, []))
        assert ids == sorted(point_id(video_id, i) for i in range(PHASES)), video_id
    kb.client.close()


ODD_IDS = ["a/b", "../../x", "100%2Fsafe", "ライブ 配信/第1回", "with space", "%", "?q=1#frag"]


@pytest.mark.slow
def test_ids_with_slashes_spaces_and_japanese_are_stored_and_deleted(settings: Settings, server: LiveServer) -> None:
    ctx = AppContext(settings)
    server.start()
    with server.client() as http:
        answers = [http.post(STORE, json=analysis(v)) for v in ODD_IDS]
        assert [a.status_code for a in answers] == [202] * len(ODD_IDS), [a.text for a in answers]
        job_ids = [a.json()["job_id"] for a in answers]
        _wait(lambda: set(_statuses(ctx, job_ids)) == {JobStatus.DONE}, within=300, what="odd ids stored")
        for video_id in ODD_IDS:
            url = f"/api/v1/external/videos/{quote(video_id, safe='')}"
            deleted = http.delete(url)
            assert deleted.status_code == 200, (video_id, deleted.text)
            assert deleted.json()["video_id"] == video_id and deleted.json()["deleted_points"] == PHASES
            assert http.delete(url).status_code == 404
        stats = http.get("/api/v1/external/stats").json()
        assert stats["total_videos"] == 0, stats
        # blank and control-character ids in a path are refused with the id grammar's 422, not looked up
        for bad in ("%20", "a%00b", "a%09b", "a%0D%0Ab"):
            refused = http.delete(f"/api/v1/external/videos/{bad}")
            assert refused.status_code == 422 and refused.json()["error"]["field"] == "video_id", bad


@pytest.mark.slow
def test_reads_keep_answering_while_a_heavy_extraction_runs(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"screen_sample_interval_sec": 0.25})  # OCR every frame: 600 frames
    ctx = AppContext(settings)
    server = LiveServer(settings, tmp_path / "server", worker=True).start()
    try:
        _heavy_extraction(ctx, settings, server, tmp_path)
    finally:
        server.stop()


def _heavy_extraction(ctx: AppContext, settings: Settings, server: LiveServer, tmp_path: Path) -> None:
    recording = tmp_path / "rec.mp4"
    generate(recording, RecordingSpec(duration_sec=150))
    data = recording.read_bytes()
    with server.client() as http:
        stored = http.post(STORE, json=analysis("heavy")).json()["job_id"]
        _wait(lambda: _statuses(ctx, [stored]) == [JobStatus.DONE], within=300, what="the analysis stored")
        name = "screen-recordings/heavy/rec.mp4"
        ctx.storage.container(settings.uploads_container).upload_blob(name, data)  # the worker's scan picks it up
        job_id = job_id_for("upload", name, len(data))
        _wait(lambda: _statuses(ctx, [job_id]) == [JobStatus.RUNNING], within=120, what="the extraction started")
        with LatencyMonitor(server.base) as monitor:
            took = _wait(
                lambda: _statuses(ctx, [job_id])[0] in (JobStatus.DONE, JobStatus.FAILED),
                within=600,
                what="the extraction finished",
            )
    job = ctx.jobs.get(job_id)
    assert job is not None and job.status == JobStatus.DONE, job
    print(f"extraction ran {took:.0f} s; {monitor.check()}")
