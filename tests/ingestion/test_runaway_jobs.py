"""Jobs that could otherwise run, retry or stay unresolved forever, on real Azurite and Qdrant.

* a job over its time budget fails with the reason and is not retried;
* malformed input that only fails deep inside the ingest is permanent (one delivery), and
  so is an unmarked extraction for a video id several brands hold;
* a message delivered past ``MAX_DEQUEUE_COUNT`` (every earlier run died) fails its job
  without running it;
* the sweep fails jobs left ``running`` or ``queued`` past their budget, and only those;
* a large analysis (2,000 phases here) ends ``done`` with a bounded job record, and a job
  error of any length fits its record.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rag_core.analysis.record import parse_analysis
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.ingestion.runner import MAX_LISTED_IDS, handle_job_message, sweep_stuck_jobs
from rag_core.ingestion.submission import submit_job
from rag_core.jobs.records import MAX_ERROR_CHARS, JobKind, JobMessage, JobRecord, JobStatus, job_id_for, now
from tests.appkit import analysis, app_context, app_settings, receive_all, run_queue
from tests.azurite import Azurite


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    settings = app_settings(azurite, Path(tmp_path_factory.mktemp("runaway")) / "qdrant")
    return app_context(settings, local_embedder)


def _submit(ctx: AppContext, name: str, record: Any) -> JobMessage:
    blob = f"jobs/{name}/analysis.json"
    message = JobMessage(
        job_id=job_id_for("runaway", name), kind=JobKind.INGEST_ANALYSIS, video_id=name, analysis_blob=blob
    )
    submit_job(ctx, message, {blob: json.dumps(record, ensure_ascii=False).encode()}, source="test")
    return message


def _job(ctx: AppContext, job_id: str) -> JobRecord:
    job = ctx.jobs.get(job_id)
    assert job is not None
    return job


def test_a_job_over_its_time_budget_fails_with_the_reason(
    ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    """A budget already spent when the store stage starts: failed once, message consumed."""
    tight = AppContext(ctx.settings.model_copy(update={"job_time_budget_sec": -1}), kb=ctx._knowledge_base)
    message = _submit(ctx, "over-budget", analysis("over-budget"))
    [msg] = receive_all(ctx)
    job = handle_job_message(tight, msg.content, dequeue_count=1)  # returns: no retry
    ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)  # as the host does then
    assert job.status == JobStatus.FAILED and "past its time budget" in (job.error or "")
    assert "JOB_TIME_BUDGET_SEC" in (job.error or "")
    assert _job(ctx, message.job_id).attempts == 1


def test_input_that_only_breaks_the_ingest_is_permanent(ctx: AppContext) -> None:
    """A phase index far past what the store can use fails validation when the job reads it:
    failed at the first delivery with the reason, not retried five times."""
    message = _submit(ctx, "bad-index", analysis("bad-index", phases=[{"phase_index": 10**7}]))
    [msg] = receive_all(ctx)
    job = handle_job_message(ctx, msg.content, dequeue_count=1)
    assert job.status == JobStatus.FAILED and "phase_index" in (job.error or "")
    ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)
    assert _job(ctx, message.job_id).attempts == 1


def test_an_unmarked_extraction_for_an_id_two_brands_hold_fails_at_once(ctx: AppContext) -> None:
    """Video ids are per brand: a screenshot dropped without a brand for an id two brands hold
    names no one video, so its job fails with the reason at the first delivery."""
    with ctx.knowledge() as kb:
        for brand in (1, 2):
            kb.ingest(parse_analysis(analysis("shared-drop")), brand_id=brand)
    message = JobMessage(
        job_id=job_id_for("runaway", "shared-drop"),
        kind=JobKind.EXTRACT_SALES,
        video_id="shared-drop",
        sales_image_blob="sales/shared-drop.png",
    )
    submit_job(ctx, message, {}, source="test")
    [msg] = receive_all(ctx)
    job = handle_job_message(ctx, msg.content, dequeue_count=1)
    ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)
    assert job.status == JobStatus.FAILED and "several brands (1, 2)" in (job.error or ""), job.error
    assert _job(ctx, message.job_id).attempts == 1


def test_a_message_delivered_past_the_limit_is_not_run_again(ctx: AppContext) -> None:
    message = _submit(ctx, "crashed-5-times", analysis("crashed-5-times"))
    [msg] = receive_all(ctx)
    deliveries = ctx.settings.max_dequeue_count + 1
    job = handle_job_message(ctx, msg.content, dequeue_count=deliveries)
    assert job.status == JobStatus.FAILED and f"gave up after {deliveries - 1} deliveries" in (job.error or "")
    with ctx.knowledge() as kb:
        assert kb.get_video("crashed-5-times") is None  # not run
    # a stray redelivery of the failed job does not run it either
    assert handle_job_message(ctx, msg.content, dequeue_count=2).status == JobStatus.FAILED
    ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)
    assert _job(ctx, message.job_id).status == JobStatus.FAILED


def _aged(ctx: AppContext, job_id: str, status: JobStatus, age: dt.timedelta) -> None:
    entity = ctx.jobs.table.get_entity("job", job_id)
    entity["status"], entity["updated_at"] = status.value, now() - age
    ctx.jobs.table.update_entity(entity)


def test_the_sweep_fails_stuck_jobs_only(ctx: AppContext) -> None:
    budget = dt.timedelta(seconds=ctx.settings.job_time_budget_sec)
    cases = {
        "lost-running": (JobStatus.RUNNING, 2 * budget + dt.timedelta(minutes=1), True),
        "busy-running": (JobStatus.RUNNING, budget, False),
        "lost-queued": (JobStatus.QUEUED, ctx.settings.max_dequeue_count * budget + dt.timedelta(minutes=1), True),
        "waiting-queued": (JobStatus.QUEUED, 2 * budget, False),
    }
    ids = {}
    for name, (status, age, _) in cases.items():
        ids[name] = _submit(ctx, name, analysis(name)).job_id
        _aged(ctx, ids[name], status, age)
    for msg in receive_all(ctx):  # these jobs' messages are "lost"
        ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)
    swept = {j.job_id for j in sweep_stuck_jobs(ctx)}
    assert swept == {ids[n] for n, (_, _, stuck) in cases.items() if stuck}
    for name, (status, _, stuck) in cases.items():
        job = _job(ctx, ids[name])
        assert job.status == (JobStatus.FAILED if stuck else status), name
        assert not stuck or (job.error or "").startswith("stuck: "), job.error


@pytest.mark.slow
def test_a_large_analysis_ends_done_with_a_bounded_record(
    ctx: AppContext, functions: dict[str, Callable[..., Any]]
) -> None:
    """2,000 phases (past the ~900 where the job record used to overflow its 64 KiB property)."""
    phases = [{"phase_index": i, "speech_text": f"フェーズ{i}"} for i in range(2000)]
    message = _submit(ctx, "large", analysis("large", phases=phases))
    assert run_queue(ctx, functions) == 1
    job = _job(ctx, message.job_id)
    assert job.status == JobStatus.DONE and job.result is not None
    assert job.result["point_count"] == 2000 and len(job.result["point_ids"]) == MAX_LISTED_IDS


def test_an_error_of_any_length_fits_the_record(ctx: AppContext) -> None:
    message = _submit(ctx, "long-error", analysis("long-error"))
    for msg in receive_all(ctx):
        ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)
    job = ctx.jobs.update(message.job_id, status=JobStatus.FAILED, error="え" * 100_000, warnings=["w" * 9999] * 500)
    stored = _job(ctx, job.job_id)
    assert len(stored.error or "") <= MAX_ERROR_CHARS and stored.error and stored.error.endswith("more characters)")
    assert len(stored.warnings) == 51 and stored.warnings[-1] == "… and 450 more warnings"
