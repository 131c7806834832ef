"""Writes to one video from several threads at once, on the embedded engine (thread-safe, so
nothing else serialises them): concurrent queue workers run two jobs of one video together.

Each write reads what is stored and writes from it. Without the per-video lock
(``KnowledgeStore.video_lock``) the first test failed in every run here (8 identical analyses
embedded 8 times), the ratings test in some (4 of 8 ratings counted); the outcome-update race
has the same shape (read the record, merge, write) but a window too short to show here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from rag_core.analysis.record import Sales, ScreenMetricSample
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import FeedbackRequest
from tests.conftest import SettingsFactory
from tests.knowledge.test_store import record

THREADS = 8


@pytest.fixture
def kb(make_settings: SettingsFactory, local_embedder: LocalE5Embedder) -> KnowledgeBase:
    knowledge = KnowledgeBase(make_settings(), embedder=local_embedder)
    assert knowledge.thread_safe  # the embedded engine: writes are not serialised by the context
    return knowledge


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run ``calls`` in threads released together by a barrier; their results in order."""
    start = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_the_same_analysis_stored_at_once_is_embedded_once(kb: KnowledgeBase, local_embedder: LocalE5Embedder) -> None:
    analysis = record("same-at-once")
    before = local_embedder.usage.texts
    results = _all_at_once([lambda: kb.ingest(analysis)] * THREADS)
    assert local_embedder.usage.texts - before == len(analysis.phases)
    assert sorted(r.status for r in results) == ["inserted"] + ["unchanged"] * (THREADS - 1)
    assert kb.stats().total_phases == len(analysis.phases)


def test_outcome_updates_at_once_each_keep_the_others(kb: KnowledgeBase) -> None:
    kb.ingest(record("outcomes", sales=None))
    metrics = [ScreenMetricSample(t_sec=10.0 * i, viewers=100 + i) for i in range(3)]
    calls: list[Callable[[], Any]] = []
    for i in range(THREADS // 2):
        calls.append(partial(kb.update_outcome, "outcomes", sales=Sales(gmv=1000.0 * (i + 1), orders=i + 1)))
        calls.append(partial(kb.update_outcome, "outcomes", screen_metrics=metrics))
    _all_at_once(calls)
    stored = kb.store.load_record("outcomes")
    assert stored is not None and stored.sales is not None and stored.sales.gmv is not None
    assert stored.screen_metrics == metrics  # no sales update dropped the screen metrics, nor the reverse


def test_ratings_at_once_are_all_counted(kb: KnowledgeBase) -> None:
    kb.ingest(record("rated"))
    rating = FeedbackRequest(video_id="rated", phase_index=1, rating=5)
    _all_at_once([lambda: kb.apply_feedback(rating)] * THREADS)
    phase = next(p for p in kb.video_phases("rated") if p["phase_index"] == 1)
    assert phase["feedback_count"] == THREADS
    kb.apply_feedback(rating)  # one more, alone: the sum counts every rating of the same value
    again = next(p for p in kb.video_phases("rated") if p["phase_index"] == 1)
    assert again["feedback_sum"] == pytest.approx(phase["feedback_sum"] * (THREADS + 1) / THREADS)
