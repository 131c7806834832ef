"""The shipped samples in a knowledge base: stats equal a direct computation over the files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from statistics import mean

import pytest
from qdrant_client import QdrantClient

from rag_core.analysis.record import AnalysisRecord, parse_analysis
from rag_core.base.settings import load_settings
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import SearchRequest, TopPerformerQuery
from rag_core.operations.backfill import LocalSource, run_backfill
from tests.appkit import RememberingEmbedder

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


@pytest.fixture(scope="module")
def records() -> list[AnalysisRecord]:
    return [parse_analysis(json.loads(p.read_text(encoding="utf-8"))) for p in sorted(SAMPLES.glob("*.json"))]


@pytest.fixture(scope="module")
def kb(
    tmp_path_factory: pytest.TempPathFactory, sample_embedder: RememberingEmbedder, records: list[AnalysisRecord]
) -> KnowledgeBase:
    settings = load_settings(qdrant_path=tmp_path_factory.mktemp("qdrant"), embedding_provider="local")
    kb = KnowledgeBase(settings, embedder=sample_embedder)
    for record in records:
        kb.ingest(record)
    return kb


def test_stats_equal_direct_computation(kb: KnowledgeBase, records: list[AnalysisRecord]) -> None:
    stats = kb.stats()
    gmvs = [r.sales.gmv for r in records if r.sales and r.sales.gmv is not None]
    cvrs = [r.sales.cvr for r in records if r.sales and r.sales.cvr is not None]
    types = Counter(p.phase_type for r in records for p in r.phases)

    assert len(records) >= 60
    assert stats.total_videos == len(records)
    assert stats.total_phases == sum(len(r.phases) for r in records)
    assert stats.total_livers == len({r.liver_id for r in records})
    assert stats.total_gmv == pytest.approx(sum(gmvs)) and stats.total_gmv > 0
    assert stats.avg_cvr == pytest.approx(mean(cvrs), abs=1e-4)
    assert stats.phase_type_distribution == dict(types)
    assert stats.period_from == min(r.stream_date for r in records if r.stream_date)
    assert stats.period_to == max(r.stream_date for r in records if r.stream_date)


def test_liver_summary_and_top_performers_equal_direct_computation(
    kb: KnowledgeBase, records: list[AnalysisRecord]
) -> None:
    by_liver: dict[str, list[float]] = {}
    for r in records:
        if r.liver_id and r.sales and r.sales.gmv is not None:
            by_liver.setdefault(r.liver_id, []).append(r.sales.gmv)
    expected = sorted(((mean(v), k) for k, v in by_liver.items()), reverse=True)[:3]

    report = kb.top_performers(TopPerformerQuery(metric="gmv", limit=3))
    assert [(row.key, row.value) for row in report.top] == [(k, pytest.approx(v)) for v, k in expected]

    liver = expected[-1][1]
    summary = kb.liver_summary(liver)
    assert summary is not None
    assert summary.videos == len(by_liver[liver])
    assert summary.gmv_total == pytest.approx(sum(by_liver[liver]))


def test_filtered_search_on_samples_respects_liver_and_excludes_video(
    kb: KnowledgeBase, records: list[AnalysisRecord]
) -> None:
    target = records[0]
    request = SearchRequest(
        speech_text=target.phases[1].speech_text,
        k=10,
        filters={"liver_id": target.liver_id, "exclude_video_id": target.video_id},  # type: ignore[arg-type]
    )
    hits = kb.search(request)
    assert hits
    assert all(h.liver_id == target.liver_id and h.video_id != target.video_id for h in hits)


def test_backfill_dry_run_reports_bad_files_with_field_paths() -> None:
    summary = run_backfill(LocalSource(SAMPLES, recursive=True), dry_run=True, progress=False)
    assert summary.counts["valid"] >= 60
    assert summary.counts["failed"] == len(list((SAMPLES / "invalid").glob("*.json")))
    reasons = " ".join(reason for _, reason in summary.failures)
    assert "phases" in reasons and "sales.gmv" in reasons


QUERIES = [
    SearchRequest(query="この美容液を手に塗ってみます", k=5),
    SearchRequest(query="今日だけの特別価格です", k=5, phase_type="price_explanation"),
    SearchRequest(query="在庫は残りわずか", k=8, max_per_video=1),
    SearchRequest(query="みなさんこんばんは", k=5, outcome_aware=False),
]


def test_both_engines_rank_the_samples_identically(
    kb: KnowledgeBase, sample_embedder: RememberingEmbedder, records: list[AnalysisRecord]
) -> None:
    """The outcome formula stage runs in the engine (search.outcome_formula): qdrant-client
    (its local mode standing in for a server) must give the same hits, in the same order,
    with the same scores as the embedded edge engine."""
    settings = kb.settings
    server_like = KnowledgeBase(settings, client=QdrantClient(":memory:"), embedder=sample_embedder)
    for record in records:
        server_like.ingest(record)
    for request in QUERIES:
        edge = kb.search(request)
        other = server_like.search(request)
        assert [h.point_id for h in edge] == [h.point_id for h in other], request.query
        # float32 storage differs in the last digits; min-max scaling over the pool magnifies it a little
        assert [h.score for h in edge] == pytest.approx([h.score for h in other], abs=1e-4)
    server_like.client.close()
