"""The view models of the dashboard pages: overview, liver, stream and search.

Each function reads what its page shows in one pass over the stream records (small payloads, the
same reads as the analytics) plus the few phase reads the page needs, and returns chart series
ready to plot: the templates only format numbers, they compute nothing.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from statistics import linear_regression, mean, median
from typing import Any, Literal

from pydantic import BaseModel, Field
from qdrant_client import models as qm

from rag_core.context import AppContext
from rag_core.dashboard.advice import Suggestion, write_suggestions
from rag_core.dashboard.video import PhaseOutcome, VideoDetail, video_detail
from rag_core.jobs.records import JobRecord
from rag_core.knowledge.schemas import (
    KnowledgeStats,
    LiverSummary,
    PerformerRow,
    PhaseExample,
    PromptBlock,
    PromptRequest,
    SearchHit,
    SearchRequest,
    TopPerformerQuery,
    TopPerformerReport,
    TrendPoint,
)
from rag_core.knowledge.store import BrandScope, Owner

SortKey = Literal["gmv", "gpm", "cvr", "orders", "stream_date"]
_STREAM_FIELDS = [
    "video_id", "brand_id", "liver_id", "liver_name", "stream_date", "gmv", "gpm", "cvr", "orders", "viewers",
    "phase_count", "source_pattern",
]  # fmt: skip


class StreamRow(BaseModel):
    video_id: str
    brand_id: int | None = Field(None, description="the owner: video ids are unique per brand, not globally")
    liver_id: str | None = None
    liver_name: str | None = None
    stream_date: dt.date | None = None
    gmv: float | None = None
    gpm: float | None = None
    cvr: float | None = None
    orders: float | None = None
    viewers: float | None = None
    phase_count: int = 0


class Overview(BaseModel):
    stats: KnowledgeStats
    gmv_by_month: list[TrendPoint]
    leaders: dict[str, list[PerformerRow]] = Field(description="top livers by gmv, gpm and cvr")
    streams: list[StreamRow] = Field(description="the top streams by ``sort``")
    sort: SortKey
    recent_jobs: list[JobRecord]


def _rows(raw: list[dict[str, Any]]) -> list[StreamRow]:
    return [StreamRow.model_validate({k: v for k, v in r.items() if v is not None}) for r in raw if r.get("video_id")]


def _sorted(rows: list[StreamRow], sort: SortKey) -> list[StreamRow]:
    present = [r for r in rows if getattr(r, sort) is not None]
    return sorted(present, key=lambda r: (getattr(r, sort), r.video_id), reverse=True)


def _leaders(rows: list[StreamRow], metric: Literal["gmv", "gpm", "cvr"], limit: int) -> list[PerformerRow]:
    """The top livers by their mean ``metric`` per stream, ranked as ``top_performers`` ranks them.

    Computed from the stream rows the overview has already read: ``top_performers`` reads every
    stream again per metric and also fetches example phases the overview does not show, which made
    the overview take 16 s at 10k streams in local mode (benchmarks/http_load.py --pages).
    """
    groups: dict[str, list[StreamRow]] = defaultdict(list)
    for r in rows:
        if r.liver_id and getattr(r, metric) is not None:
            groups[r.liver_id].append(r)
    board = [
        PerformerRow(
            key=liver_id,
            liver_name=next((r.liver_name for r in group if r.liver_name), None),
            videos=len(group),
            value=round(mean(float(getattr(r, metric)) for r in group), 4),
        )
        for liver_id, group in groups.items()
    ]
    return sorted(board, key=lambda b: (-b.value, b.key))[:limit]


def overview(ctx: AppContext, *, brand_id: int | None = None, sort: SortKey = "gmv", limit: int = 10) -> Overview:
    """Totals, GMV by month, leaderboards, the top streams and the latest jobs."""
    with ctx.knowledge() as kb:
        stats = kb.stats(brand_id=brand_id)
        streams = _rows(kb.stream_summaries(brand_id=brand_id))
    months: dict[str, list[float]] = defaultdict(list)
    for s in streams:
        if s.stream_date:
            months[s.stream_date.isoformat()[:7]].append(s.gmv or 0.0)
    return Overview(
        stats=stats,
        gmv_by_month=[TrendPoint(period=m, videos=len(v), gmv=sum(v)) for m, v in sorted(months.items())],
        leaders={m: _leaders(streams, m, 5) for m in ("gmv", "gpm", "cvr")},
        streams=_sorted(streams, sort)[:limit],
        sort=sort,
        recent_jobs=ctx.jobs.recent(8, brand_id=brand_id),
    )


# ------------------------------------------------------------------ liver ----


class Outlier(BaseModel):
    """A stream of the liver far from the liver's own median GMV, with its strongest phase."""

    stream: StreamRow
    ratio: float = Field(description="stream GMV / the liver's median stream GMV")
    phase: PhaseExample | None = None


