"""Per-phase aggregates of a screen-metrics time series (Pattern B).

Pure functions over ``ScreenMetricSample`` lists, kept apart from the video and
OCR code so the knowledge store can summarise phases without loading PyAV or
tesseract. Likes, comments and purchases are running totals as the overlay
shows them; viewers is the concurrent count at ``t_sec``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag_core.analysis.record import Phase, PhaseScreenSummary, ScreenMetricSample
from rag_core.screen.layout import MetricField


def summarise_window(samples: Sequence[ScreenMetricSample], start_sec: float, end_sec: float) -> PhaseScreenSummary:
    """Aggregate the samples with ``start_sec <= t_sec < end_sec``.

    Viewers: first, last and highest reading inside. Comments and purchases are
    running totals, so the phase's share is the rise from the last reading
    before the phase (or the first inside, when there is none) to the last
    inside; the comment rate divides that rise by the time between the two.
    """
    ordered = sorted(samples, key=lambda s: s.t_sec)
    inside = [s for s in ordered if start_sec <= s.t_sec < end_sec]
    before = [s for s in ordered if s.t_sec < start_sec]
    viewers = [s.viewers for s in inside if s.viewers is not None]
    comment_rise = _rise(before, inside, "comments")
    comment_rate = None
    if comment_rise is not None and comment_rise[1] > 0:
        comment_rate = round(comment_rise[0] / comment_rise[1] * 60, 3)
    purchase_rise = _rise(before, inside, "purchases")
    return PhaseScreenSummary(
        start_viewers=viewers[0] if viewers else None,
        end_viewers=viewers[-1] if viewers else None,
        peak_viewers=max(viewers) if viewers else None,
        comment_rate_per_min=comment_rate,
        purchases=purchase_rise[0] if purchase_rise is not None else None,
        samples=len(inside),
    )


def summarise_for_phases(samples: Sequence[ScreenMetricSample], phases: Sequence[Phase]) -> list[Phase]:
    """Copies of ``phases`` with ``screen_summary`` filled from the samples in each phase's time range.

    A phase without ``start_sec`` starts at 0, one without ``end_sec`` runs to the end.
    """
    out = []
    for phase in phases:
        start = phase.start_sec if phase.start_sec is not None else 0.0
        end = phase.end_sec if phase.end_sec is not None else float("inf")
        out.append(phase.model_copy(update={"screen_summary": summarise_window(samples, start, end)}))
    return out


def _rise(
    before: Sequence[ScreenMetricSample], inside: Sequence[ScreenMetricSample], field: MetricField
) -> tuple[float, float] | None:
    """(increase, seconds) of a running total over a phase, or None without two readings or when it fell."""
    readings = [(s.t_sec, getattr(s, field)) for s in inside if getattr(s, field) is not None]
    if not readings:
        return None
    earlier = [(s.t_sec, getattr(s, field)) for s in before if getattr(s, field) is not None]
    base = earlier[-1] if earlier else readings[0]
    last = readings[-1]
    if last[1] < base[1]:
        return None
    return float(last[1] - base[1]), float(last[0] - base[0])
