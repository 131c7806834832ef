"""HTTP load on the API: requests/s and latency of ``stats`` and ``search`` under concurrent clients.

    .venv/bin/python benchmarks/http_load.py [--clients 16] [--requests 400] [--max-seconds 60]
    .venv/bin/python benchmarks/http_load.py --pages [--streams 10000]   # the dashboard pages instead

The server is the real API (FastAPI under uvicorn, API key checked) in a child
process on 127.0.0.1, over an embedded Qdrant folder loaded with the sample
analyses (real embeddings). The load comes from this process: ``--clients``
concurrent keep-alive connections, each sending requests back to back until
``--requests`` were sent for the endpoint or ``--max-seconds`` passed, so the
run is bounded in count and in time and only ever talks to loopback.

Nothing serialises knowledge-base calls any more (rag_core/context.py): the
embedded edge engine takes reads from several threads at once, and the local
model answers up to ``EMBEDDING_WORKERS`` searches side by side with one
OpenMP thread each (rag_core/embeddings/local.py). Search throughput with many
clients therefore grows with the cores the machine can give; on a shared
machine read the ratio next to what else was running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-key-0123456789abcdef"
QUERIES = [
    "この美容液を手の甲に塗ってみますね。すごく伸びがよくて、しっとりします",
    "今日だけの特別価格、二個セットで送料無料です",
    "在庫は残りわずかです、カートに入れてください",
    "サイズ感を見せますね、身長160センチでMサイズです",
    "コメントで質問ありがとうございます、敏感肌でも使えますか",
    "みなさんこんばんは、初見さんいらっしゃい",
    "このプロテインはチョコ味で飲みやすいです",
    "最後にもう一度おすすめ商品をまとめます",
]


def _settings(qdrant: Path) -> Any:
    from rag_core.base.settings import ApiKey, load_settings

    return load_settings(
        qdrant_path=qdrant,
        embedding_provider="local",
        sales_ocr_provider="local",
        azure_openai_endpoint=None,
        api_keys=[ApiKey(name="bench", key=KEY)],
        log_level="WARNING",
    )


def serve(qdrant: Path, port: int) -> None:
    """Child process: load the samples (idempotent) and serve the API on loopback."""
    import uvicorn

    from functions.api import create_api
    from rag_core.context import AppContext
    from rag_core.knowledge.knowledge_base import KnowledgeBase
    from rag_core.operations.backfill import LocalSource, run_backfill

    settings = _settings(qdrant)
    kb = KnowledgeBase(settings)
    run_backfill(LocalSource(ROOT / "samples"), kb=kb, progress=False)
    ctx = AppContext(settings, kb=kb)
    uvicorn.run(create_api(lambda: ctx), host="127.0.0.1", port=port, log_level="warning", access_log=False)


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def line(self, name: str, clients: int) -> str:
        ok = sorted(self.latencies)
        p50 = statistics.median(ok) * 1000 if ok else float("nan")
        p95 = ok[min(len(ok) - 1, int(len(ok) * 0.95))] * 1000 if ok else float("nan")
        rps = len(ok) / self.seconds if self.seconds else 0.0
        return (
            f"{name:<7} {clients:>3} clients  {len(ok):>5} ok  {self.errors:>3} errors  "
            f"{rps:8.1f} req/s  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms"
        )


async def load(
    base: str, send: Callable[[httpx.AsyncClient, int], Any], *, clients: int, total: int, max_seconds: float
) -> Result:
    """``clients`` connections sending back to back until ``total`` requests or ``max_seconds``."""
    result = Result()
    counter = iter(range(total))
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": KEY}, timeout=60) as http:
            for n in counter:
                if time.perf_counter() > deadline:
                    return
                start = time.perf_counter()
                response = await send(http, n)
                if response.status_code == 200:
                    result.latencies.append(time.perf_counter() - start)
                else:
                    result.errors += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


def stats(http: httpx.AsyncClient, _: int) -> Any:
    return http.get("/api/v1/external/stats")


def search(http: httpx.AsyncClient, n: int) -> Any:
    return http.post("/api/v1/external/search", json={"query": QUERIES[n % len(QUERIES)], "k": 5})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the API server exited before it was ready")
        try:
            if httpx.get(f"{base}/api/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("the API server did not become ready")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=400, help="requests per endpoint")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time cap per endpoint")
    p.add_argument("--serve", nargs=2, metavar=("QDRANT_DIR", "PORT"), help=argparse.SUPPRESS)
    p.add_argument("--pages", action="store_true", help="load the dashboard's overview and stream pages instead")
    p.add_argument("--streams", type=int, default=0, help="with --pages: synthetic streams added to the samples")
    p.add_argument(
        "--qdrant",
        type=Path,
        help="with --pages: keep the loaded Qdrant folder here (loads are idempotent, so reruns skip them)",
    )
    p.add_argument("--serve-pages", nargs=3, metavar=("QDRANT_DIR", "PORT", "STREAMS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(Path(args.serve[0]), int(args.serve[1]))
        return 0
    if args.serve_pages:
        serve_pages(Path(args.serve_pages[0]), int(args.serve_pages[1]), int(args.serve_pages[2]))
        return 0
    if args.pages:
        return pages_main(args)

    with tempfile.TemporaryDirectory(prefix="http-load-") as tmp:
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, __file__, "--serve", str(Path(tmp) / "qdrant"), str(port)])
        try:
            started = time.perf_counter()
            _wait_ready(base, server)
            print(f"server ready on {base} in {time.perf_counter() - started:.1f} s (72 sample analyses loaded)")
            asyncio.run(load(base, search, clients=2, total=16, max_seconds=30))  # warm the model and caches
            figures = {}
            for name, send in (("stats", stats), ("search", search)):
                one = asyncio.run(load(base, send, clients=1, total=50, max_seconds=args.max_seconds))
                many = asyncio.run(
                    load(base, send, clients=args.clients, total=args.requests, max_seconds=args.max_seconds)
                )
                print(one.line(name, 1))
                print(many.line(name, args.clients))
                figures[name] = (one, many)
            for name, (one, many) in figures.items():
                single = len(one.latencies) / one.seconds if one.seconds else 0.0
                loaded = len(many.latencies) / many.seconds if many.seconds else 0.0
                ratio = loaded / single if single else float("nan")
                print(f"{name}: {args.clients} clients give {ratio:.2f}x the requests/s of one client")
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


# ------------------------------------------------------------- dashboard pages --
# The /ui pages under the same load: the overview (every stream record read, the leaderboards
# and the jobs table) and a stream page (its phases, the job records and one similar-phase
# retrieval with its prompt block). Clients sign in once through the login form, as a browser does.


def serve_pages(qdrant: Path, port: int, streams: int) -> None:
    """Child process: the samples plus ``streams`` synthetic streams of 3 phases, then the app.

    Synthetic phases get pooled real vectors (benchmarks/ingest_search.py) so 10k streams load
    in minutes instead of embedding 30k texts; the pages' work does not depend on the vectors.
    """
    import random

    import uvicorn
    from ingest_search import PooledEmbedder, phase_text, records  # the sibling benchmark (this script's folder)

    from functions.api import create_api
    from rag_core.context import AppContext
    from rag_core.embeddings.local import LocalE5Embedder
    from rag_core.knowledge.knowledge_base import KnowledgeBase
    from rag_core.operations.backfill import LocalSource, run_backfill

    settings = _settings(qdrant)
    base = LocalE5Embedder()
    kb = KnowledgeBase(settings, embedder=base)
    run_backfill(LocalSource(ROOT / "samples"), kb=kb, progress=False)
    if streams:
        rng = random.Random(11)
        pooled = KnowledgeBase(
            settings, client=kb.client, embedder=PooledEmbedder(base, [phase_text(rng) for _ in range(128)])
        )
        for record in records(streams * 3, seed=streams, per_video=3):
            pooled.ingest(record)
    ctx = AppContext(settings, kb=kb)
    uvicorn.run(create_api(lambda: ctx), host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def _signed_in(base: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base, timeout=120)
    login = await http.get("/ui/login")
    token = login.text.split('name="csrf" value="')[1].split('"')[0]
    response = await http.post("/ui/login", data={"key": KEY, "csrf": token}, headers={"Origin": base})
    assert response.status_code == 303, response.text
    return http


async def page_load(base: str, paths: list[str], *, clients: int, total: int, max_seconds: float) -> Result:
    """Like :func:`load`, for pages behind the dashboard's session cookie."""
    result = Result()
    counter = iter(range(total))
    deadline = time.perf_counter() + max_seconds

    async def client() -> None:
        http = await _signed_in(base)
        try:
            for n in counter:
                if time.perf_counter() > deadline:
                    return
                start = time.perf_counter()
                response = await http.get(paths[n % len(paths)])
                if response.status_code == 200 and "<html" in response.text:
                    result.latencies.append(time.perf_counter() - start)
                else:
                    result.errors += 1
        finally:
            await http.aclose()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    result.seconds = time.perf_counter() - start
    return result


