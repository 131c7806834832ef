"""Timer trigger (``SNAPSHOT_SCHEDULE``): snapshot both Qdrant collections into Blob storage."""

from __future__ import annotations

import logging
from collections.abc import Callable

import azure.functions as func

from rag_core.app_context import AppContext
from rag_core.backup import create_snapshot

log = logging.getLogger(__name__)


def blueprint(get_context: Callable[[], AppContext]) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("qdrant_snapshot")
    @bp.timer_trigger(arg_name="timer", schedule="%SNAPSHOT_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def qdrant_snapshot(timer: func.TimerRequest) -> None:
        if timer.past_due:
            log.info("snapshot timer is past due; taking the snapshot now")
        ctx = get_context()
        container = ctx.storage.container(ctx.settings.snapshots_container)
        with ctx.knowledge() as kb:
            create_snapshot(ctx.settings, kb.client, container)

    return bp
