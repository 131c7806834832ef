"""Assemble the Functions app: the HTTP API (one ASGI function) and the trigger blueprints."""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from functions import blob_triggers, ingest_queue, snapshot_timer
from functions.api import create_api
from rag_core.context import AppContext


def create_function_app(get_context: Callable[[], AppContext]) -> func.AsgiFunctionApp:
    """The app for ``get_context`` (the process' context in ``function_app.py``, a test's in tests)."""
    app = func.AsgiFunctionApp(app=create_api(get_context), http_auth_level=func.AuthLevel.FUNCTION)
    for module in (ingest_queue, blob_triggers, snapshot_timer):
        app.register_functions(module.blueprint(get_context))
    return app
