"""The feedback quality score of a phase (documented in docs/retrieval.md).

A phase starts at its prior (the analysis' own ``quality_score``, else 0.5).
Each piece of feedback is a value in [0, 1] (rating 1–5 → (r−1)/4, helpful →
1/0). The score is the Bayesian average of the prior, weighted as
``PRIOR_WEIGHT`` pieces of feedback, and the feedback received:

    score = (PRIOR_WEIGHT · prior + Σ feedback) / (PRIOR_WEIGHT + n)

so one vote moves a fresh phase noticeably but cannot pin it to 0 or 1, and
the score converges to the reviewers' mean as votes accumulate.
"""

from __future__ import annotations

PRIOR_WEIGHT = 2.0
DEFAULT_PRIOR = 0.5
HIGH_QUALITY = 0.7  # "high_quality_entries" in stats count phases at or above this


def quality_score(prior: float, count: int, total: float) -> float:
    """Bayesian average of ``prior`` and ``count`` feedback values summing to ``total``."""
    return round((PRIOR_WEIGHT * prior + total) / (PRIOR_WEIGHT + count), 6)


def feedback_value(*, rating: int | None = None, helpful: bool | None = None) -> float:
    """Map a 1–5 rating or a helpful flag onto [0, 1]."""
    if rating is not None:
        if not 1 <= rating <= 5:
            raise ValueError("rating must be 1-5")
        return (rating - 1) / 4
    if helpful is not None:
        return 1.0 if helpful else 0.0
    raise ValueError("give rating or helpful")