class LiverView(BaseModel):
    summary: LiverSummary
    streams: list[StreamRow] = Field(description="every stream, oldest first")
    trend_per_stream: float | None = Field(None, description="fitted GMV change from one stream to the next")
    trend_line: list[float] = Field(default_factory=list, description="fitted GMV at each stream")
    comparison: TopPerformerReport
    outliers: list[Outlier]
    suggestions: list[Suggestion]
    suggestions_note: str | None = Field(None, description="why the rule text is shown though a model is set")


_PHASE_NAMES = {
    "opening": "オープニング", "product_demo": "商品デモ", "price_explanation": "価格説明", "qna": "質疑応答",
    "promotion": "プロモーション", "closing": "クロージング", "idle": "待機", "chat": "雑談",
    "call_to_action": "購入の呼びかけ", "giveaway": "プレゼント企画", "unknown": "不明",
}  # fmt: skip


def phase_name(phase_type: str) -> str:
    """The Japanese label of a phase type (the type itself when it has none)."""
    return _PHASE_NAMES.get(phase_type, phase_type)


_FIELD_NAMES = {
    "gmv": "GMV", "orders": "注文数", "items_sold": "販売点数", "viewers": "視聴者数",
    "peak_viewers": "最大同時視聴者数",
    "avg_watch_time_sec": "平均視聴時間", "product_clicks": "商品クリック数", "ctr": "CTR", "cvr": "CVR", "gpm": "GPM",
    "new_followers": "新規フォロワー", "likes": "いいね", "comments": "コメント", "shares": "シェア",
    "impressions": "インプレッション", "product_impressions": "商品インプレッション", "tap_through_rate": "タップ率",
    "comment_rate": "コメント率", "follower_ratio": "フォロワー比率", "duration_minutes": "配信時間",
    "name": "商品名", "price": "価格", "original_price": "元の価格", "discount_rate": "割引率", "quantity": "数量",
    "sold": "販売数", "set_revenue": "売上",
}  # fmt: skip


def field_name(field: str) -> str:
    """The Japanese label of a sales field or ``set_products.<i>.<field>`` (商品1 価格)."""
    parts = field.split(".")
    if len(parts) == 3 and parts[1].isdigit():
        return f"商品{int(parts[1]) + 1} {_FIELD_NAMES.get(parts[2], parts[2])}"
    return _FIELD_NAMES.get(field, field)


def _cite(p: PhaseExample) -> str:
    gmv = f"GMV ¥{p.gmv:,.0f}" if p.gmv is not None else "GMV 不明"
    return f"{p.video_id} #{p.phase_index}（{phase_name(p.phase_type)}、{gmv}）"


