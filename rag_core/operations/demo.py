"""The main job on the embedded defaults: load the sample analyses and show what RAG gives.

    python -m rag_core.operations.demo [--samples samples/]

Backfills the samples into the local Qdrant folder (idempotent: a second run
changes nothing and embeds nothing), then prints a similar-phase search, one
liver's analysis, a top-performer comparison and the Japanese prompt block.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag_core.base.settings import get_settings
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import PromptRequest, SearchRequest, TopPerformerQuery
from rag_core.operations.backfill import LocalSource, run_backfill

QUERY = "この美容液を手の甲に塗ってみますね。すごく伸びがよくて、しっとりします"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag_core.operations.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", default="samples", help="folder of analysis JSON files")
    args = p.parse_args(argv)

    settings = get_settings()
    print(f"Qdrant: {settings.qdrant_url or settings.qdrant_path} / embeddings: {settings.embedding_provider}")
    summary = run_backfill(LocalSource(Path(args.samples)))
    print(summary.render())

    kb = KnowledgeBase(settings)
    stats = kb.stats()
    print(
        f"\n== 知識ベース: {stats.total_videos} 配信 / {stats.total_phases} フェーズ / "
        f"{stats.total_livers} ライバー / 総GMV ¥{stats.total_gmv:,.0f} / 平均CVR {stats.avg_cvr}%"
    )

    print(f"\n== 類似フェーズ検索: 「{QUERY}」")
    for hit in kb.search(SearchRequest(query=QUERY, k=5, max_per_video=1, distinct_text=True)):
        print(
            f"  {hit.score:.3f} (類似 {hit.similarity:.3f}) {hit.liver_name} {hit.stream_date} "
            f"[{hit.phase_type}] GMV ¥{hit.gmv or 0:,.0f}  {hit.speech_text[:50]}"
        )

    top = kb.top_performers(TopPerformerQuery(metric="gmv", limit=3))
    bottom = min(
        (r for r in kb.top_performers(TopPerformerQuery(metric="gmv", limit=50)).top),
        key=lambda r: r.value,
        default=None,
    )
    if bottom is not None:
        liver = kb.liver_summary(bottom.key)
        if liver is not None:
            print(f"\n== ライバー分析: {liver.liver_name} ({liver.liver_id})")
            print(f"  配信 {liver.videos} 本 / GMV 合計 ¥{liver.gmv_total:,.0f} / 平均 ¥{liver.gmv_avg or 0:,.0f}")
            print("  フェーズ構成: " + ", ".join(f"{k} {v:.0%}" for k, v in liver.phase_type_mix.items()))
            print("  月別GMV: " + ", ".join(f"{t.period} ¥{t.gmv:,.0f}" for t in liver.trend))
        report = kb.top_performers(TopPerformerQuery(metric="gmv", limit=3, compare_to=bottom.key))
        print(f"\n== トップパフォーマー比較 (平均GMV上位 vs {bottom.liver_name})")
        for row in top.top:
            print(f"  {row.liver_name}: 平均GMV ¥{row.value:,.0f} ({row.videos} 配信)")
        for c in report.contrasts[:4]:
            print(f"  {c.phase_type}: 上位 {c.top_share:.0%} / 対象 {c.target_share or 0:.0%}")

        block = kb.build_prompt(
            PromptRequest(speech_text=QUERY, phase_type="product_demo", liver_id=bottom.key, k=3, char_budget=2500)
        )
        print(f"\n== 下流LLM向けプロンプトブロック ({block.chars} 文字)\n{block.text}")
    return 1 if summary.counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
