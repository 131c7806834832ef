"""Queue trigger on ``INGEST_QUEUE``: run one ingest job per message.

Retries and poisoning are the host's (``host.json`` queues.maxDequeueCount);
the handler records the job ``failed`` on the last delivery before re-raising.
"""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from rag_core.context import AppContext
from rag_core.ingestion.runner import handle_job_message


def blueprint(get_context: Callable[[], AppContext]) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("ingest_job")
    @bp.queue_trigger(arg_name="msg", queue_name="%INGEST_QUEUE%", connection="AzureWebJobsStorage")
    def ingest_job(msg: func.QueueMessage) -> None:
        handle_job_message(get_context(), msg.get_body(), dequeue_count=msg.dequeue_count or 1)

    return bp
