"""Knowledge-base statistics, per-liver analysis and top-performer comparison.

All three read the stream collection (one small record per video carrying its
sales and phase aggregates), never the phase points, except to fetch a few
example phases or to let the engine count them. Stats take counts and
distributions from the engine (counts, facets over payload indexes) and read
only the numbers it cannot sum; on the embedded engine the result is reused
until the next write. See docs/analytics.md for the figures and the design.
Sorting happens over every matching stream, so "top" is the true top, not the
top of an arbitrary page (a defect of the old service).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable
from fractions import Fraction
from statistics import mean
from typing import Any

from qdrant_client import models as qm

from rag_core.knowledge.engine import EdgeEngine
from rag_core.knowledge.quality import HIGH_QUALITY
from rag_core.knowledge.schemas import (
    KnowledgeStats,
    LiverSummary,
    PerformerRow,
    PhaseExample,
    PhaseMixContrast,
    TopPerformerQuery,
    TopPerformerReport,
    TrendPoint,
)
from rag_core.knowledge.store import KnowledgeStore, brand_condition

_SUM_FIELDS = ["gmv", "cvr", "quality_total", "stream_date", "updated_at"]
# A stream's summary: what stats sum and count, what top performers rank and contrast, what the
# dashboard lists. The embedded engine keeps these per stream in memory (the phase aggregates
# ingest and feedback keep current); see :func:`stream_summaries`.
SUMMARY_FIELDS = [
    *_SUM_FIELDS, "video_id", "brand_id", "liver_id", "liver_name", "gpm", "orders", "viewers", "source_pattern",
    "phase_count", "phase_types", "phase_durations", "high_quality_phases",
]  # fmt: skip
_FACET_ALL = 1_000_000  # facets here list every value, not the first few
_STREAM_KIND = qm.FieldCondition(key="kind", match=qm.MatchValue(value="stream"))


def _num(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float)]


def stats(store: KnowledgeStore, *, brand_id: int | None = None) -> KnowledgeStats:
    """Totals over the whole knowledge base (or one brand); reused until the next write."""
    return store.memo(("stats", brand_id), lambda: _stats(store, brand_id))


class _Totals:
    """Running totals over stream records, to which a record is added and from which it is
    removed again when it changes: sums as exact fractions (so removing gives back what
    adding gave, and the result equals a fresh sum), distributions as counters."""

    def __init__(self) -> None:
        self.streams = 0
        self.phases = 0
        self.high_quality = 0
        self.gmv, self.cvr, self.quality = Fraction(0), Fraction(0), Fraction(0)
        self.gmv_n = self.cvr_n = 0
        self.types: Counter[str] = Counter()
        self.sources: Counter[str] = Counter()
        self.livers: Counter[str] = Counter()
        self.dates: Counter[str] = Counter()
        self.updated: Counter[str] = Counter()

    def copy(self) -> _Totals:
        twin = _Totals()
        twin.__dict__.update({k: v.copy() if isinstance(v, Counter) else v for k, v in self.__dict__.items()})
        return twin

    def change(self, record: dict[str, Any], sign: int) -> None:
        """Add (``sign`` 1) or remove (-1) one stream record."""
        self.streams += sign
        self.phases += sign * int(record.get("phase_count") or 0)
        self.high_quality += sign * int(record.get("high_quality_phases") or 0)
        self.quality += sign * Fraction(float(record.get("quality_total") or 0.0))
        for key in ("gmv", "cvr"):
            value = record.get(key)
            if isinstance(value, int | float):
                setattr(self, key, getattr(self, key) + sign * Fraction(value))
                setattr(self, f"{key}_n", getattr(self, f"{key}_n") + sign)
        _count(self.types, record.get("phase_types") or {}, sign)
        _count(self.sources, {str(record.get("source_pattern") or "unknown"): 1}, sign)
        for counter, key in ((self.livers, "liver_id"), (self.dates, "stream_date"), (self.updated, "updated_at")):
            if record.get(key):
                _count(counter, {str(record[key]): 1}, sign)

    def stats(self) -> KnowledgeStats:
        return KnowledgeStats(
            total_gmv=float(self.gmv),
            total_livers=len(self.livers),
            total_videos=self.streams,
            total_phases=self.phases,
            avg_cvr=round(float(self.cvr / self.cvr_n), 4) if self.cvr_n else None,
            avg_gmv_per_stream=round(float(self.gmv / self.gmv_n), 2) if self.gmv_n else None,
            average_quality_score=round(float(self.quality / self.phases), 4) if self.phases else None,
            high_quality_entries=self.high_quality,
            phase_type_distribution=dict(self.types.most_common()),
            data_source_distribution=dict(self.sources),
            period_from=dt.date.fromisoformat(min(self.dates)) if self.dates else None,
            period_to=dt.date.fromisoformat(max(self.dates)) if self.dates else None,
            updated_at=dt.datetime.fromisoformat(max(self.updated)) if self.updated else None,
        )


def _count(counter: Counter[str], counts: dict[str, Any], sign: int) -> None:
    for key, n in counts.items():
        counter[key] += sign * int(n)
        if counter[key] == 0:
            del counter[key]


# Per store and brand scope: the engine version they were read at, the stream records by id, their totals.
_kept: weakref.WeakKeyDictionary[KnowledgeStore, dict[int | None, tuple[int, dict[str, dict[str, Any]], _Totals]]] = (
    weakref.WeakKeyDictionary()
)
_kept_lock = threading.Lock()
# Per store: held by the one thread reading every stream, so that others needing a full read wait for its result.
_full_reads: weakref.WeakKeyDictionary[KnowledgeStore, threading.Lock] = weakref.WeakKeyDictionary()


def stream_summaries(store: KnowledgeStore, *, brand_id: int | None = None) -> list[dict[str, Any]]:
    """Every stream's ``SUMMARY_FIELDS`` (of one brand, or all), for ranking and listing them.

    On the embedded engine these are the records kept for stats, refreshed from only the
    streams written since (:func:`_kept_streams`): the dashboard's overview and every top-
    performer comparison used to read all stream records again, about 0.3 s at 10k streams.
    The dicts are shared with that cache: read them, never change them. Elsewhere (a server
    other processes write to) they are read from the engine each time.
    """
    if isinstance(store.client, EdgeEngine):
        return list(_kept_streams(store, store.client, brand_id)[0].values())
    return store.streams_matching(brand_id=brand_id, fields=SUMMARY_FIELDS)


def _kept_streams(
    store: KnowledgeStore, client: EdgeEngine, brand_id: int | None
) -> tuple[dict[str, dict[str, Any]], _Totals]:
    """The stream records of a brand scope by point id and their totals, on the embedded engine.

    A stream point carries its whole record, and the engine parses a whole payload to
    return any field of it, so reading 10k streams takes most of a second. The records'
    ``SUMMARY_FIELDS`` and their totals are therefore kept between calls and refreshed from
    only the streams written since (``EdgeEngine.changes_since``): each one's old numbers
    are taken out of the totals and its new ones put in. A full read happens the first
    time, after a write by filter, or after more writes than the engine's change log keeps.
    """
    version = client.writes  # read first: a write during the refresh is re-read next time
    with _kept_lock:
        cached = _kept.get(store, {}).get(brand_id)
    changed = client.changes_since(store.streams, cached[0]) if cached is not None else None
    if cached is None or changed is None:
        return _read_every_stream(store, client, brand_id)
    if not changed:  # writes to phases only: keep the records, and remember how far they are current
        with _kept_lock:
            _kept.setdefault(store, {})[brand_id] = (version, cached[1], cached[2])
        return cached[1], cached[2]
    by_id, totals = dict(cached[1]), cached[2].copy()  # copies: another thread may read the kept ones
    found = {
        str(r.id): r.payload or {}
        for r in client.retrieve(store.streams, sorted(changed), with_payload=[*SUMMARY_FIELDS, "kind"])
    }
    for pid in changed:
        old = by_id.pop(pid, None)
        if old is not None:
            totals.change(old, -1)
        new = found.get(pid)
        if new is not None and new.pop("kind", None) == "stream" and brand_id in (None, new.get("brand_id")):
            by_id[pid] = new
            totals.change(new, 1)
    with _kept_lock:
        _kept.setdefault(store, {})[brand_id] = (version, by_id, totals)
    return by_id, totals


def _read_every_stream(
    store: KnowledgeStore, client: EdgeEngine, brand_id: int | None
) -> tuple[dict[str, dict[str, Any]], _Totals]:
    """The full read of :func:`_kept_streams`, done once for every brand scope: reading one
    brand's streams costs nearly what reading all does (the payloads are parsed whole), so
    each read keeps the records and totals of all brands and of the whole store. One thread
    reads at a time; the others wait and take its result when nothing was written since."""
    with _kept_lock:
        reading = _full_reads.setdefault(store, threading.Lock())
    with reading:
        with _kept_lock:
            cached = _kept.get(store, {}).get(brand_id)
        if cached is not None and client.changes_since(store.streams, cached[0]) == set():
            return cached[1], cached[2]  # read by the thread this one waited for
        version = client.writes  # read first: a write during the read is re-read next time
        scopes: dict[int | None, tuple[dict[str, dict[str, Any]], _Totals]] = {brand_id: ({}, _Totals())}
        for point in store.scroll(store.streams, qm.Filter(must=[_STREAM_KIND]), SUMMARY_FIELDS):
            record = point.payload or {}
            brand = record.get("brand_id")
            for scope in (None, brand) if isinstance(brand, int) else (None,):
                by_id, totals = scopes.setdefault(scope, ({}, _Totals()))
                by_id[str(point.id)] = record
                totals.change(record, 1)
        with _kept_lock:
            _kept.setdefault(store, {}).update({scope: (version, *kept) for scope, kept in scopes.items()})
        return scopes[brand_id]


def warm_up(store: KnowledgeStore) -> None:
    """Read every stream's totals now (on the embedded engine; a server aggregates by itself),
    so that the first stats request after a start answers from them (a full read of 100k
    streams takes most of a second)."""
    if isinstance(store.client, EdgeEngine):
        _read_every_stream(store, store.client, None)


def _stats(store: KnowledgeStore, brand_id: int | None) -> KnowledgeStats:
    """On the embedded engine, from the kept stream records (:func:`_kept_streams`). Elsewhere
    counts and distributions come from the engine (counts and facets over indexed fields),
    and only what it cannot aggregate (sums, means, the date span) reads the streams."""
    if isinstance(store.client, EdgeEngine):
        return _kept_streams(store, store.client, brand_id)[1].stats()
    client = store.client
    brand = brand_condition(brand_id)
    stream_filter = qm.Filter(must=[_STREAM_KIND, *brand])
    phases = qm.Filter(must=brand) if brand else None
    high = qm.Filter(must=[qm.FieldCondition(key="quality_score", range=qm.Range(gte=HIGH_QUALITY)), *brand])

    def facet(collection: str, key: str, flt: qm.Filter | None) -> dict[str, int]:
        hits = client.facet(collection, key, facet_filter=flt, limit=_FACET_ALL, exact=True).hits
        return {str(h.value): h.count for h in hits}

    videos = client.count(store.streams, count_filter=stream_filter, exact=True).count
    sources = Counter(facet(store.streams, "source_pattern", stream_filter))
    if videos > sum(sources.values()):
        sources["unknown"] += videos - sum(sources.values())
    return _totals(
        store.streams_matching(brand_id=brand_id, fields=_SUM_FIELDS),
        total_phases=client.count(store.phases, count_filter=phases, exact=True).count,
        high_quality=client.count(store.phases, count_filter=high, exact=True).count,
        livers=len(facet(store.streams, "liver_id", stream_filter)),
        types=Counter(facet(store.phases, "phase_type", phases)),
        sources=sources,
    )


def _totals(
    streams: list[dict[str, Any]],
    *,
    total_phases: int,
    high_quality: int,
    livers: int,
    types: Counter[str],
    sources: Counter[str],
) -> KnowledgeStats:
    """The stats from the stream records' numbers and the counts given."""
    gmvs = _num(s.get("gmv") for s in streams)
    cvrs = _num(s.get("cvr") for s in streams)
    quality_total = math.fsum(float(s.get("quality_total") or 0.0) for s in streams)
    dates = [s["stream_date"] for s in streams if s.get("stream_date")]
    updated = [s["updated_at"] for s in streams if s.get("updated_at")]
    return KnowledgeStats(
        total_gmv=sum(gmvs),
        total_livers=livers,
        total_videos=len(streams),
        total_phases=total_phases,
        # fsum / n, not statistics.mean: the same to the rounding, without mean's exact fractions (ms at 10k)
        avg_cvr=round(math.fsum(cvrs) / len(cvrs), 4) if cvrs else None,
        avg_gmv_per_stream=round(sum(gmvs) / len(gmvs), 2) if gmvs else None,
        average_quality_score=round(quality_total / total_phases, 4) if total_phases else None,
        high_quality_entries=high_quality,
        phase_type_distribution=dict(types.most_common()),
        data_source_distribution=dict(sources),
        period_from=dt.date.fromisoformat(min(dates)) if dates else None,
        period_to=dt.date.fromisoformat(max(dates)) if dates else None,
        updated_at=dt.datetime.fromisoformat(max(updated)) if updated else None,
    )


