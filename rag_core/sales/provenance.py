"""Per-field provenance of a stream's stored sales: which read gave each figure, and how sure it was.

The ingest worker keeps this beside the stream record (not in the job record, whose size Table
Storage bounds), so the dashboard and ``GET /external/videos/{id}`` can show, field by field, the
text a screenshot read, its confidence, whether the reads disagreed, and the job that read it.

It is merged the way :meth:`rag_core.knowledge.store.KnowledgeStore.update_outcome` merges the
figures themselves: a new read of a sales field replaces the old one unless it was refused while
the old one was kept (the stored figure still comes from the old read), and a read that found
products replaces every product field (``set_products`` is replaced whole). The list is bounded
(``MAX_FIELDS`` entries, raw text cut at ``MAX_RAW_TEXT`` characters) whatever the screenshot shows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from pydantic import BaseModel, Field

from rag_core.sales.fields import Provider, SalesExtraction

MAX_FIELDS = 120  # the 20 sales fields and ~14 product rows of 7 fields
MAX_RAW_TEXT = 80
PRODUCT_PREFIX = "set_products."


class FieldProvenance(BaseModel):
    """One field as a reader saw it, and the job that read it."""

    field: str = Field(description="a Sales field name, or set_products.<i>.<field>")
    value: float | str | None = Field(description="the value read; null when it was refused")
    confidence: float = Field(ge=0, le=1)
    uncertain: bool = Field(False, description="the reads disagreed and nothing decided (value null)")
    raw_text: str | None = None
    provider: Provider
    job_id: str | None = None
    read_at: dt.datetime | None = None


def provenance_of(extraction: SalesExtraction, *, job_id: str | None, read_at: dt.datetime) -> list[FieldProvenance]:
    """The extraction's field readings as provenance entries, sales fields first, bounded."""
    entries = [
        FieldProvenance(
            field=key,
            value=reading.value,
            confidence=reading.confidence,
            uncertain=reading.uncertain,
            raw_text=reading.raw_text[:MAX_RAW_TEXT] if reading.raw_text is not None else None,
            provider=extraction.provider,
            job_id=job_id,
            read_at=read_at,
        )
        for key, reading in extraction.fields.items()
    ]
    entries.sort(key=lambda e: e.field.startswith(PRODUCT_PREFIX))  # stable: screen order kept within each
    return entries[:MAX_FIELDS]


def merge_provenance(
    old: Iterable[FieldProvenance], new: Iterable[FieldProvenance], *, replaces_products: bool
) -> list[FieldProvenance]:
    """``new`` over ``old`` as the stored figures are merged (see the module docstring)."""
    merged = {e.field: e for e in old if not (replaces_products and e.field.startswith(PRODUCT_PREFIX))}
    for entry in new:
        if entry.field.startswith(PRODUCT_PREFIX) and not replaces_products:
            continue  # a product table that was not stored (none of its rows could be read)
        kept = merged.get(entry.field)
        if entry.value is None and kept is not None and kept.value is not None:
            continue
        merged[entry.field] = entry
    ordered = sorted(merged.values(), key=lambda e: e.field.startswith(PRODUCT_PREFIX))
    return ordered[:MAX_FIELDS]