def suggestions(view_summary: LiverSummary, report: TopPerformerReport, limit: int = 3) -> list[Suggestion]:
    """Rules over the contrasts with the top performers, each citing its numbers and phases
    (:mod:`rag_core.dashboard.advice` may reword the text; the evidence stays).

    A phase type the top group gives a clearly larger share (≥ 5 points) or longer time (≥ 1.3x)
    than the liver becomes "do more of it", a clearly smaller share "do less"; the example phases
    of the top group and the liver's own best phase are cited so the advice can be checked.
    """
    out: list[Suggestion] = []
    names = ", ".join(r.liver_name or r.key for r in report.top)
    for c in report.contrasts:
        target = c.target_share or 0.0
        gap = c.top_share - target
        name = phase_name(c.phase_type)
        examples = [_cite(p) for p in report.example_phases if p.phase_type == c.phase_type][:2]
        figures = f"上位 {c.top_share:.0%} / あなた {target:.0%}"
        if c.top_avg_duration_sec is not None:
            mine = (c.target_avg_duration_sec or 0) / 60
            figures += f"、1配信あたり 上位 {c.top_avg_duration_sec / 60:.1f}分 / あなた {mine:.1f}分"
        if gap >= 0.05:
            text = (
                f"「{name}」の割合を増やしましょう。上位ライバー（{names}）はフェーズの {c.top_share:.0%} を"
                f"{name}に充てていますが、あなたは {target:.0%} です。"
            )
            out.append(Suggestion(text=text, evidence=[figures, *examples]))
        elif gap <= -0.05:
            text = (
                f"「{name}」の割合を見直しましょう。あなたは {target:.0%} を{name}に使っていますが、"
                f"上位ライバーは {c.top_share:.0%} です。"
            )
            out.append(Suggestion(text=text, evidence=[figures]))
        elif c.top_avg_duration_sec and c.top_avg_duration_sec >= 1.3 * (c.target_avg_duration_sec or 0.0):
            text = (
                f"「{name}」にもっと時間をかけましょう。上位ライバーは1配信あたり {c.top_avg_duration_sec / 60:.1f}分、"
                f"あなたは {(c.target_avg_duration_sec or 0) / 60:.1f}分です。"
            )
            out.append(Suggestion(text=text, evidence=[figures, *examples]))
        if len(out) >= limit - 1:
            break
    if view_summary.best_phases:
        best = view_summary.best_phases[0]
        text = f"最も成果の出たフェーズ {best.video_id} #{best.phase_index} の進め方を他の配信でも再現しましょう。"
        out.append(Suggestion(text=text, evidence=[_cite(best), f"「{best.speech_text[:60]}」"]))
    return out


def _outliers(ctx: AppContext, rows: list[StreamRow]) -> list[Outlier]:
    """Streams selling ≥ 1.5x or ≤ 2/3 of the liver's median, with each one's best-rated phase."""
    gmvs = [r.gmv for r in rows if r.gmv]
    if len(gmvs) < 3:
        return []
    base = median(gmvs)
    far = [(r, (r.gmv or 0.0) / base) for r in rows if r.gmv and not (2 / 3 < r.gmv / base < 1.5)]
    out = []
    with ctx.knowledge() as kb:
        for row, ratio in sorted(far, key=lambda x: -x[1]):
            # The row's own owner: an unscoped caller naming no owner would be refused an id several brands hold.
            owned = kb.video_phases(row.video_id, brand_id=Owner(row.brand_id))
            phases = [p for p in owned if p.get("phase_type") != "idle"]
            best = max(
                phases, key=lambda p: (p.get("quality_score") or 0.0, p.get("duration_sec") or 0.0), default=None
            )
            example = (
                PhaseExample.model_validate(
                    {k: best.get(k) for k in PhaseExample.model_fields if best.get(k) is not None}
                )
                if best
                else None
            )
            out.append(Outlier(stream=row, ratio=round(ratio, 2), phase=example))
    return out


