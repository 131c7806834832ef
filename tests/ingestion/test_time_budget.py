"""The job time budget cuts a long stage off in the middle, on real Azurite, Qdrant, the local
embedding model and a real screen recording.

Between stages the budget was always checked; here a single stage outlasts it: the
embedding of a large analysis, the OCR of a screen recording. The job fails at the first
check past the budget with a reason naming the stage and how far it got, at its first
delivery (no retry). The points a cut-off ingest wrote are keyed by their deterministic ids
and content hashes: storing the same analysis again later reuses them (no duplicate, no
second embedding of what was written).

How far a budget gets depends on the machine, so the budget tests assert the stage and the
consistency of what they report; the reuse of a cut-off ingest's points is shown with a
checkpoint that stops after a fixed number of chunks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import models as qm

from rag_core.analysis.record import parse_analysis
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.ingestion.runner import handle_job_message
from rag_core.ingestion.submission import submit_job
from rag_core.jobs.records import JobKind, JobMessage, JobRecord, JobStatus, job_id_for
from rag_core.knowledge.store import WRITE_CHUNK
from scripts.generate_screen_recording import RecordingSpec, generate
from tests.api.large_analysis import large_phases
from tests.appkit import analysis, app_context, app_settings, receive_all
from tests.azurite import Azurite

PHASES = 1500


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    settings = app_settings(azurite, Path(tmp_path_factory.mktemp("budget")) / "qdrant")
    return app_context(settings, local_embedder)


def _with_budget(ctx: AppContext, seconds: int) -> AppContext:
    """The same parts with another time budget (a copy skips the setting's 10 s minimum)."""
    return AppContext(ctx.settings.model_copy(update={"job_time_budget_sec": seconds}), kb=ctx._knowledge_base)


def _run(ctx: AppContext, name: str, blobs: dict[str, bytes], **inputs: Any) -> JobRecord:
    """Submit one job and deliver its message once (a failed job must not ask for a retry)."""
    message = JobMessage(job_id=job_id_for("budget", name), kind=JobKind.INGEST_ANALYSIS, video_id=name, **inputs)
    submit_job(ctx, message, blobs, source="test")
    [msg] = receive_all(ctx)
    job = handle_job_message(ctx, msg.content, dequeue_count=1)  # returns: the message is consumed
    ctx.storage.queue(ctx.settings.ingest_queue).delete_message(msg)
    return job


def _points(ctx: AppContext, video_id: str) -> int:
    cond = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))])
    with ctx.knowledge() as kb:
        return kb.client.count(ctx.settings.qdrant_collection, count_filter=cond, exact=True).count


def test_an_ingest_past_its_budget_stops_mid_stage(ctx: AppContext) -> None:
    """Eight seconds: past the stages before the store, well short of embedding 1,500 phases."""
    blob = "jobs/budget-large/analysis.json"
    body = {blob: json.dumps(analysis("budget-large", phases=large_phases(PHASES)), ensure_ascii=False).encode()}
    job = _run(_with_budget(ctx, 8), "budget-large", body, analysis_blob=blob)
    assert job.status == JobStatus.FAILED and job.attempts == 1, job
    error = job.error or ""
    print(error)  # what the caller reads, for pytest -s
    assert "past its time budget of 8 s (JOB_TIME_BUDGET_SEC)" in error
    found = re.search(r"while storing the analysis: ([\d,]+) of 1,500 phases embedded and written", error)
    assert found, error
    written = int(found.group(1).replace(",", ""))
    assert written < PHASES and written % WRITE_CHUNK == 0, written
    assert _points(ctx, "budget-large") == written  # what the cut-off ingest wrote, nothing more
    with ctx.knowledge() as kb:
        assert kb.get_video("budget-large") is None  # no stream record: the video is not stored


class _OutOfTime(Exception):
    pass


def test_points_of_a_cut_off_ingest_are_reused_by_the_next(ctx: AppContext) -> None:
    """Cut off after its first chunk (by the checkpoint's count, so the test does not depend on
    the machine's speed), then stored again: no duplicate, and only the rest is embedded."""
    record = parse_analysis(analysis("cut-off", phases=large_phases(600)))
    steps: list[str] = []

    def one_chunk_only(where: str) -> None:
        steps.append(where)
        if len(steps) > 1:
            raise _OutOfTime(where)

    with ctx.knowledge() as kb, pytest.raises(_OutOfTime, match=f"{WRITE_CHUNK:,} of 600 phases embedded"):
        kb.ingest(record, checkpoint=one_chunk_only)
    assert _points(ctx, "cut-off") == WRITE_CHUNK

    with ctx.knowledge() as kb:
        texts = kb.embedder.usage.texts
        result = kb.ingest(record)
        assert kb.embedder.usage.texts - texts == 600 - WRITE_CHUNK
    assert result.unchanged == WRITE_CHUNK and result.inserted == result.embedded == 600 - WRITE_CHUNK
    assert _points(ctx, "cut-off") == 600
    with ctx.knowledge() as kb:
        stream = kb.get_video("cut-off")
        assert stream is not None and stream["phase_count"] == 600


def test_a_screen_recording_past_the_budget_stops_between_frames(ctx: AppContext, tmp_path: Path) -> None:
    video = tmp_path / "long.mp4"
    generate(video, RecordingSpec(duration_sec=40))
    blobs = {
        "jobs/budget-screen/analysis.json": json.dumps(analysis("budget-screen"), ensure_ascii=False).encode(),
        "screen-recordings/budget-screen/long.mp4": video.read_bytes(),
    }
    every_frame = ctx.settings.model_copy(update={"screen_sample_interval_sec": 0.25, "job_time_budget_sec": 1})
    tight = AppContext(every_frame, kb=ctx._knowledge_base)
    job = _run(
        tight,
        "budget-screen",
        blobs,
        analysis_blob="jobs/budget-screen/analysis.json",
        screen_recording_blob="screen-recordings/budget-screen/long.mp4",
    )
    assert job.status == JobStatus.FAILED and job.attempts == 1, job
    error = job.error or ""
    print(error)
    assert "past its time budget of 1 s" in error
    found = re.search(r"while reading the screen recording: ([\d,]+) frames read, up to \d+ s of its 40 s", error)
    assert found, error
    assert int(found.group(1).replace(",", "")) < 160  # cut off before the last of its 160 frames
    with ctx.knowledge() as kb:
        assert kb.get_video("budget-screen") is None  # the store stage never ran
