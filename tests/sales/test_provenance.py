"""The per-field provenance kept beside a stream: bounded, and merged as the figures are."""

from __future__ import annotations

import datetime as dt

from rag_core.analysis.record import Sales
from rag_core.sales.fields import FieldReading, SalesExtraction
from rag_core.sales.provenance import MAX_FIELDS, MAX_RAW_TEXT, FieldProvenance, merge_provenance, provenance_of

AT = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _entry(field: str, value: float | None, job: str) -> FieldProvenance:
    return FieldProvenance(field=field, value=value, confidence=0.9, provider="local", job_id=job)


def test_a_huge_product_table_is_kept_bounded_with_the_sales_fields_first() -> None:
    fields = {f"set_products.{i}.sold": FieldReading(value=i, confidence=1, raw_text="9" * 500) for i in range(300)}
    fields["gmv"] = FieldReading(value=1.0, confidence=0.7, raw_text="¥1")
    extraction = SalesExtraction(sales=Sales(gmv=1.0), fields=fields, provider="azure")
    entries = provenance_of(extraction, job_id="j1", read_at=AT)
    assert len(entries) == MAX_FIELDS and entries[0].field == "gmv" and entries[0].provider == "azure"
    assert all(len(e.raw_text or "") <= MAX_RAW_TEXT for e in entries)


def test_a_refused_read_keeps_the_earlier_value_and_new_products_replace_old_ones() -> None:
    old = [_entry("gmv", 100.0, "j1"), _entry("orders", 5.0, "j1"), _entry("set_products.3.sold", 2.0, "j1")]
    new = [_entry("gmv", None, "j2"), _entry("orders", 6.0, "j2"), _entry("set_products.0.sold", 1.0, "j2")]
    merged = {e.field: e.job_id for e in merge_provenance(old, new, replaces_products=True)}
    assert merged == {"gmv": "j1", "orders": "j2", "set_products.0.sold": "j2"}
    kept = {e.field: e.job_id for e in merge_provenance(old, new, replaces_products=False)}
    assert kept == {"gmv": "j1", "orders": "j2", "set_products.3.sold": "j1"}  # the product table was not stored
