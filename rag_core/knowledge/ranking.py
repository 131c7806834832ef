"""Re-ranking a candidate pool: phase-type fit, lexical fusion, diversity (pure functions).

The dense model alone ranks poorly among phases that are all "live-commerce
Japanese" (multilingual e5 puts them between 0.8 and 0.9 cosine, so noise decides
the order), and it does not know what a phase *is*. These functions take the
candidates Qdrant returned and re-order them; ``rag_core.knowledge.search`` feeds
them and docs/retrieval.md gives the formula, the weights and their measured
effect. Nothing here talks to the store, so the ranking is tested and
benchmarked without one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

# The phase kinds the analysis produces (docs/analysis-format.md).
VOCABULARY = ("opening", "product_demo", "price_explanation", "call_to_action", "qna", "idle", "closing")
UNKNOWN = "unknown"

# Labels other producers (older analysers, hand-labelled imports, behaviour labels) use for
# the same kinds. A type neither here nor in VOCABULARY is kept as its own type.
ALIASES: dict[str, str] = {
    "greeting": "opening",
    "intro": "opening",
    "introduction": "opening",
    "start": "opening",
    "オープニング": "opening",
    "挨拶": "opening",
    "demo": "product_demo",
    "demonstration": "product_demo",
    "product_intro": "product_demo",
    "product_introduction": "product_demo",
    "product_showcase": "product_demo",
    "商品紹介": "product_demo",
    "実演": "product_demo",
    "price": "price_explanation",
    "pricing": "price_explanation",
    "price_reveal": "price_explanation",
    "offer": "price_explanation",
    "価格説明": "price_explanation",
    "cta": "call_to_action",
    "purchase_push": "call_to_action",
    "sales_push": "call_to_action",
    "urgency": "call_to_action",
    "購入促進": "call_to_action",
    "q&a": "qna",
    "qa": "qna",
    "q_a": "qna",
    "question": "qna",
    "questions": "qna",
    "comment_response": "qna",
    "質疑応答": "qna",
    "質問回答": "qna",
    "break": "idle",
    "waiting": "idle",
    "chat": "idle",
    "small_talk": "idle",
    "雑談": "idle",
    "待機": "idle",
    "ending": "closing",
    "outro": "closing",
    "end": "closing",
    "farewell": "closing",
    "エンディング": "closing",
    "締め": "closing",
}


def canonical_type(phase_type: str | None) -> str:
    """The vocabulary name of a phase type: case, spaces and hyphens folded, aliases mapped;
    a type outside both is kept (folded) as its own type, an empty one is ``unknown``."""
    if not phase_type or not phase_type.strip():
        return UNKNOWN
    folded = phase_type.strip().lower().replace("-", "_").replace(" ", "_")
    return ALIASES.get(folded, folded)


def minmax(values: Sequence[float]) -> list[float]:
    """Values scaled to [0, 1] over the pool (all 1 when they are equal): e5's cosines are
    compressed into a narrow band, so only their order within the pool carries meaning."""
    low, high = min(values), max(values)
    spread = high - low
    return [(v - low) / spread if spread > 1e-9 else 1.0 for v in values]


def type_centroids(sums: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Unit-length centroids from per-type sums of stored phase vectors (``unknown`` left out:
    it is the absence of a type, not a kind of phase)."""
    centroids = {}
    for phase_type, total in sums.items():
        norm = float(np.linalg.norm(total))
        if phase_type != UNKNOWN and norm > 0:
            centroids[phase_type] = total / norm
    return centroids


def inferred_types(query: np.ndarray, centroids: Mapping[str, np.ndarray], temperature: float) -> dict[str, float]:
    """P(type | query): a softmax over the query's cosine to each type's centroid.

    The cosines to the centroids differ by hundredths (e5's compression again), so the
    temperature is small; a query that is equally close to every type gets a flat
    distribution and therefore no type preference.
    """
    if not centroids:
        return {}
    q = query / (float(np.linalg.norm(query)) or 1.0)
    names = list(centroids)
    logits = np.array([float(q @ centroids[n]) for n in names]) / temperature
    weights = np.exp(logits - logits.max())
    weights /= weights.sum()
    return dict(zip(names, (float(w) for w in weights), strict=True))


def query_types(
    phase_type: str | None, query: np.ndarray, centroids: Mapping[str, np.ndarray], temperature: float
) -> dict[str, float]:
    """The type distribution a query asks for: certain when the caller gave a type the store
    knows (a new phase being analysed), else inferred from the stored phases."""
    known = canonical_type(phase_type) if phase_type else None
    if known is not None and known in centroids:
        return {known: 1.0}
    return inferred_types(query, centroids, temperature)


def relevance(
    dense: Sequence[float],
    lexical: Sequence[float],
    type_fit: Sequence[float],
    *,
    w_lexical: float,
    w_type: float,
) -> list[float]:
    """Dense-dominant fusion: ``(dense + w_lexical·lexical + w_type·type_fit) / (1 + w_lexical + w_type)``.

    ``dense`` is the pool-scaled cosine, ``lexical`` the pool-scaled BM25 score and
    ``type_fit`` the probability that the query asks for the candidate's type. The
    dense term has weight 1 and the others are measured fractions of it, so a lexical
    match that paraphrases lose on cannot overturn a clearly better meaning match
    (plain rank fusion did, docs/embedding-choice.md).
    """
    total = 1.0 + w_lexical + w_type
    return [(d + w_lexical * lx + w_type * t) / total for d, lx, t in zip(dense, lexical, type_fit, strict=True)]


def diversify(scores: Sequence[float], vectors: np.ndarray, *, weight: float, threshold: float) -> list[int]:
    """Candidate indexes in maximal-marginal-relevance order (greedy).

    Each step takes the candidate maximising ``score − weight · redundancy`` where
    redundancy is its highest cosine to an already chosen candidate, counted only above
    ``threshold`` and rescaled to [0, 1]: ``max(0, cos − threshold) / (1 − threshold)``.
    Classic MMR subtracts the raw cosine, but every pair of Japanese phases is 0.8+
    apart in e5, which would penalise everything about equally; the threshold makes
    only near-duplicates (a liver's set phrases repeated across streams) pay. Ties keep
    the input order, so equal scores stay ordered as the caller sorted them.
    """
    n = len(scores)
    if weight <= 0 or n < 2:
        return sorted(range(n), key=lambda i: -scores[i])
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    base = np.asarray(scores, dtype=np.float64)
    redundancy = np.zeros(n)
    taken = np.zeros(n, dtype=bool)
    order: list[int] = []
    for _ in range(n):
        adjusted = np.where(taken, -np.inf, base - weight * redundancy)
        best = int(np.argmax(adjusted))  # the first of equal maxima: input order breaks ties
        order.append(best)
        taken[best] = True
        alike = np.clip((unit @ unit[best] - threshold) / (1.0 - threshold), 0.0, 1.0)
        redundancy = np.maximum(redundancy, alike)
    return order


def sales_scale(gmv: float | None, best_gmv: float) -> float:
    """A stream's GMV on a log scale relative to the best GMV in the pool (0 when unknown)."""
    return math.log1p(gmv) / math.log1p(best_gmv) if gmv and best_gmv > 0 else 0.0
