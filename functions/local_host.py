"""Run the app without the Functions host: the API under uvicorn plus a polling worker, in ONE process.

    python -m functions.local_host --port 7071        # against Azurite (scripts/run.sh serve starts one)

One process, because embedded Qdrant allows a single client per storage
folder. The worker thread does what the host's triggers do, by calling the
same rag_core handlers:

* the ingest queue: one message at a time goes to ``handle_job_message``; a
  message that fails is retried after a short delay and, once delivered
  ``MAX_DEQUEUE_COUNT`` times, moved to ``<queue>-poison`` with the reason
  (the host's poison behaviour, which no host provides here). Only the message
  being run is leased, for ``QUEUE_VISIBILITY_SEC``, and the lease is renewed
  while its job runs: after a crash, messages not started were never hidden,
  and the one that was running is back within that many seconds (not the
  five minutes a long fixed lease would cost). A message delivered more than
  ``MAX_DEQUEUE_COUNT`` times (each run died with its process) is not run
  again: its job is failed and the message poisoned; a message that is not a
  job at all is poisoned at once;
* every ``SWEEP_INTERVAL`` seconds, the stuck-job sweep
  (``rag_core.ingestion.runner.sweep_stuck_jobs``);
* the inbox container and ``uploads/sales/``, ``uploads/screen-recordings/``:
  new or changed blobs go to ``accept_inbox_file`` / ``accept_upload`` (their
  job ids are content-derived, so a restart that sees every blob again
  submits nothing twice).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobProperties, ContainerClient
from azure.storage.queue import QueueClient, QueueMessage

from rag_core.context import AppContext, default_context
from rag_core.ingestion.blob_intake import accept_inbox_file, accept_upload
from rag_core.ingestion.runner import handle_job_message, is_permanent, sweep_stuck_jobs
from rag_core.ingestion.uploads import RECORDINGS_PREFIX, SALES_PREFIX
from rag_core.jobs.records import JobMessage

log = logging.getLogger("functions.local_host")

SWEEP_INTERVAL = 300.0


class _Lease:
    """Keeps one received message invisible while its job runs, renewing it every third of
    the visibility timeout; ``message`` holds the latest pop receipt for the final delete."""

    def __init__(self, queue: QueueClient, message: QueueMessage, visibility: int) -> None:
        self.queue, self.message, self.visibility = queue, message, visibility
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _renew(self) -> None:
        while not self._stop.wait(self.visibility / 3):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    self.message = self.queue.update_message(self.message, visibility_timeout=self.visibility)
                except AzureError as exc:  # the next renewal tries again; at worst the message reappears
                    log.warning("could not renew the lease of message %s: %s", self.message.id, exc)

    @contextmanager
    def held(self) -> Iterator[_Lease]:
        renewer = threading.Thread(target=self._renew, name="lease-renewal", daemon=True)
        renewer.start()
        try:
            yield self
        finally:
            with self._lock:
                self._stop.set()
            renewer.join()


class LocalWorker:
    """Polls the ingest queue and the drop containers of one AppContext."""

    def __init__(
        self,
        ctx: AppContext,
        *,
        retry_delay: int = 5,
    ) -> None:
        self.ctx = ctx
        self.visibility_timeout = ctx.settings.queue_visibility_sec
        self.retry_delay = retry_delay
        self._seen: set[tuple[str, str, str]] = set()  # (container, name, etag)
        self._swept_at = -SWEEP_INTERVAL

    @cached_property
    def queue(self) -> QueueClient:
        return self.ctx.storage.queue(self.ctx.settings.ingest_queue)

    @cached_property
    def poison_queue(self) -> QueueClient:
        return self.ctx.storage.queue(f"{self.ctx.settings.ingest_queue}-poison")

    @cached_property
    def inbox(self) -> ContainerClient:
        return self.ctx.storage.container(self.ctx.settings.inbox_container)

    @cached_property
    def uploads(self) -> ContainerClient:
        return self.ctx.storage.container(self.ctx.settings.uploads_container)

    def poll_once(self) -> int:
        """One pass over the drop containers, the queue and (when due) the sweep; returns
        messages handled."""
        self._scan_inbox()
        self._scan_uploads()
        if time.monotonic() - self._swept_at >= SWEEP_INTERVAL:
            sweep_stuck_jobs(self.ctx)
            self._swept_at = time.monotonic()
        return self._drain_queue()

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        while not stop.is_set():
            try:
                busy = self.poll_once()
            except AzureError as exc:
                log.warning("storage not reachable: %s", exc)
                busy = 0
            if not busy:
                stop.wait(interval)

    # ------------------------------------------------------------------ queue --
    def _drain_queue(self) -> int:
        """Run the next message, if any (one at a time, so no other message is held meanwhile)."""
        queue = self.queue
        received = queue.receive_message(visibility_timeout=self.visibility_timeout)
        if received is None:
            return 0
        deliveries = received.dequeue_count or 1
        with _Lease(queue, received, self.visibility_timeout).held() as lease:
            try:
                handle_job_message(self.ctx, received.content, dequeue_count=deliveries)
            except Exception as exc:
                # What escapes the handler as permanent is a message that is not a job at all:
                # no delivery will ever read it, so it goes to poison at once.
                if is_permanent(exc) or deliveries >= self.ctx.settings.max_dequeue_count:
                    self._poison(lease.message, f"{type(exc).__name__}: {exc}")
                else:
                    queue.update_message(lease.message, visibility_timeout=self.retry_delay)
                return 1
        if deliveries > self.ctx.settings.max_dequeue_count:
            self._poison(lease.message, f"delivered {deliveries} times; no attempt finished")
        else:
            queue.delete_message(lease.message)
        return 1

    def _poison(self, msg: QueueMessage, reason: str) -> None:
        """Move a message that failed its last delivery to ``<queue>-poison``, the reason added."""
        body: bytes = msg.content
        try:
            message = JobMessage.model_validate_json(body)
        except ValueError:
            pass  # not ours: moved unchanged
        else:
            body = message.model_copy(update={"poison_reason": reason}).model_dump_json().encode()
        self.poison_queue.send_message(body)
        self.queue.delete_message(msg)
        log.error(
            "message %s moved to %s after %s deliveries: %s",
            msg.id,
            self.poison_queue.queue_name,
            msg.dequeue_count,
            reason,
        )

    # ------------------------------------------------------------------ blobs --
    def _once(
        self, container: ContainerClient, blob: BlobProperties, accept: Callable[[BlobProperties], object]
    ) -> None:
        """Hand a blob to its handler unless this version of it was handled already."""
        key = (container.container_name, blob.name, blob.etag)
        if key in self._seen:
            return
        try:
            accept(blob)
        except Exception:
            log.exception("blob %s/%s not handled; retried on the next poll", *key[:2])
            return
        self._seen.add(key)

    def _accept_inbox(self, blob: BlobProperties) -> None:
        accept_inbox_file(self.ctx, blob.name, self.inbox.download_blob(blob.name).readall())

    def _accept_upload(self, blob: BlobProperties) -> None:
        accept_upload(self.ctx, blob.name, blob.size or 0, blob.metadata)

    def _scan_inbox(self) -> None:
        for blob in self.inbox.list_blobs():
            self._once(self.inbox, blob, self._accept_inbox)

    def _scan_uploads(self) -> None:
        for prefix in (SALES_PREFIX, RECORDINGS_PREFIX):
            for blob in self.uploads.list_blobs(name_starts_with=prefix, include=["metadata"]):
                self._once(self.uploads, blob, self._accept_upload)


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from functions.api import create_api

    parser = argparse.ArgumentParser(prog="python -m functions.local_host", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds between idle polls")
    parser.add_argument("--no-worker", action="store_true", help="serve the API only (no queue/blob polling)")
    args = parser.parse_args(argv)
    ctx = default_context()  # also sets up structured, redacted logging

    stop = threading.Event()
    if not args.no_worker:
        worker = threading.Thread(
            target=LocalWorker(ctx).run, args=(stop, args.poll_interval), name="local-worker", daemon=True
        )
        worker.start()
    try:
        uvicorn.run(create_api(lambda: ctx), host=args.host, port=args.port, log_level=ctx.settings.log_level.lower())
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
