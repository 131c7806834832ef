"""Reliability under load and faults, on real Azurite and embedded Qdrant (loopback only).

* Load: concurrent store requests and inbox drops of the same analyses end as
  one video each, with one point per phase, every job recorded and ``done``.
* Qdrant unavailable during a job: the delivery fails, the job goes back to
  ``queued`` with the error, and the redelivery succeeds once Qdrant is back.
* A worker killed between embedding and writing: the redelivery completes the
  job with no duplicate point.
* A snapshot upload cut off mid-way: the earlier snapshots stay listed,
  downloadable and restorable, retention deletes nothing, and no part of the
  new snapshot is left (also for a server snapshot, one blob per collection).

The crash test needs a worker process to kill, so this module is also the
child's entry point (``python -m tests.test_reliability deliver-and-die``), as
it is for the process that holds a Qdrant folder (``hold-qdrant``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core.exceptions import AzureError
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.functions.timer import TimerRequest
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueMessage
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from functions.api import create_api
from rag_core.analysis.record import parse_analysis
from rag_core.base.settings import load_settings
from rag_core.base.storage import Storage
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.ingestion.blob_intake import accept_inbox_file
from rag_core.ingestion.submission import ENQUEUE_GRACE, submit_job
from rag_core.jobs.records import JobKind, JobMessage, JobRecord, JobStatus, job_id_for, now
from rag_core.knowledge.engine import EDGE_DIR, EdgeEngine
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.store import DENSE, point_id
from rag_core.operations import backup
from tests.appkit import ROOT, analysis, app_context, app_settings, function_map, input_stream, queue_message, run_queue
from tests.azurite import Azurite
from tests.operations.test_backup import every_point

STORE = "/api/v1/external/analysis/store"
PHASES = len(analysis("any")["phases"])


# ------------------------------------------------------------------ helpers --
def _job(ctx: AppContext, job_id: str) -> JobRecord:
    job = ctx.jobs.get(job_id)
    assert job is not None, f"job {job_id} was lost"
    return job


def _phase_ids(kb: KnowledgeBase, video_id: str) -> list[str]:
    """The ids of every phase point stored for ``video_id`` (a duplicate would show twice)."""
    cond = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))])
    return sorted(str(p.id) for p in kb.store.scroll(kb.settings.qdrant_collection, cond, []))


def _expected_ids(video_id: str) -> list[str]:
    return sorted(point_id(video_id, i) for i in range(PHASES))


def _next_delivery(ctx: AppContext, *, within: float = 30.0) -> QueueMessage:
    """The next delivery of the ingest queue, waiting for a message whose visibility timeout has
    to run out first (the host's redelivery after a failed or abandoned attempt)."""
    queue = ctx.storage.queue(ctx.settings.ingest_queue)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for msg in queue.receive_messages(max_messages=1, visibility_timeout=1):
            return msg
        time.sleep(0.2)
    raise AssertionError(f"no message became visible in {ctx.settings.ingest_queue} within {within} s")


def _queue_is_empty(ctx: AppContext) -> bool:
    return ctx.storage.queue(ctx.settings.ingest_queue).get_queue_properties().approximate_message_count == 0


def _closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -------------------------------------------------------------------- load --
def _inbox_files(analyses: list[dict[str, Any]]) -> dict[str, bytes]:
    """Every analysis dropped twice: once as its own file, once inside a JSON Lines batch of ten."""
    files = {f"single/{a['video_id']}.json": json.dumps(a, ensure_ascii=False).encode() for a in analyses}
    for start in range(0, len(analyses), 10):
        lines = "\n".join(json.dumps(a, ensure_ascii=False) for a in analyses[start : start + 10])
        files[f"batch/{start // 10}.jsonl"] = lines.encode()
    return files


def _store_headers(record: dict[str, Any]) -> list[dict[str, str]]:
    """The four ways one analysis is stored: twice bare (one job by content), twice with the
    same Idempotency-Key (one job by key)."""
    keyed = {"Idempotency-Key": f"key-{record['video_id']}"}
    return [{}, {}, keyed, keyed]


async def _flood(
    ctx: AppContext, functions: dict[str, Callable[..., Any]], analyses: list[dict[str, Any]]
) -> list[httpx.Response]:
    """Send every store request and drop every inbox file at once; returns the HTTP responses.

    Identical submissions race each other (see ``_store_headers``); the drops run in threads,
    as trigger invocations do.
    """
    inbox = ctx.storage.container(ctx.settings.inbox_container)

    def drop(name: str, data: bytes) -> None:
        inbox.upload_blob(name, data, overwrite=True)
        functions["inbox_file"](input_stream(inbox.container_name, name, data))

    loop = asyncio.get_running_loop()
    transport = httpx.ASGITransport(app=create_api(lambda: ctx))
    with ThreadPoolExecutor(max_workers=16) as pool:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            posts: list[Awaitable[httpx.Response | None]] = [
                client.post(STORE, json=a, headers=headers) for a in analyses for headers in _store_headers(a)
            ]
            drops = [loop.run_in_executor(pool, drop, name, data) for name, data in _inbox_files(analyses).items()]
            order = [*posts, *drops]
            random.Random(7).shuffle(order)  # interleave requests and drops, the same way every run
            done = await asyncio.gather(*order)
    return [r for r in done if isinstance(r, httpx.Response)]


def _drain(ctx: AppContext, functions: dict[str, Callable[..., Any]], *, workers: int) -> int:
    """Run the queue to empty with concurrent workers, as scaled-out hosts would; returns deliveries."""

    def work() -> int:
        handled = 0
        while batch := run_queue(ctx, functions):
            handled += batch
        return handled

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return sum(future.result() for future in [pool.submit(work) for _ in range(workers)])


@pytest.mark.slow
def test_concurrent_stores_and_drops_of_the_same_analyses(
    azurite: Azurite, tmp_path: Path, local_embedder: LocalE5Embedder
) -> None:
    """200 store requests and inbox drops of the same 50 analyses (each dropped twice), all at
    once, then the queue drained by concurrent workers: 200 jobs (one per distinct submission),
    all ``done``, each delivered exactly once (identical submissions racing each other do not
    queue a job twice); 50 videos with one point per phase; and each phase embedded exactly
    once, however often its analysis came in, as the jobs' own results report.
    """
    ctx = app_context(app_settings(azurite, tmp_path / "qdrant"), local_embedder)
    functions = function_map(ctx)
    videos = [f"load-{i:02d}" for i in range(50)]
    analyses = [analysis(v, sales={"gmv": 1000 * (i + 1)}) for i, v in enumerate(videos)]
    ctx.jobs  # noqa: B018  built here once, not raced by the first requests

    responses = asyncio.run(_flood(ctx, functions, analyses))
    assert len(responses) == 200 and {r.status_code for r in responses} == {202}, responses[0].text
    api_jobs = {r.json()["job_id"] for r in responses}
    created = Counter(r.json()["job_id"] for r in responses if not r.json()["duplicate"])
    assert len(api_jobs) == 100 and set(created) == api_jobs and set(created.values()) == {1}

    table = ctx.storage.table(ctx.settings.jobs_table)
    records = [_job(ctx, entity["RowKey"]) for entity in table.list_entities()]
    assert len(records) == 200 and api_jobs <= {j.job_id for j in records}
    assert Counter(j.source for j in records) == {"api": 100, "inbox": 100}
    assert Counter(j.video_id for j in records) == dict.fromkeys(videos, 4)
    assert all(j.enqueued for j in records)

    texts_before = local_embedder.usage.texts
    assert _drain(ctx, functions, workers=2) == 200
    assert _queue_is_empty(ctx)
    jobs = [_job(ctx, j.job_id) for j in records]
    assert {j.status for j in jobs} == {JobStatus.DONE}, [(j.job_id, j.status, j.error) for j in jobs]
    assert local_embedder.usage.texts - texts_before == 50 * PHASES
    assert sum((j.result or {}).get("embedded", 0) for j in jobs) == 50 * PHASES

    with ctx.knowledge() as kb:
        assert sorted(s["video_id"] for s in kb.store.streams_matching()) == videos
        assert kb.client.count(ctx.settings.qdrant_collection, exact=True).count == 50 * PHASES
        for video_id in videos:
            assert _phase_ids(kb, video_id) == _expected_ids(video_id)


def test_a_job_whose_first_submission_died_is_queued_once_by_racing_resubmissions(
    azurite: Azurite, tmp_path: Path, local_embedder: LocalE5Embedder
) -> None:
    """A job recorded but never enqueued (its submitter died in between): a re-submission
    within the grace period leaves it to the submitter still presumed alive; after it, eight
    re-submissions at once queue it exactly once."""
    ctx = app_context(app_settings(azurite, tmp_path / "qdrant"), local_embedder)
    blob = "jobs/died/analysis.json"
    message = JobMessage(
        job_id=job_id_for("test", "died"), kind=JobKind.INGEST_ANALYSIS, video_id="died", analysis_blob=blob
    )
    uploads = {blob: json.dumps(analysis("died")).encode()}
    stamp = now()
    ctx.jobs.create(
        JobRecord(
            job_id=message.job_id,
            kind=message.kind,
            video_id="died",
            source="test",
            created_at=stamp,
            updated_at=stamp,
            message=message,
        )
    )
    ctx.storage.container(ctx.settings.uploads_container).upload_blob(blob, uploads[blob])

    assert not submit_job(ctx, message, uploads, source="test").job.enqueued
    assert _queue_is_empty(ctx)

    entity = ctx.jobs.table.get_entity("job", message.job_id)
    entity["updated_at"] = stamp - ENQUEUE_GRACE  # the submitter has been silent for the whole grace
    ctx.jobs.table.update_entity(entity)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: submit_job(ctx, message, uploads, source="test"), range(8)))
    assert all(r.job.enqueued and not r.created for r in results)
    props = ctx.storage.queue(ctx.settings.ingest_queue).get_queue_properties()
    assert props.approximate_message_count == 1
    assert run_queue(ctx, function_map(ctx)) == 1 and _job(ctx, message.job_id).status == JobStatus.DONE


