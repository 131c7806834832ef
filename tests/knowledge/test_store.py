"""Knowledge store: idempotent ingest, partial change, deletion, feedback, tenants."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from qdrant_client import QdrantClient

from rag_core.analysis.record import AnalysisRecord, parse_analysis
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import FeedbackRequest
from rag_core.knowledge.store import (
    AmbiguousVideoIdError,
    EmbeddingMismatchError,
    Owner,
    VideoOwnershipError,
    point_id,
)
from tests.conftest import SettingsFactory


class CountingClient(QdrantClient):
    """A real local Qdrant client that counts the write calls made through it."""

    WRITES = ("upsert", "batch_update_points", "delete", "set_payload", "overwrite_payload", "upload_points")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.writes: Counter[str] = Counter()

    def __getattribute__(self, name: str) -> Any:
        if name in CountingClient.WRITES:
            object.__getattribute__(self, "writes")[name] += 1
        return object.__getattribute__(self, name)


def record(video_id: str = "v1", **overrides: Any) -> AnalysisRecord:
    data: dict[str, Any] = {
        "video_id": video_id,
        "liver_id": "sakura",
        "liver_name": "さくら",
        "stream_date": "2026-03-01",
        "sales": {"gmv": 500000, "orders": 120, "cvr": 2.4, "viewers": 5000},
        "phases": [
            {
                "phase_index": 0,
                "phase_type": "opening",
                "speech_text": "みなさんこんばんは！",
                "start_sec": 0,
                "end_sec": 60,
            },
            {
                "phase_index": 1,
                "phase_type": "product_demo",
                "speech_text": "このセラムを手に塗ってみます",
                "start_sec": 60,
                "end_sec": 300,
            },
            {
                "phase_index": 2,
                "phase_type": "price_explanation",
                "speech_text": "今日だけ3980円です",
                "start_sec": 300,
                "end_sec": 420,
            },
        ],
    }
    data.update(overrides)
    return parse_analysis(data)


@pytest.fixture
def kb(make_settings: SettingsFactory, local_embedder: LocalE5Embedder) -> Iterator[KnowledgeBase]:
    settings = make_settings()
    client = CountingClient(path=str(settings.qdrant_path))
    yield KnowledgeBase(settings, client=client, embedder=local_embedder)
    client.close()


def writes(kb: KnowledgeBase) -> int:
    return sum(kb.client.writes.values())  # type: ignore[attr-defined]


def test_reingest_of_unchanged_analysis_costs_no_embedding_and_no_write(kb: KnowledgeBase) -> None:
    first = kb.ingest(record())
    assert (first.inserted, first.embedded) == (3, 3)
    calls, before = kb.embedder.usage.calls, writes(kb)

    again = kb.ingest(record())

    assert again.status == "unchanged" and again.unchanged == 3
    assert kb.embedder.usage.calls == calls, "no embedding call for an unchanged analysis"
    assert writes(kb) == before, "no Qdrant write for an unchanged analysis"
    assert again.point_ids == first.point_ids == [point_id("v1", i) for i in range(3)]


def test_changed_phase_text_reembeds_only_that_phase(kb: KnowledgeBase) -> None:
    kb.ingest(record())
    changed = record()
    changed.phases[1].speech_text = "このセラムを腕に塗って、伸びの良さを見せます"
    texts = kb.embedder.usage.texts

    result = kb.ingest(changed)

    assert (result.updated, result.unchanged, result.embedded) == (1, 2, 1)
    assert kb.embedder.usage.texts == texts + 1


def test_outcome_change_rewrites_payload_without_embedding(kb: KnowledgeBase) -> None:
    kb.ingest(record())
    texts = kb.embedder.usage.texts

    result = kb.ingest(record(sales={"gmv": 900000, "orders": 200}))

    assert result.payload_updated == 3 and result.embedded == 0
    assert kb.embedder.usage.texts == texts
    assert kb.stats().total_gmv == 900000


def test_removed_phases_are_deleted_and_none_left_stale(kb: KnowledgeBase) -> None:
    kb.ingest(record())
    shorter = record()
    shorter.phases = shorter.phases[:2]

    result = kb.ingest(shorter)

    assert result.deleted == 1
    stored = kb.client.count(kb.settings.qdrant_collection, exact=True).count
    assert stored == 2
    assert kb.stats().total_phases == 2


def test_feedback_survives_reingest_and_targets_phase_index(kb: KnowledgeBase) -> None:
    data = record().model_dump(mode="json")
    data["phases"] = list(reversed(data["phases"]))  # list position differs from phase_index
    kb.ingest(parse_analysis(data))

    fb = kb.apply_feedback(FeedbackRequest(video_id="v1", phase_index=2, rating=5))
    assert fb.phase_indexes == [2] and fb.new_quality_score == pytest.approx((2 * 0.5 + 1.0) / 3, abs=1e-4)

    changed = record(sales={"gmv": 1})
    kb.ingest(changed)  # payload rewrite must keep the feedback
    payload = kb.client.retrieve(kb.settings.qdrant_collection, [point_id("v1", 2)])[0].payload or {}
    assert payload["phase_type"] == "price_explanation"
    assert payload["feedback_count"] == 1
    assert payload["quality_score"] == pytest.approx(fb.new_quality_score, abs=1e-4)


def test_delete_video_leaves_nothing(kb: KnowledgeBase) -> None:
    kb.ingest(record("v1"))
    kb.ingest(record("v2"))

    assert kb.delete_video("v1") == 3

    assert kb.get_video("v1") is None
    assert kb.stats().total_videos == 1
    assert kb.client.count(kb.settings.qdrant_collection, exact=True).count == 3


def test_brand_scope_hides_and_protects_other_brands(kb: KnowledgeBase) -> None:
    kb.ingest(record("a1", brand_id=1))
    kb.ingest(record("b1"), brand_id=2)

    assert kb.stats(brand_id=1).total_videos == 1
    assert kb.get_video("b1", brand_id=1) is None
    assert kb.delete_video("b1", brand_id=1) == 0
    with pytest.raises(VideoOwnershipError):  # the caller's own record contradicts its scope
        kb.ingest(record("b1", brand_id=2), brand_id=1)
    assert kb.get_video("b1", brand_id=2) is not None


def test_the_same_video_id_under_two_brands_is_two_videos(kb: KnowledgeBase) -> None:
    """Keys are (brand, video id): brand 1 storing brand 2's id writes its own video, and
    unscoped data keeps the ids it always had."""
    two = kb.ingest(record("shared"), brand_id=2)
    one = kb.ingest(record("shared", liver_id="momo", sales={"gmv": 1000}), brand_id=1)
    plain = kb.ingest(record("shared", liver_id="nobrand"))

    assert plain.point_ids == [point_id("shared", i) for i in range(3)]
    assert one.point_ids == [point_id("shared", i, 1) for i in range(3)]
    assert len({*one.point_ids, *two.point_ids, *plain.point_ids}) == 9
    assert one.inserted == two.inserted == plain.inserted == 3
    assert kb.stats().total_videos == 3 and kb.stats(brand_id=1).total_videos == 1
    assert (kb.get_video("shared", brand_id=1) or {})["liver_id"] == "momo"
    assert (kb.get_video("shared", brand_id=2) or {})["liver_id"] == "sakura"

    with pytest.raises(AmbiguousVideoIdError) as ambiguous:  # an unscoped caller must name the owner
        kb.get_video("shared")
    assert ambiguous.value.brands == [None, 1, 2]
    assert (kb.get_video("shared", brand_id=Owner(None)) or {})["liver_id"] == "nobrand"
    kb.apply_feedback(FeedbackRequest(video_id="shared", phase_index=1, rating=5), brand_id=1)
    assert [p["feedback_count"] for p in kb.video_phases("shared", brand_id=1)] == [0, 1, 0]
    assert [p["feedback_count"] for p in kb.video_phases("shared", brand_id=2)] == [0, 0, 0]

    assert kb.delete_video("shared", brand_id=1) == 3
    assert kb.get_video("shared", brand_id=1) is None
    assert len(kb.video_phases("shared", brand_id=2)) == 3
    assert kb.delete_video("shared", brand_id=Owner(None)) == 3
    assert (kb.get_video("shared") or {})["brand_id"] == 2  # one owner left: unambiguous again


def test_collection_refuses_other_vector_size(make_settings: SettingsFactory, local_embedder: LocalE5Embedder) -> None:
    settings = make_settings()
    client = QdrantClient(path=str(settings.qdrant_path))
    KnowledgeBase(settings, client=client, embedder=local_embedder).ingest(record())

    class Wider(LocalE5Embedder):
        dimension = 1536

    with pytest.raises(EmbeddingMismatchError, match="384-d"):
        _ = KnowledgeBase(settings, client=client, embedder=Wider()).store
    client.close()