def liver(ctx: AppContext, liver_id: str, *, brand_id: int | None = None) -> LiverView | None:
    """One liver's page, or None when the caller may see no stream of it."""
    with ctx.knowledge() as kb:
        summary = kb.liver_summary(liver_id, brand_id=brand_id)
        if summary is None:
            return None
        cond = qm.FieldCondition(key="liver_id", match=qm.MatchValue(value=liver_id))
        rows = _rows(kb.store.streams_matching(cond, brand_id=brand_id, fields=_STREAM_FIELDS))
        report = kb.top_performers(TopPerformerQuery(limit=3, compare_to=liver_id), brand_id=brand_id)
    rows.sort(key=lambda r: (r.stream_date or dt.date.min, r.video_id))
    slope, line = None, []
    points = [(i, r.gmv) for i, r in enumerate(rows) if r.gmv is not None]
    if len(points) >= 2:
        slope, intercept = linear_regression([float(i) for i, _ in points], [g for _, g in points])
        line = [round(intercept + slope * i, 0) for i in range(len(rows))]
    written = write_suggestions(
        ctx.settings, summary.liver_name or liver_id, suggestions(summary, report), report.contrasts
    )
    return LiverView(
        summary=summary,
        streams=rows,
        trend_per_stream=round(slope, 0) if slope is not None else None,
        trend_line=line,
        comparison=report,
        outliers=_outliers(ctx, rows),
        suggestions=written.items,
        suggestions_note=written.note,
    )


# ----------------------------------------------------------------- stream ----


class StreamView(BaseModel):
    detail: VideoDetail
    selected: PhaseOutcome
    prompt: PromptBlock = Field(description="what the downstream LLM would get for the selected phase")


def stream(
    ctx: AppContext, video_id: str, *, phase_index: int | None = None, brand_id: BrandScope = None
) -> StreamView | None:
    """One stream's page with the similar past phases of one phase (the first non-idle by default).

    ``brand_id`` addresses the video (:data:`BrandScope`); the similar phases come from what the
    caller sees: its own brand when scoped, every brand for an unscoped caller (who may name an
    ``Owner``). AmbiguousVideoIdError when an unscoped caller names no owner of a shared id.
    """
    caller_brand = brand_id if isinstance(brand_id, int) else None
    detail = video_detail(ctx, video_id, brand_id=brand_id)
    if detail is None:
        return None
    chosen = next((p for p in detail.phases if p.phase_index == phase_index), None) or next(
        (p for p in detail.phases if p.phase_type != "idle"), detail.phases[0]
    )
    request = PromptRequest(
        speech_text=chosen.speech_text,
        description=chosen.description,
        phase_type=chosen.phase_type,
        liver_id=detail.liver_id,
        video_id=video_id,
        k=5,
        char_budget=3000,
    )
    owner = None if caller_brand is not None else Owner(detail.brand_id)  # unscoped: leave out only this video
    with ctx.knowledge() as kb:
        block = (
            kb.build_prompt(request, brand_id=caller_brand, owner=owner)
            if (chosen.speech_text or chosen.description)
            else PromptBlock(text="", chars=0, similar=[])
        )
    return StreamView(detail=detail, selected=chosen, prompt=block)


def search(
    ctx: AppContext, request: SearchRequest, *, brand_id: int | None = None, excluded_owner: Owner | None = None
) -> list[SearchHit]:
    """Hits for the search page; ``excluded_owner`` names whose ``exclude_video_id`` is left out."""
    with ctx.knowledge() as kb:
        return kb.search(request, brand_id=brand_id, excluded_owner=excluded_owner)


def holders(ctx: AppContext, video_id: str) -> list[StreamRow]:
    """Every owner's stream with this id (unscoped data first, then by brand): what an unscoped
    caller chooses from when an id is held by several brands."""
    cond = qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))
    with ctx.knowledge() as kb:
        rows = _rows(kb.store.streams_matching(cond, fields=_STREAM_FIELDS))
    return sorted(rows, key=lambda r: -1 if r.brand_id is None else r.brand_id)
