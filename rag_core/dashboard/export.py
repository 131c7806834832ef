"""CSV exports of streams and phases for one brand (or all), as Excel in Japan opens them.

An unscoped (admin) export spans brands, and video ids are unique only per brand, so it leads
with a ``brand_id`` column (empty for unscoped data) that tells two brands' same id apart; a
brand's own export has no such column, so it is the same whatever other brands store.

UTF-8 with a BOM: without it Excel on a Japanese Windows reads the file as Shift_JIS and turns every
liver name and phase text into mojibake. CRLF line ends, the csv module's default, are what Excel
writes itself.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from qdrant_client import models as qm

from rag_core.context import AppContext
from rag_core.knowledge.store import brand_condition

STREAM_COLUMNS = [
    "video_id", "stream_date", "liver_id", "liver_name", "platform", "gmv", "orders", "items_sold",
    "viewers", "cvr", "gpm", "phase_count", "source_pattern",
]  # fmt: skip
PHASE_COLUMNS = [
    "video_id", "phase_index", "liver_id", "liver_name", "stream_date", "phase_type", "start_sec", "end_sec",
    "duration_sec", "quality_score", "gmv", "speech_text",
]  # fmt: skip


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in columns} for r in rows)
    return out.getvalue().encode("utf-8-sig")


def _columns(columns: list[str], brand_id: int | None) -> list[str]:
    return ["brand_id", *columns] if brand_id is None else columns


def _liver(liver_id: str | None) -> list[qm.Condition]:
    return [qm.FieldCondition(key="liver_id", match=qm.MatchValue(value=liver_id))] if liver_id else []


def streams_csv(ctx: AppContext, *, brand_id: int | None = None, liver_id: str | None = None) -> bytes:
    """One row per stream, newest first."""
    with ctx.knowledge() as kb:
        columns = _columns(STREAM_COLUMNS, brand_id)
        rows = kb.store.streams_matching(*_liver(liver_id), brand_id=brand_id, fields=columns)
    rows.sort(key=lambda r: (r.get("stream_date") or "", r.get("video_id") or ""), reverse=True)
    return _csv(columns, rows)


def phases_csv(ctx: AppContext, *, brand_id: int | None = None, liver_id: str | None = None) -> bytes:
    """One row per phase (``gmv`` is its stream's), by stream and phase order."""
    must = [*_liver(liver_id), *brand_condition(brand_id)]
    columns = _columns(PHASE_COLUMNS, brand_id)
    with ctx.knowledge() as kb:
        records = kb.store.scroll(kb.store.phases, qm.Filter(must=must) if must else None, columns)
        rows = [r.payload or {} for r in records]
    rows.sort(key=lambda r: (r.get("stream_date") or "", r.get("video_id") or "", r.get("phase_index") or 0))
    return _csv(columns, rows)
