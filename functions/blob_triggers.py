"""Blob triggers: analysis files dropped into the inbox, screenshots and recordings dropped into uploads.

They use the Event Grid source, the only one Flex Consumption supports (see
docs/operations.md for the subscription). The local runner polls the same
containers and calls the same rag_core handlers.
"""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from rag_core.context import AppContext
from rag_core.ingestion.blob_intake import accept_inbox_file, accept_upload

CONNECTION = "AzureWebJobsStorage"


def relative_name(blob: func.InputStream) -> str:
    """The blob's name inside its container (the host gives ``<container>/<name>``)."""
    return (blob.name or "").split("/", 1)[-1]


def metadata(blob: func.InputStream) -> dict[str, str]:
    """The blob's metadata: the host's InputStream carries it, the abstract type does not say so."""
    return dict(getattr(blob, "metadata", None) or {})


def blueprint(get_context: Callable[[], AppContext]) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("inbox_file")
    @bp.blob_trigger(
        arg_name="blob", path="%INBOX_CONTAINER%/{name}", connection=CONNECTION, source=func.BlobSource.EVENT_GRID
    )
    def inbox_file(blob: func.InputStream) -> None:
        accept_inbox_file(get_context(), relative_name(blob), blob.read())

    @bp.function_name("sales_upload")
    @bp.blob_trigger(
        arg_name="blob",
        path="%UPLOADS_CONTAINER%/sales/{name}",
        connection=CONNECTION,
        source=func.BlobSource.EVENT_GRID,
    )
    def sales_upload(blob: func.InputStream) -> None:
        accept_upload(get_context(), relative_name(blob), blob.length or 0, metadata(blob))

    @bp.function_name("screen_recording_upload")
    @bp.blob_trigger(
        arg_name="blob",
        path="%UPLOADS_CONTAINER%/screen-recordings/{name}",
        connection=CONNECTION,
        source=func.BlobSource.EVENT_GRID,
    )
    def screen_recording_upload(blob: func.InputStream) -> None:
        accept_upload(get_context(), relative_name(blob), blob.length or 0, metadata(blob))

    return bp
