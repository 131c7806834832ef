"""Backfill: load past analyses from local files, Azure Blob Storage or an HTTP API."""

from rag_core.operations.backfill.cli import BackfillSummary, run_backfill
from rag_core.operations.backfill.sources import ApiSource, AzureBlobSource, LocalSource, SourceItem

__all__ = ["ApiSource", "AzureBlobSource", "BackfillSummary", "LocalSource", "SourceItem", "run_backfill"]