# ---------------------------------------------------------- Qdrant outage --
def _submit_one(ctx: AppContext, video_id: str) -> str:
    """Drop one analysis into the inbox, as a customer would; returns its job id."""
    data = json.dumps(analysis(video_id), ensure_ascii=False).encode()
    [job_id] = accept_inbox_file(ctx, f"{video_id}.json", data).job_ids
    return job_id


@contextlib.contextmanager
def _folder_held_by_another_process(path: Path) -> Iterator[None]:
    """Another process (a backup CLI, a second worker) holds the embedded Qdrant folder's lock."""
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.test_reliability", "hold-qdrant", str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "holding", "the holder could not open the folder"
        yield
    finally:
        holder.stdin.close()  # the holder exits when its stdin closes, releasing the lock
        assert holder.wait(timeout=60) == 0


@pytest.mark.parametrize("outage", ["server refuses connections", "folder locked by another process"])
def test_job_retried_while_qdrant_is_unavailable(
    outage: str, azurite: Azurite, tmp_path: Path, local_embedder: LocalE5Embedder
) -> None:
    """A delivery during a Qdrant outage fails and re-raises, so the host redelivers it; the job
    is back to ``queued`` with the error and nothing is written. The redelivery after the
    outage runs the job to ``done`` with exactly one point per phase.

    The outage is real: a client for a loopback port nothing listens on (connection refused),
    or the embedded folder's lock held by another process (the same context recovers then)."""
    settings = app_settings(azurite, tmp_path / "qdrant")
    up = app_context(settings, local_embedder)
    video_id = "outage-1"
    job_id = _submit_one(up, video_id)

    if outage == "server refuses connections":
        refused = QdrantClient(url=f"http://127.0.0.1:{_closed_port()}", timeout=1, check_compatibility=False)
        down = app_context(settings, local_embedder, KnowledgeBase(settings, client=refused, embedder=local_embedder))
        held: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        symptom = "ResponseHandlingException"
    else:
        down, held = up, _folder_held_by_another_process(settings.qdrant_path)
        symptom = "already accessed by another instance"

    first = _next_delivery(up)
    with held, pytest.raises(Exception) as failure:
        function_map(down)["ingest_job"](queue_message(first))
    assert symptom in f"{type(failure.value).__name__}: {failure.value}"
    job = _job(up, job_id)
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 1)
    assert job.error is not None and job.error.startswith("attempt 1 failed: ") and symptom in job.error

    again = _next_delivery(up)  # the message was not deleted: it comes back once its visibility lapses
    assert (again.id, again.dequeue_count) == (first.id, 2)
    function_map(up)["ingest_job"](queue_message(again))
    up.storage.queue(settings.ingest_queue).delete_message(again)
    job = _job(up, job_id)
    assert (job.status, job.attempts, job.error) == (JobStatus.DONE, 2, None)
    assert job.result is not None and job.result["inserted"] == PHASES
    assert _queue_is_empty(up)
    with up.knowledge() as kb:
        assert _phase_ids(kb, video_id) == _expected_ids(video_id)