def _liver_filter(liver_id: str) -> qm.FieldCondition:
    return qm.FieldCondition(key="liver_id", match=qm.MatchValue(value=liver_id))


def _phase_examples(
    store: KnowledgeStore, conditions: list[qm.Condition], *, brand_id: int | None, limit: int, best: bool
) -> list[PhaseExample]:
    """Phases ranked by feedback quality, then by their stream's GMV."""
    fields = [
        "video_id",
        "brand_id",
        "phase_index",
        "phase_type",
        "duration_sec",
        "speech_text",
        "gmv",
        "quality_score",
    ]
    flt = qm.Filter(must=[*conditions, *brand_condition(brand_id)])
    rows = [p.payload or {} for p in store.scroll(store.phases, flt, fields)]
    rows.sort(key=lambda r: (r.get("quality_score") or 0.0, r.get("gmv") or 0.0), reverse=best)
    return [
        PhaseExample(**{k: r.get(k) for k in PhaseExample.model_fields if r.get(k) is not None}) for r in rows[:limit]
    ]


def liver_summary(store: KnowledgeStore, liver_id: str, *, brand_id: int | None = None) -> LiverSummary | None:
    """What one liver's streams achieved, how their phases are spent, and the trend by month."""
    streams = store.streams_matching(_liver_filter(liver_id), brand_id=brand_id)
    if not streams:
        return None
    gmvs = _num(s.get("gmv") for s in streams)
    cvrs = _num(s.get("cvr") for s in streams)
    mix: Counter[str] = Counter()
    for s in streams:
        mix.update(s.get("phase_types") or {})
    total_phases = sum(mix.values())
    by_month: dict[str, list[float]] = defaultdict(list)
    for s in streams:
        if s.get("stream_date"):
            by_month[s["stream_date"][:7]].append(float(s.get("gmv") or 0.0))
    recent = sorted(streams, key=lambda s: s.get("stream_date") or "", reverse=True)[:10]
    examples: list[qm.Condition] = [
        _liver_filter(liver_id),
        qm.FieldCondition(key="phase_type", match=qm.MatchExcept(**{"except": ["idle"]})),
    ]
    return LiverSummary(
        liver_id=liver_id,
        liver_name=next((s["liver_name"] for s in streams if s.get("liver_name")), None),
        videos=len(streams),
        total_phases=total_phases,
        gmv_total=sum(gmvs),
        gmv_avg=round(sum(gmvs) / len(gmvs), 2) if gmvs else None,
        cvr_avg=round(mean(cvrs), 4) if cvrs else None,
        phase_type_mix={k: round(v / total_phases, 4) for k, v in mix.most_common()} if total_phases else {},
        best_phases=_phase_examples(store, examples, brand_id=brand_id, limit=3, best=True),
        worst_phases=_phase_examples(store, examples[:1], brand_id=brand_id, limit=3, best=False),
        trend=[TrendPoint(period=m, videos=len(v), gmv=sum(v)) for m, v in sorted(by_month.items())],
        recent_videos=[
            {k: s.get(k) for k in ("video_id", "stream_date", "gmv", "cvr", "orders", "phase_count")} for s in recent
        ],
    )


