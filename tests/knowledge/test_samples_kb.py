"""The shipped samples in a knowledge base: stats equal a direct computation over the files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from statistics import mean

import pytest

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
