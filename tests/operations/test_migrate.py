"""Moving a knowledge base between engines: embedded edge → qdrant-client (local mode stands in
for a server) → embedded edge keeps every id, vector and payload; an interrupted copy resumes
from its checkpoint; a store written by the old local-mode default is upgraded on first start."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from rag_core.analysis.record import parse_analysis
from rag_core.base.settings import Settings, get_settings, load_settings
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.engine import EDGE_DIR, LEGACY_DIR, EdgeEngine, VectorEngine, close_local, open_engine
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import FeedbackRequest, SearchRequest
from rag_core.knowledge.store import point_id, stream_id
from rag_core.operations import migrate
from tests.operations.test_backup import every_point

SAMPLES = sorted((Path(__file__).resolve().parents[2] / "samples").glob("*.json"))[:4]


def _settings(path: Path) -> Settings:
    return load_settings(qdrant_path=path, embedding_provider="local", azure_openai_endpoint=None)


@contextmanager
def _cli_environment(monkeypatch: pytest.MonkeyPatch, path: Path) -> Iterator[None]:
    """The environment the migrate CLI reads its settings from, pointing at ``path``; the
    cached settings are dropped on both sides and the embedded store is closed after."""
    monkeypatch.setenv("QDRANT_PATH", str(path))
    monkeypatch.setenv("EMBEDDING_PROVIDER", "local")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", "")
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()
        close_local(path)


def _fill(kb: KnowledgeBase) -> None:
    for sample in SAMPLES:
        kb.ingest(parse_analysis(json.loads(sample.read_text(encoding="utf-8"))))
    video = parse_analysis(json.loads(SAMPLES[0].read_text(encoding="utf-8"))).video_id
    kb.apply_feedback(FeedbackRequest(video_id=video, phase_index=1, rating=5))


def _assert_same(a: dict[str, dict[Any, tuple[Any, Any]]], b: dict[str, dict[Any, tuple[Any, Any]]]) -> None:
    """Same ids and payloads exactly, vectors to float32 precision (compared, not counted)."""
    assert a.keys() == b.keys()
    for collection, points in a.items():
        assert points.keys() == b[collection].keys()
        for pid, (vector, payload) in points.items():
            assert payload == b[collection][pid][1]
            assert migrate.same_vectors(vector, b[collection][pid][0])


def test_round_trip_embedded_to_server_and_back(tmp_path: Path, local_embedder: LocalE5Embedder) -> None:
    settings = _settings(tmp_path / "a")
    kb = KnowledgeBase(settings, client=EdgeEngine(tmp_path / "a" / EDGE_DIR), embedder=local_embedder)
    _fill(kb)
    original = every_point(kb.client, settings)
    assert sum(len(p) for p in original.values()) > 30
    collections = [settings.qdrant_collection, settings.streams_collection]

    server = QdrantClient(path=str(tmp_path / "server"))
    there = migrate.migrate(kb.client, server, collections)
    assert there.ok and there.counts[settings.qdrant_collection][1] == len(original[settings.qdrant_collection])
    _assert_same(original, every_point(server, settings))

    back = EdgeEngine(tmp_path / "c" / EDGE_DIR)
    again = migrate.migrate(server, back, collections)
    assert again.ok
    _assert_same(original, every_point(back, settings))
    # The copy is a working knowledge base: same answers, and its payload indexes are back (the
    # local-mode stand-in keeps none; opening the store creates the missing ones).
    copy = KnowledgeBase(_settings(tmp_path / "c"), client=back, embedder=local_embedder)
    assert copy.store.phases == settings.qdrant_collection
    assert back.get_collection(settings.qdrant_collection).payload_schema.keys() == (
        kb.client.get_collection(settings.qdrant_collection).payload_schema.keys()
    )
    request = SearchRequest(query="今日だけの特別価格", k=5)
    assert [h.point_id for h in copy.search(request)] == [h.point_id for h in kb.search(request)]
    assert copy.stats() == kb.stats()
    server.close()


class _FailsAfter(EdgeEngine):
    """A real edge target whose process "dies" after ``pages`` upserts."""

    def __init__(self, root: Path, pages: int) -> None:
        super().__init__(root)
        self.left = pages
        self.upserts = 0

    def upsert(self, collection_name: str, points: Sequence[qm.PointStruct], wait: bool = True) -> qm.UpdateResult:
        if self.left == 0:
            raise ConnectionError("target went away")
        self.left -= 1
        self.upserts += 1
        return super().upsert(collection_name, points, wait)


def test_an_interrupted_migration_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    source: VectorEngine = EdgeEngine(tmp_path / "src")
    source.create_collection("c", vectors_config={"v": qm.VectorParams(size=4, distance=qm.Distance.DOT)})
    source.upsert("c", [qm.PointStruct(id=i, vector={"v": [i, 1.0, 2.0, 3.0]}, payload={"i": i}) for i in range(100)])
    marker = tmp_path / "checkpoint.json"

    first = _FailsAfter(tmp_path / "dst", pages=3)
    with pytest.raises(ConnectionError):
        migrate.migrate(source, first, ["c"], checkpoint=migrate.Checkpoint(marker), page=10)
    first.close()
    assert json.loads(marker.read_text())["c"]["copied"] == 30

    second = _FailsAfter(tmp_path / "dst", pages=1000)
    report = migrate.migrate(source, second, ["c"], checkpoint=migrate.Checkpoint(marker), page=10)
    assert report.ok and report.counts == {"c": (100, 100)}
    assert second.upserts == 7 and report.copied == {"c": 70}  # only what was left
    assert not marker.exists()  # a verified migration leaves no checkpoint
    got = {r.id: (r.vector, r.payload) for r in second.retrieve("c", list(range(100)), with_vectors=True)}
    assert got == {i: ({"v": [float(i), 1.0, 2.0, 3.0]}, {"i": i}) for i in range(100)}


def test_a_local_mode_store_is_upgraded_on_first_start(
    tmp_path: Path, local_embedder: LocalE5Embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "qdrant"
    settings = _settings(path)
    legacy = QdrantClient(path=str(path))
    old = KnowledgeBase(settings, client=legacy, embedder=local_embedder)
    _fill(old)
    before = every_point(legacy, settings)
    old_hits = [h.point_id for h in old.search(SearchRequest(query="在庫は残りわずか", k=5, outcome_aware=False))]
    legacy.close()

    with _cli_environment(monkeypatch, path):
        assert migrate.main(["--upgrade-local"]) == 0  # the documented command (start does the same)
        assert capsys.readouterr().out.startswith("upgraded: ")
        assert not (path / LEGACY_DIR).exists() and (path / f"{LEGACY_DIR}.migrated").is_dir()
        kb = KnowledgeBase(settings, embedder=local_embedder)  # the default engine, on the upgraded store
        assert isinstance(kb.client, EdgeEngine)
        _assert_same(before, every_point(kb.client, settings))
        new_hits = [h.point_id for h in kb.search(SearchRequest(query="在庫は残りわずか", k=5, outcome_aware=False))]
        assert new_hits == old_hits
        assert migrate.main(["--upgrade-local"]) == 0
        assert capsys.readouterr().out.startswith("nothing to upgrade")


def _downgrade_to_global_ids(engine: VectorEngine, settings: Settings) -> int:
    """Write the store as it was before brand-scoped keys: every brand-owned point at the id its
    video id alone gave (``point_id(video, index)``, ``stream_id(video)``), and a meta record
    without ``id_scheme``. Returns the points moved."""
    moved = 0
    for collection in (settings.qdrant_collection, settings.streams_collection):
        for p in [p for p in every_point(engine, settings)[collection].items()]:
            pid, (vector, payload) = p
            if payload.get("brand_id") is None or payload.get("kind") not in ("phase", "stream"):
                continue
            old = (
                point_id(payload["video_id"], payload["phase_index"])
                if payload["kind"] == "phase"
                else stream_id(payload["video_id"])
            )
            engine.upsert(collection, [qm.PointStruct(id=old, vector=vector or {}, payload=payload)], wait=True)
            engine.delete(collection, qm.PointIdsList(points=[pid]), wait=True)
            moved += 1
    meta = [p for p in every_point(engine, settings)[settings.streams_collection].items() if p[1][1]["kind"] == "meta"]
    (meta_id, (vector, payload)), *_ = meta
    old_meta = {k: v for k, v in payload.items() if k != "id_scheme"}
    engine.upsert(settings.streams_collection, [qm.PointStruct(id=meta_id, vector=vector or {}, payload=old_meta)])
    return moved


def test_brand_points_written_with_global_ids_are_rekeyed(
    tmp_path: Path, local_embedder: LocalE5Embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``migrate --tenant-ids`` moves a store written before brand-scoped keys to them: every id,
    vector and payload ends as a fresh brand-keyed store has it (compared, not counted), a crash
    half-way (a copy written, its old point not yet deleted) is resumed, a second run moves
    nothing, and opening a not yet re-keyed store does the same by itself."""
    path = tmp_path / "qdrant"
    settings = _settings(path)
    engine = EdgeEngine(path / EDGE_DIR)
    kb = KnowledgeBase(settings, client=engine, embedder=local_embedder)
    records = [parse_analysis(json.loads(s.read_text(encoding="utf-8"))) for s in SAMPLES]
    records[2] = records[2].model_copy(update={"brand_id": None})  # unscoped: its ids never change
    for record in records[:3]:
        kb.ingest(record)
    brand = records[0].brand_id
    assert brand is not None and records[1].brand_id is not None
    kb.apply_feedback(FeedbackRequest(video_id=records[0].video_id, phase_index=1, rating=5), brand_id=brand)
    target = every_point(engine, settings)
    moved = _downgrade_to_global_ids(engine, settings)
    branded = len(records[0].phases) + len(records[1].phases) + 2
    assert moved == branded
    old = every_point(engine, settings)
    assert old != target
    # a crash after copying one point to its new id, before deleting the old one
    stream_new = stream_id(records[0].video_id, brand)
    vector, payload = target[settings.streams_collection][stream_new]
    engine.upsert(settings.streams_collection, [qm.PointStruct(id=stream_new, vector=vector or {}, payload=payload)])
    engine.close()

    with _cli_environment(monkeypatch, path):
        assert migrate.main(["--tenant-ids"]) == 0
        out = capsys.readouterr().out
        assert f"{settings.qdrant_collection}: {branded - 2} moved in this run" in out
        assert f"{settings.streams_collection}: 2 moved in this run" in out
        assert "verified:" in out
        reopened = open_engine(settings)
        _assert_same(target, every_point(reopened, settings))
        assert migrate.main(["--tenant-ids"]) == 0
        assert f"{settings.qdrant_collection}: 0 moved in this run" in capsys.readouterr().out

        _downgrade_to_global_ids(reopened, settings)
        fresh = KnowledgeBase(settings, client=reopened, embedder=local_embedder)
        assert (fresh.get_video(records[0].video_id, brand_id=brand) or {})["brand_id"] == brand  # opening re-keyed
        _assert_same(target, every_point(reopened, settings))