def pages_main(args: argparse.Namespace) -> int:
    videos = sorted(p.stem for p in (ROOT / "samples").glob("*.json"))
    stream_paths = [f"/ui/streams/{v}" for v in videos[::7]]
    from tests.azurite import Azurite  # the pages list ingest jobs: a project-started Azurite holds them

    with tempfile.TemporaryDirectory(prefix="http-load-pages-") as tmp:
        storage = Azurite(Path(tmp) / "azurite").start()
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        qdrant = args.qdrant or Path(tmp) / "qdrant"
        cmd = [sys.executable, __file__, "--serve-pages", str(qdrant), str(port), str(args.streams)]
        server = subprocess.Popen(cmd, env={**os.environ, "STORAGE_CONNECTION_STRING": storage.connection_string})
        try:
            started = time.perf_counter()
            _wait_ready(base, server, timeout=3600)
            total = len(videos) + args.streams
            print(f"server ready on {base} in {time.perf_counter() - started:.1f} s ({total} streams)")
            asyncio.run(page_load(base, stream_paths[:2], clients=2, total=4, max_seconds=60))  # warm up
            for name, paths in (("overview", ["/ui/"]), ("stream", stream_paths)):
                for clients in (1, args.clients):
                    result = asyncio.run(
                        page_load(base, paths, clients=clients, total=args.requests, max_seconds=args.max_seconds)
                    )
                    print(result.line(name, clients) + f"  ({total} streams)")
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            storage.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
