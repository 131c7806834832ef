"""Ingestion: submissions and uploads accepted, blobs dropped in, queued jobs run to the knowledge base."""

from rag_core.ingestion.blob_intake import accept_inbox_file, accept_upload
from rag_core.ingestion.runner import handle_job_message
from rag_core.ingestion.submission import StoreRequest, Submitted, submit_store_request

__all__ = [
    "StoreRequest",
    "Submitted",
    "accept_inbox_file",
    "accept_upload",
    "handle_job_message",
    "submit_store_request",
]
