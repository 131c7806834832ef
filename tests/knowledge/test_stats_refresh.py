"""Stats on the embedded engine are refreshed from the streams written since the last read
(``EdgeEngine.changes_since``); after every kind of write they equal a full recomputation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from rag_core.analysis.record import Sales
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge import analytics
from rag_core.knowledge.engine import EdgeEngine
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import FeedbackRequest, KnowledgeStats
from tests.conftest import SettingsFactory
from tests.knowledge.test_store import record


@pytest.fixture
def kb(make_settings: SettingsFactory, local_embedder: LocalE5Embedder, tmp_path: Path) -> Iterator[KnowledgeBase]:
    engine = EdgeEngine(tmp_path / "edge", optimize_when_idle=None)
    yield KnowledgeBase(make_settings(), client=engine, embedder=local_embedder)
    engine.close()


def recomputed(kb: KnowledgeBase, brand_id: int | None = None) -> KnowledgeStats:
    """Stats from a full read: nothing kept from earlier calls."""
    analytics._kept.pop(kb.store, None)
    kb.store._memo.clear()
    return kb.stats(brand_id=brand_id)


def test_changes_since_lists_the_points_written(tmp_path: Path) -> None:
    engine = EdgeEngine(tmp_path / "log", optimize_when_idle=None)
    engine.create_collection("c", vectors_config={})
    engine.create_collection("d", vectors_config={})
    start = engine.writes
    engine.upsert("c", [qm.PointStruct(id=i, vector={}, payload={"a": 1}) for i in (1, 2)])
    engine.set_payload("c", {"a": 2}, points=[2])
    engine.upsert("d", [qm.PointStruct(id=3, vector={}, payload={})])
    assert engine.changes_since("c", start) == {"1", "2"}
    after_upsert = engine.writes - 1
    assert engine.changes_since("c", after_upsert) == set()  # the last write was to "d"
    assert engine.changes_since("d", start) == {"3"}
    assert engine.changes_since("c", engine.writes) == set()
    middle = engine.writes
    engine.delete("c", qm.FilterSelector(filter=qm.Filter(must=[qm.HasIdCondition(has_id=[1])])))
    assert engine.changes_since("c", middle) is None  # a write by filter: anything may have changed
    assert engine.changes_since("d", middle) == set()
    engine.close()


def test_stats_follow_every_kind_of_write(kb: KnowledgeBase) -> None:
    kb.ingest(record("v1"))
    kb.ingest(record("v2", stream_date="2026-04-02"))
    assert kb.stats() == recomputed(kb)
    kb.ingest(record("b1", brand_id=7))
    assert kb.stats(brand_id=7) == recomputed(kb, 7) and kb.stats() == recomputed(kb)
    kb.apply_feedback(FeedbackRequest(video_id="v1", phase_index=1, rating=5))
    assert kb.stats() == recomputed(kb)
    kb.update_outcome("v2", sales=Sales(gmv=1_234_567))
    refreshed = kb.stats()
    assert refreshed.total_gmv == 500_000 * 2 + 1_234_567
    assert refreshed == recomputed(kb)
    kb.delete_video("v1")
    assert kb.stats() == recomputed(kb) and kb.stats().total_videos == 2
    assert kb.stats(brand_id=7) == recomputed(kb, 7)


def test_one_full_read_keeps_every_brand_and_a_warm_up_does_it_before_the_first_request(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb.ingest(record("u1"))
    kb.ingest(record("b7", brand_id=7))
    kb.ingest(record("b8", brand_id=8, stream_date="2026-04-02"))
    expected = {scope: recomputed(kb, scope) for scope in (None, 7, 8, 9)}
    analytics._kept.pop(kb.store, None)
    kb.store._memo.clear()

    ctx = AppContext(kb.settings, kb=kb)
    thread = ctx.warm_up()
    assert thread is not None
    thread.join(timeout=60)
    assert set(analytics._kept[kb.store]) == {None, 7, 8}  # one read, every brand it met

    def no_full_read(*args: object) -> None:
        raise AssertionError("a full read after the warm-up")

    monkeypatch.setattr(analytics, "_read_every_stream", no_full_read)
    assert {scope: kb.stats(brand_id=scope) for scope in (None, 7, 8)} == {s: expected[s] for s in (None, 7, 8)}
    kb.ingest(record("b7-2", brand_id=7))
    assert kb.stats(brand_id=7).total_videos == 2  # refreshed from the change, not read again
    monkeypatch.undo()
    assert kb.stats(brand_id=9) == expected[9]  # a brand with no streams: read, and empty


def test_no_warm_up_where_the_engine_takes_one_caller_at_a_time(
    make_settings: SettingsFactory, local_embedder: LocalE5Embedder
) -> None:
    settings = make_settings()
    local = QdrantClient(path=str(settings.qdrant_path))
    ctx = AppContext(settings, kb=KnowledgeBase(settings, client=local, embedder=local_embedder))
    assert ctx.warm_up() is None
    local.close()


def read_afresh(kb: KnowledgeBase, brand_id: int | None) -> list[dict[str, object]]:
    """Every stream's summary as the engine has it now (what a server deployment reads each time)."""
    rows = kb.store.streams_matching(brand_id=brand_id, fields=analytics.SUMMARY_FIELDS)
    return sorted(({k: v for k, v in r.items() if k != "kind"} for r in rows), key=lambda r: str(r["video_id"]))


def kept(kb: KnowledgeBase, brand_id: int | None) -> list[dict[str, object]]:
    return sorted(kb.stream_summaries(brand_id=brand_id), key=lambda r: str(r["video_id"]))


def test_stream_summaries_follow_every_kind_of_write_in_every_brand_scope(kb: KnowledgeBase) -> None:
    """The overview and the top-performer comparisons list the kept summaries, not a fresh read."""
    scopes = (None, 7, 8)
    kb.ingest(record("v1"))
    kb.ingest(record("b1", brand_id=7))
    assert {s: kept(kb, s) for s in scopes} == {s: read_afresh(kb, s) for s in scopes}
    kb.ingest(record("b2", brand_id=8, stream_date="2026-04-02"))
    kb.apply_feedback(FeedbackRequest(video_id="v1", phase_index=1, rating=5))
    kb.update_outcome("b1", sales=Sales(gmv=1_234_567), brand_id=7)
    assert {s: kept(kb, s) for s in scopes} == {s: read_afresh(kb, s) for s in scopes}
    assert [r["gmv"] for r in kept(kb, 7)] == [1_234_567]
    kb.delete_video("v1")
    assert {s: kept(kb, s) for s in scopes} == {s: read_afresh(kb, s) for s in scopes}
    assert [r["video_id"] for r in kept(kb, None)] == ["b1", "b2"]
