"""Timer trigger (``SNAPSHOT_SCHEDULE``): snapshot both Qdrant collections into Blob storage."""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from rag_core.context import AppContext
from rag_core.operations.backup import snapshot_on_schedule


def blueprint(get_context: Callable[[], AppContext]) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("qdrant_snapshot")
    @bp.timer_trigger(arg_name="timer", schedule="%SNAPSHOT_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def qdrant_snapshot(timer: func.TimerRequest) -> None:
        snapshot_on_schedule(get_context(), past_due=timer.past_due)

    return bp
