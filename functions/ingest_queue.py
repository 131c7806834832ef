"""Queue trigger on ``INGEST_QUEUE``: run one ingest job per message; and the stuck-job sweep.

Retries and poisoning are the host's (``host.json`` queues.maxDequeueCount);
the handler records the job ``failed`` on the last delivery before re-raising.
The host leases each message for its run and renews the lease while the
function runs, so a message whose worker died comes back after the short
``queues.visibilityTimeout``.

Every ten minutes ``stuck_job_sweep`` fails the jobs no message will ever move
again (see ``rag_core.ingestion.runner.sweep_stuck_jobs``).
"""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from rag_core.context import AppContext
from rag_core.ingestion.runner import handle_job_message, sweep_stuck_jobs

SWEEP_SCHEDULE = "0 */10 * * * *"


def blueprint(get_context: Callable[[], AppContext]) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("ingest_job")
    @bp.queue_trigger(arg_name="msg", queue_name="%INGEST_QUEUE%", connection="AzureWebJobsStorage")
    def ingest_job(msg: func.QueueMessage) -> None:
        handle_job_message(get_context(), msg.get_body(), dequeue_count=msg.dequeue_count or 1)

    @bp.function_name("stuck_job_sweep")
    @bp.timer_trigger(arg_name="timer", schedule=SWEEP_SCHEDULE, run_on_startup=False)
    def stuck_job_sweep(timer: func.TimerRequest) -> None:
        sweep_stuck_jobs(get_context())

    return bp
