"""Plotly figure specs (``{"data": [...], "layout": {...}}``) for the dashboard's charts.

Plain dicts rather than ``plotly.graph_objects``: the browser's plotly.js does the drawing, and
the Python figure classes would add their default template (kilobytes per chart) to every page.
"""

from __future__ import annotations

from typing import Any

from rag_core.dashboard.views import LiverView, Overview, StreamView, phase_name

Figure = dict[str, Any]
_FONT = {"family": "'Noto Sans CJK JP', 'Hiragino Sans', sans-serif", "size": 12}
_COLORS = {
    "opening": "#4c78a8", "product_demo": "#f58518", "price_explanation": "#54a24b", "qna": "#b279a2",
    "call_to_action": "#e45756", "closing": "#72b7b2", "idle": "#bab0ac",
}  # fmt: skip


def _layout(**extra: Any) -> dict[str, Any]:
    """Shared look; axes size their margins to their labels (long yen figures, phase names)."""
    layout: dict[str, Any] = {"font": _FONT, "margin": {"l": 8, "r": 8, "t": 12, "b": 8}, "height": 300, **extra}
    for axis in {"xaxis", "yaxis"} | {k for k in layout if k.startswith("yaxis")}:
        layout[axis] = {**layout.get(axis, {}), "automargin": True}
    return layout


def overview(view: Overview) -> dict[str, Figure]:
    months = view.gmv_by_month
    return {
        "gmv-month": {
            "data": [
                {
                    "type": "bar",
                    "name": "GMV",
                    "x": [m.period for m in months],
                    "y": [m.gmv for m in months],
                    "text": [f"{m.videos}配信" for m in months],
                    "marker": {"color": "#4c78a8"},
                }
            ],
            "layout": _layout(yaxis={"title": {"text": "GMV (円)"}, "tickformat": ",.0f"}, xaxis={"type": "category"}),
        }
    }


def liver(view: LiverView) -> dict[str, Figure]:
    dates = [s.stream_date.isoformat() if s.stream_date else s.video_id for s in view.streams]
    contrasts = view.comparison.contrasts
    kinds = [phase_name(c.phase_type) for c in contrasts]
    return {
        "liver-gmv": {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": "配信ごとのGMV",
                    "x": dates,
                    "y": [s.gmv for s in view.streams],
                    "text": [s.video_id for s in view.streams],
                },
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": "傾向",
                    "x": dates,
                    "y": view.trend_line,
                    "line": {"dash": "dot", "color": "#888"},
                },
            ],
            "layout": _layout(yaxis={"title": {"text": "GMV (円)"}, "tickformat": ",.0f"}, legend={"orientation": "h"}),
        },
        "liver-mix": {
            "data": [
                {"type": "bar", "name": "あなた", "x": kinds, "y": [c.target_share or 0 for c in contrasts]},
                {"type": "bar", "name": "上位ライバー", "x": kinds, "y": [c.top_share for c in contrasts]},
            ],
            "layout": _layout(barmode="group", yaxis={"tickformat": ".0%"}, legend={"orientation": "h"}),
        },
        "liver-duration": {
            "data": [
                {
                    "type": "bar",
                    "name": "あなた",
                    "x": kinds,
                    "y": [round((c.target_avg_duration_sec or 0) / 60, 1) for c in contrasts],
                },
                {
                    "type": "bar",
                    "name": "上位ライバー",
                    "x": kinds,
                    "y": [round((c.top_avg_duration_sec or 0) / 60, 1) for c in contrasts],
                },
            ],
            "layout": _layout(
                barmode="group", yaxis={"title": {"text": "1配信あたりの分数"}}, legend={"orientation": "h"}
            ),
        },
    }


def stream(view: StreamView) -> dict[str, Figure]:
    phases = view.detail.phases
    timed = [p for p in phases if p.start_sec is not None and p.end_sec is not None]
    labels = [f"#{p.phase_index} {phase_name(p.phase_type)}" for p in timed]
    figures: dict[str, Figure] = {
        "timeline": {
            "data": [
                {
                    "type": "bar",
                    "orientation": "h",
                    "name": "フェーズ",
                    "y": labels,
                    "base": [round((p.start_sec or 0) / 60, 2) for p in timed],
                    "x": [round(((p.end_sec or 0) - (p.start_sec or 0)) / 60, 2) for p in timed],
                    "marker": {"color": [_COLORS.get(p.phase_type, "#999") for p in timed]},
                    "hovertemplate": "%{y}: %{base:.1f}–%{x:.1f}分<extra></extra>",
                }
            ],
            "layout": _layout(
                height=max(200, 28 * len(timed) + 60),
                xaxis={"title": {"text": "経過時間 (分)"}},
                yaxis={"autorange": "reversed", "automargin": True},
            ),
        }
    }
    samples = view.detail.screen_metrics
    if samples:
        minutes = [round(s.t_sec / 60, 2) for s in samples]
        series = [
            ("viewers", "視聴者数", "y"),
            ("likes", "いいね", "y2"),
            ("comments", "コメント", "y2"),
            ("purchases", "購入", "y2"),
        ]
        bands = [
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": (p.start_sec or 0) / 60,
                "x1": (p.end_sec or 0) / 60,
                "y0": 0,
                "y1": 1,
                "fillcolor": _COLORS.get(p.phase_type, "#999"),
                "opacity": 0.12,
                "line": {"width": 0},
                "layer": "below",
            }
            for p in timed
        ]
        figures["metrics"] = {
            "data": [
                {
                    "type": "scatter",
                    "mode": "lines",
                    "name": label,
                    "x": minutes,
                    "y": [getattr(s, key) for s in samples],
                    "yaxis": axis,
                }
                for key, label, axis in series
            ],
            "layout": _layout(
                shapes=bands,
                xaxis={"title": {"text": "経過時間 (分)"}},
                yaxis={"title": {"text": "視聴者数"}},
                yaxis2={"overlaying": "y", "side": "right", "showgrid": False},
                legend={"orientation": "h"},
            ),
        }
    return figures
