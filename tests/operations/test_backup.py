"""Snapshots: the timer function archives both collections into Blob storage (Azurite), restore
brings back every point exactly, retention keeps the newest N, and the CLI does the same."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.functions.timer import TimerRequest
from qdrant_client import QdrantClient

from rag_core.analysis.record import parse_analysis
from rag_core.base.settings import Settings, get_settings
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.engine import EdgeEngine, VectorEngine, close_local, open_engine
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import FeedbackRequest, SearchRequest
from rag_core.operations import backup
from tests.appkit import analysis, app_context, app_settings, function_map
from tests.azurite import Azurite

Points = dict[str, dict[Any, tuple[Any, Any]]]


def every_point(client: VectorEngine, settings: Settings) -> Points:
    """collection → point id → (vector, payload) for both collections."""
    out: Points = {}
    for collection in backup.collections_of(settings):
        points, offset = [], None
        while True:
            page, offset = client.scroll(collection, limit=100, offset=offset, with_payload=True, with_vectors=True)
            points += page
            if offset is None:
                break
        out[collection] = {p.id: (p.vector, p.payload) for p in points}
    return out


@pytest.fixture
def ctx(azurite: Azurite, tmp_path: Path, local_embedder: LocalE5Embedder) -> AppContext:
    context = app_context(app_settings(azurite, tmp_path / "qdrant", snapshot_retention=2), local_embedder)
    with context.knowledge() as kb:
        for i, product in enumerate(("保湿クリーム", "リップティント", "日焼け止め")):
            record = analysis(f"backup-{i}", brand_id=i or None)
            for phase in record["phases"]:
                phase["speech_text"] = phase["speech_text"].replace("保湿クリーム", product)
            kb.ingest(parse_analysis(record))
        kb.apply_feedback(FeedbackRequest(video_id="backup-1", phase_index=1, rating=5))
    return context


def test_timer_snapshot_restores_every_point(ctx: AppContext, tmp_path: Path, local_embedder: LocalE5Embedder) -> None:
    functions: dict[str, Callable[..., Any]] = function_map(ctx)
    functions["qdrant_snapshot"](TimerRequest(past_due=True))
    container = ctx.storage.container(ctx.settings.snapshots_container)
    [snapshot] = backup.list_snapshots(container)
    assert snapshot.kind == "edge" and snapshot.blobs == [snapshot.name + ".edge.tar.gz"]  # the engine's own files
    with ctx.knowledge() as kb:
        original = every_point(kb.client, ctx.settings)
        found = kb.search(SearchRequest(query="保湿クリーム 今夜だけ", k=3))
        changed = kb.delete_video("backup-2")  # a later mistake the restore must undo
    assert changed == 2 and len(original[ctx.settings.qdrant_collection]) == 6

    target = ctx.settings.model_copy(update={"qdrant_path": tmp_path / "restored"})
    restored_client = open_engine(target)
    count = backup.restore_snapshot(target, restored_client, container, snapshot.name)
    assert count == sum(len(points) for points in original.values())
    assert every_point(restored_client, target) == original  # ids, vectors and payloads, exactly

    with ctx.knowledge() as kb:  # restoring over the live collections replaces them
        assert backup.restore_snapshot(ctx.settings, kb.client, container, snapshot.name) == count
        assert every_point(kb.client, ctx.settings) == original
    restored = KnowledgeBase(target, client=restored_client, embedder=local_embedder)
    again = restored.search(SearchRequest(query="保湿クリーム 今夜だけ", k=3))
    assert [h.point_id for h in again] == [h.point_id for h in found]
    assert [h.similarity for h in again] == pytest.approx([h.similarity for h in found], abs=1e-9)
    assert restored.stats().total_videos == 3


def test_json_lines_archives_still_restore_into_the_edge_store(ctx: AppContext, tmp_path: Path) -> None:
    """An archive in the format the embedded store was backed up in before (and any
    non-edge engine still writes) restores into the edge store, every point exactly."""
    container = ctx.storage.container(ctx.settings.snapshots_container)
    name = backup.snapshot_name(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    with ctx.knowledge() as kb:
        original = every_point(kb.client, ctx.settings)
        with tempfile.TemporaryFile() as tmp:
            points = backup.export_archive(ctx.settings, kb.client, tmp)
            size = tmp.tell()
            tmp.seek(0)
            container.upload_blob(name + backup.ARCHIVE_SUFFIX, tmp, length=size)
    [snapshot] = backup.list_snapshots(container)
    assert snapshot.kind == "archive"
    target = ctx.settings.model_copy(update={"qdrant_path": tmp_path / "from-jsonl"})
    client = open_engine(target)
    assert isinstance(client, EdgeEngine)
    assert backup.restore_snapshot(target, client, container, name) == points
    assert every_point(client, target) == original
    close_local(target.qdrant_path)


def test_edge_snapshot_restores_only_into_an_edge_store(ctx: AppContext) -> None:
    container = ctx.storage.container(ctx.settings.snapshots_container)
    with ctx.knowledge() as kb:
        name = backup.create_snapshot(ctx.settings, kb.client, container).name
    with pytest.raises(RuntimeError, match="embedded store"):
        backup.restore_snapshot(ctx.settings, QdrantClient(":memory:"), container, name)


def test_retention_keeps_the_newest_snapshots(ctx: AppContext) -> None:
    container = ctx.storage.container(ctx.settings.snapshots_container)
    start = dt.datetime(2026, 1, 1, 18, tzinfo=dt.UTC)
    with ctx.knowledge() as kb:
        names = [
            backup.create_snapshot(ctx.settings, kb.client, container, at=start + dt.timedelta(days=d)).name
            for d in range(4)
        ]
    assert [s.name for s in backup.list_snapshots(container)] == names[-2:]  # SNAPSHOT_RETENTION=2
    with pytest.raises(LookupError):
        backup.restore_snapshot(ctx.settings, QdrantClient(":memory:"), container, names[0])


def test_cli_create_list_restore(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s = ctx.settings
    env = {
        "AzureWebJobsStorage": s.storage_connection_string or "",
        "QDRANT_PATH": str(s.qdrant_path),
        "SNAPSHOTS_CONTAINER": s.snapshots_container,
        "EMBEDDING_PROVIDER": "local",
        "SALES_OCR_PROVIDER": "local",
        "AZURE_OPENAI_ENDPOINT": "",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        assert backup.main(["create"]) == 0
        name = capsys.readouterr().out.strip()
        assert backup.main(["list"]) == 0
        assert capsys.readouterr().out.startswith(f"{name}\tedge\t")
        with ctx.knowledge() as kb:
            before = every_point(kb.client, s)
            kb.delete_video("backup-0")
        assert backup.main(["restore", "--snapshot", name]) == 0
        assert capsys.readouterr().out.strip() == f"restored {name}: {sum(len(p) for p in before.values())} points"
        with ctx.knowledge() as kb:
            assert every_point(kb.client, s) == before
    finally:
        get_settings.cache_clear()