def _group(streams: list[dict[str, Any]], metric: str, group_by: str) -> dict[str, PerformerRow]:
    """Per liver: the mean of the metric over its streams (so volume alone does not win)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in streams:
        key = s.get("liver_id") if group_by == "liver" else s.get("video_id")
        if key and isinstance(s.get(metric), int | float):
            groups[key].append(s)
    return {
        key: PerformerRow(
            key=key,
            liver_name=next((s["liver_name"] for s in rows if s.get("liver_name")), None),
            videos=len(rows),
            value=round(mean(float(s[metric]) for s in rows), 4),
        )
        for key, rows in groups.items()
    }


def _mix(streams: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """Share of phases per type, and mean seconds a stream spends in each type."""
    counts: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    for s in streams:
        counts.update(s.get("phase_types") or {})
        seconds.update(s.get("phase_durations") or {})
    total = sum(counts.values())
    shares = {k: v / total for k, v in counts.items()} if total else {}
    durations = {k: v / len(streams) for k, v in seconds.items()} if streams else {}
    return shares, durations


def top_performers(
    store: KnowledgeStore, query: TopPerformerQuery, *, brand_id: int | None = None
) -> TopPerformerReport:
    """The top livers (or videos) by the query's metric and, when it names a liver to
    compare to, what the top group's phases do differently from that liver's."""
    metric, group_by, limit, compare_to = query.metric, query.group_by, query.limit, query.compare_to
    streams = stream_summaries(store, brand_id=brand_id)
    rows = _group(streams, metric, group_by)
    if compare_to and group_by == "liver":
        rows.pop(compare_to, None)  # compare a liver with the others at the top
    top = sorted(rows.values(), key=lambda r: (-r.value, r.key))[:limit]
    report = TopPerformerReport(metric=metric, group_by=group_by, top=top, compare_to=compare_to)
    if not top:
        return report
    key_field = "liver_id" if group_by == "liver" else "video_id"
    top_keys = {r.key for r in top}
    top_streams = [s for s in streams if s.get(key_field) in top_keys]
    top_share, top_dur = _mix(top_streams)
    target_share: dict[str, float] = {}
    target_dur: dict[str, float] = {}
    if compare_to:
        target_streams = [s for s in streams if s.get("liver_id") == compare_to]
        report.target = _group(target_streams, metric, "liver").get(compare_to)
        target_share, target_dur = _mix(target_streams)
    kinds = sorted(set(top_share) | set(target_share))
    contrasts = [
        PhaseMixContrast(
            phase_type=k,
            top_share=round(top_share.get(k, 0.0), 4),
            target_share=round(target_share.get(k, 0.0), 4) if compare_to else None,
            top_avg_duration_sec=round(top_dur[k], 1) if k in top_dur else None,
            target_avg_duration_sec=round(target_dur[k], 1) if k in target_dur else None,
        )
        for k in kinds
    ]
    contrasts.sort(key=lambda c: -abs(c.top_share - (c.target_share or 0.0)))
    report.contrasts = contrasts
    wanted = query.phase_type or (contrasts[0].phase_type if contrasts else None)
    top_videos = [s["video_id"] for s in top_streams]
    conditions: list[qm.Condition] = [qm.FieldCondition(key="video_id", match=qm.MatchAny(any=top_videos))]
    if wanted:
        conditions.append(qm.FieldCondition(key="phase_type", match=qm.MatchValue(value=wanted)))
    report.example_phases = _phase_examples(store, conditions, brand_id=brand_id, limit=3, best=True)
    return report