# ------------------------------------------------------- killed mid-ingest --
_CHILD_SETTINGS = (  # what the child must share with this process (QDRANT_URL unset: embedded)
    "qdrant_url",
    "qdrant_path",
    "embedding_provider",
    "sales_ocr_provider",
    "azure_openai_endpoint",
    "storage_connection_string",
    "uploads_container",
    "inbox_container",
    "rejected_container",
    "snapshots_container",
    "ingest_queue",
    "jobs_table",
    "upsert_batch_size",
)


@pytest.mark.slow
@pytest.mark.parametrize("written_before_kill", [0, 1], ids=["before any point", "after one of two points"])
def test_worker_killed_between_embedding_and_upsert(
    written_before_kill: int, azurite: Azurite, tmp_path: Path, local_embedder: LocalE5Embedder
) -> None:
    """A worker process dies (exit 137, as after SIGKILL) holding freshly computed embeddings,
    before any phase point is written or after the first of two single-point batches. The
    job is left ``running`` with no stream record; the host's redelivery, run by this process
    through the same queue trigger, completes it: one point per phase, nothing duplicated, and
    only the phases the dead worker had not written are embedded again."""
    settings = app_settings(azurite, tmp_path / "qdrant", upsert_batch_size=1 if written_before_kill else 64)
    ctx = app_context(settings, local_embedder)  # Qdrant is opened only after the child is gone
    video_id = f"killed-{written_before_kill}"
    job_id = _submit_one(ctx, video_id)

    first = _next_delivery(ctx)
    spec = {
        "settings": settings.model_dump(mode="json", include=set(_CHILD_SETTINGS)),
        "message": {"id": first.id, "body": first.content.decode(), "dequeue_count": first.dequeue_count},
        "written_before_kill": written_before_kill,
    }
    child = subprocess.run(
        [sys.executable, "-m", "tests.test_reliability", "deliver-and-die", json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 137, child.stdout + child.stderr
    died = json.loads(child.stdout.strip().splitlines()[-1])
    assert died == {"written": written_before_kill, "vectors_in_hand": PHASES - written_before_kill}

    job = _job(ctx, job_id)
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)  # what a dead worker leaves behind
    with ctx.knowledge() as kb:
        assert kb.get_video(video_id) is None
        assert _phase_ids(kb, video_id) == sorted(point_id(video_id, i) for i in range(written_before_kill))

    texts_before = local_embedder.usage.texts
    again = _next_delivery(ctx)
    assert (again.id, again.dequeue_count) == (first.id, 2)
    function_map(ctx)["ingest_job"](queue_message(again))
    ctx.storage.queue(settings.ingest_queue).delete_message(again)
    job = _job(ctx, job_id)
    assert (job.status, job.attempts, job.error) == (JobStatus.DONE, 2, None)
    assert job.result is not None
    assert (job.result["inserted"], job.result["unchanged"]) == (PHASES - written_before_kill, written_before_kill)
    assert local_embedder.usage.texts - texts_before == PHASES - written_before_kill
    with ctx.knowledge() as kb:
        assert _phase_ids(kb, video_id) == _expected_ids(video_id)
        assert kb.client.count(settings.qdrant_collection, exact=True).count == PHASES
        stream = kb.get_video(video_id)
        assert stream is not None and stream["phase_count"] == PHASES
        points = kb.client.retrieve(settings.qdrant_collection, _expected_ids(video_id), with_vectors=True)
        dense = [p.vector.get(DENSE) if isinstance(p.vector, dict) else None for p in points]
        assert [len(v) if isinstance(v, list) else None for v in dense] == [local_embedder.dimension] * PHASES
    assert _queue_is_empty(ctx)


# ------------------------------------------------------ snapshot cut off --
class CuttingRelay:
    """A loopback TCP relay to Azurite's blob port that resets the connection once one upload (a PUT)
    has carried ``cut_after`` bytes: an upload that dies mid-way, as when the network drops.
    Smaller requests, and uploads smaller than that, pass untouched."""

    def __init__(self, upstream_port: int, cut_after: int) -> None:
        self.upstream_port, self.cut_after = upstream_port, cut_after
        self.cut: list[bytes] = []  # what each cut-off upload had carried
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> CuttingRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()

    def container(self, azurite: Azurite, name: str) -> ContainerClient:
        """A client for container ``name`` whose requests go through the relay. It does not retry,
        so the cut is the outcome; the storage SDK would retry after 15 s backoffs."""
        direct = f"127.0.0.1:{azurite.ports['blob']}/"
        relayed = azurite.connection_string.replace(direct, f"127.0.0.1:{self.port}/")
        return ContainerClient.from_connection_string(relayed, name, retry_total=0)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._responses, args=(upstream, client), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket) -> None:
        carried = b""
        put_at: int | None = None
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                start = len(carried)
                carried += chunk
                if (found := carried.rfind(b"PUT /", max(0, start - 4))) >= 0:
                    put_at = found  # each upload gets the full allowance
                if put_at is not None and len(carried) - put_at >= self.cut_after:
                    end = put_at + self.cut_after
                    upstream.sendall(carried[start:end])
                    self.cut.append(carried[put_at:end])
                    for sock in (client, upstream):  # RST, not FIN: both peers see the connection die
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        sock.close()
                    return
                upstream.sendall(chunk)
            upstream.shutdown(socket.SHUT_WR)

    @staticmethod
    def _responses(upstream: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := upstream.recv(65536):
                client.sendall(chunk)
            client.shutdown(socket.SHUT_WR)


def _request_parts(carried: bytes) -> tuple[str, int, int]:
    """(request line, header bytes, declared body bytes) of the request a relay cut off."""
    head, _, _ = carried.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    return lines[0], len(head) + 4, length


@pytest.mark.slow
def test_interrupted_snapshot_upload_keeps_earlier_snapshots(
    azurite: Azurite, tmp_path: Path, local_embedder: LocalE5Embedder
) -> None:
    """Three snapshots taken by the timer function, then a fourth whose upload the network cuts
    half-way, with the retention just lowered to two: the failure propagates, no part of the
    new snapshot is stored (not even uncommitted), and retention deletes nothing, so all three
    earlier snapshots are listed, download byte for byte and restore every point. The next
    snapshot that succeeds is the one that applies the retention."""
    ctx = app_context(app_settings(azurite, tmp_path / "qdrant", snapshot_retention=3), local_embedder)
    timer = function_map(ctx)["qdrant_snapshot"]
    container = ctx.storage.container(ctx.settings.snapshots_container)
    earlier: list[tuple[str, bytes, dict[str, Any]]] = []  # name, archive bytes, points at that time
    for i in range(3):
        with ctx.knowledge() as kb:
            kb.ingest(parse_analysis(analysis(f"snap-{i}")))
            points = every_point(kb.client, ctx.settings)
        timer(TimerRequest(past_due=False))
        newest = backup.list_snapshots(container)[-1]
        earlier.append((newest.name, container.download_blob(newest.blobs[0]).readall(), points))
    names = [name for name, _, _ in earlier]
    assert [s.name for s in backup.list_snapshots(container)] == names

    tighter = ctx.settings.model_copy(update={"snapshot_retention": 2})
    with CuttingRelay(azurite.ports["blob"], cut_after=len(earlier[-1][1]) // 2) as relay:
        cut_off = relay.container(azurite, container.container_name)
        with ctx.knowledge() as kb, pytest.raises(AzureError):
            backup.create_snapshot(tighter, kb.client, cut_off)
    [carried] = relay.cut
    request_line, header_bytes, body_bytes = _request_parts(carried)
    assert request_line.startswith(f"PUT /devstoreaccount1/{container.container_name}/{backup.PREFIX}")
    blob = request_line.split()[1].split("/")[-1]  # the embedded engine's own archive
    assert blob.endswith(backup.EDGE_SUFFIX) and blob not in {f"{n}{backup.EDGE_SUFFIX}" for n in names}
    assert header_bytes < len(carried) < header_bytes + body_bytes  # cut inside the archive itself

    assert [s.name for s in backup.list_snapshots(container)] == names
    stored = sorted(b.name for b in container.list_blobs(include=["uncommittedblobs"]))
    assert stored == [name + backup.EDGE_SUFFIX for name in names]
    for name, archive, points in earlier:
        assert container.download_blob(name + backup.EDGE_SUFFIX).readall() == archive
        target = EdgeEngine(tmp_path / f"restored-{name}")
        restored = backup.restore_snapshot(ctx.settings, target, container, name)
        assert restored == sum(len(p) for p in points.values())
        assert every_point(target, ctx.settings) == points
        target.close()

    with ctx.knowledge() as kb:
        latest = backup.create_snapshot(tighter, kb.client, container)
    assert [s.name for s in backup.list_snapshots(container)] == [names[-1], latest.name]


class _SnapshotEndpoints(BaseHTTPRequestHandler):
    """A loopback stand-in for the three Qdrant server endpoints a server-mode snapshot uses
    (create, download, delete), since no Qdrant server runs in the tests. Each collection's
    snapshot has the size the server was given, so the cut can be placed in a chosen upload."""

    server: _QdrantSnapshots

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on what was served instead."""

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _result(self, result: object) -> None:
        self._reply(200, json.dumps({"result": result, "status": "ok", "time": 0.0}).encode())

    def do_POST(self) -> None:
        collection = self.path.split("/")[2]
        name = f"{collection}-{len(self.server.made)}.snapshot"
        data = random.Random(name).randbytes(self.server.sizes[collection])
        self.server.made[name] = self.server.live[name] = data
        self._result({"name": name, "creation_time": None, "size": len(data), "checksum": None})

    def do_GET(self) -> None:
        self._reply(200, self.server.live[self.path.split("/")[4]], "application/octet-stream")

    def do_DELETE(self) -> None:
        del self.server.live[self.path.split("/")[4].split("?")[0]]
        self._result(True)


class _QdrantSnapshots(ThreadingHTTPServer):
    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _SnapshotEndpoints)
        self.sizes = sizes
        self.made: dict[str, bytes] = {}  # every snapshot the server made, by name
        self.live: dict[str, bytes] = {}  # those not deleted again
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_interrupted_server_snapshot_leaves_no_partial_snapshot(azurite: Azurite, tmp_path: Path) -> None:
    """With a Qdrant server, a snapshot is one blob per collection. When the upload of the second
    is cut off, the first must not stay behind: listed, it would pass for the newest snapshot,
    count against the retention and restore one collection only. The earlier snapshot stays
    whole and the server's own snapshots are deleted either way."""
    base = app_settings(azurite, tmp_path / "unused")
    phases, streams = backup.collections_of(base)
    server = _QdrantSnapshots({phases: 1024, streams: 256 * 1024})
    url = f"http://127.0.0.1:{server.server_address[1]}"
    settings = base.model_copy(update={"qdrant_url": url, "snapshot_retention": 1})
    client = QdrantClient(url=url, timeout=5, check_compatibility=False)
    container = Storage(settings).container(settings.snapshots_container)
    try:
        good = backup.create_snapshot(settings, client, container)
        with CuttingRelay(azurite.ports["blob"], cut_after=64 * 1024) as relay, pytest.raises(AzureError):
            backup.create_snapshot(settings, client, relay.container(azurite, container.container_name))
    finally:
        server.shutdown()
        server.server_close()
    [carried] = relay.cut
    assert f"/{streams}{backup.SERVER_SUFFIX} HTTP/1.1" in carried.split(b"\r\n", 1)[0].decode()

    listed = [(s.name, sorted(s.blobs), s.kind) for s in backup.list_snapshots(container)]
    assert listed == [(good.name, sorted(good.blobs), "server")]
    assert sorted(b.name for b in container.list_blobs()) == sorted(good.blobs)
    for number, collection in enumerate((phases, streams)):  # the server's first two snapshots
        blob = f"{good.name}/{collection}{backup.SERVER_SUFFIX}"
        assert container.download_blob(blob).readall() == server.made[f"{collection}-{number}.snapshot"]
    assert len(server.made) == 4 and server.live == {}


# -------------------------------------------------------------- child roles --
class _DiesBeforeWriting(QdrantClient):
    """An embedded client whose process exits (137, as SIGKILL leaves it) at the moment the
    ingest hands it phase points to write, once ``written_before_kill`` points went through."""

    def __init__(self, path: str, phases: str, written_before_kill: int) -> None:
        super().__init__(path=path)
        self.phases, self.budget, self.written = phases, written_before_kill, 0

    def upsert(self, collection_name: str, points: Any, *args: Any, **kwargs: Any) -> qm.UpdateResult:
        if collection_name == self.phases:
            if self.written + len(points) > self.budget:
                vectors = sum(1 for p in points if isinstance(p.vector, dict) and p.vector.get(DENSE))
                print(json.dumps({"written": self.written, "vectors_in_hand": vectors}), flush=True)
                os._exit(137)
            self.written += len(points)
        return super().upsert(collection_name, points, *args, **kwargs)


def _deliver_and_die(raw: str) -> int:
    """Deliver one queue message to the real queue trigger in a process that dies mid-ingest."""
    spec = json.loads(raw)
    settings = load_settings(**spec["settings"])
    client = _DiesBeforeWriting(str(settings.qdrant_path), settings.qdrant_collection, spec["written_before_kill"])
    ctx = AppContext(settings, kb=KnowledgeBase(settings, client=client))
    message = spec["message"]
    trigger = TriggerMessage(id=message["id"], body=message["body"], dequeue_count=message["dequeue_count"])
    function_map(ctx)["ingest_job"](trigger)
    print("the delivery completed: the process was not killed", flush=True)
    return 1


def _hold_qdrant(path: str) -> int:
    """Open the embedded Qdrant store and keep its lock until stdin closes."""
    engine = EdgeEngine(Path(path) / EDGE_DIR)
    print("holding", flush=True)
    sys.stdin.read()
    engine.close()
    return 0


if __name__ == "__main__":
    role, *arguments = sys.argv[1:]
    raise SystemExit({"deliver-and-die": _deliver_and_die, "hold-qdrant": _hold_qdrant}[role](*arguments))
