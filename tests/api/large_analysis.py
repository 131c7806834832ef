"""One large analysis stored through the real API while ``/health`` and ``/external/stats`` are
timed: the scenario ``tests/api/test_large_analysis.py`` runs at a size that keeps the suite
fast and ``benchmarks/large_ingest.py`` runs at 10,000 phases.

The phases carry short, varied Japanese texts (a liver's lines about products, prices and
stock, 15-30 characters): every text differs, so every phase is really embedded, yet each
costs the local model a fraction of what a sample phase's minutes of speech do.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from qdrant_client import models as qm

from rag_core.base.settings import Settings
from rag_core.knowledge.knowledge_base import KnowledgeBase
from tests.api.live_server import LatencyMonitor, LiveServer
from tests.appkit import analysis

STORE = "/api/v1/external/analysis/store"
READ_PATHS = ("/api/v1/health", "/api/v1/external/stats")

_PRODUCTS = ("保湿クリーム", "美容液", "化粧水", "日焼け止め", "リップ", "ヘアオイル", "ファンデ", "ボディソープ")
_LINES = (
    "今夜だけ{p}が{n}円です",
    "{p}の使い心地を手の甲で見せますね",
    "{p}は残り{n}個、お早めにどうぞ",
    "コメントありがとう、{p}の質問に答えます",
    "{p}を二つセットで{n}円にします",
    "初見さんいらっしゃい、{p}を紹介中です",
    "{p}、敏感肌でも使えますよ",
)
_TYPES = ("opening", "product_intro", "demonstration", "price_explanation", "qa", "closing")


def large_phases(count: int) -> list[dict[str, Any]]:
    """``count`` phases of ten seconds each, with texts that all differ."""
    return [
        {
            "phase_index": i,
            "phase_type": _TYPES[i % len(_TYPES)],
            "start_sec": i * 10,
            "end_sec": i * 10 + 10,
            "speech_text": _LINES[i % len(_LINES)].format(p=_PRODUCTS[(i // len(_LINES)) % len(_PRODUCTS)], n=i + 1),
        }
        for i in range(count)
    ]


@dataclass
class LargeIngestRun:
    """What one store of a large analysis did and how the reads fared meanwhile."""

    phases: int
    seconds: float  # from the 202 to the job's ``done`` (or ``failed``)
    job: dict[str, Any]  # the job status answer at the end
    repeat: dict[str, Any]  # the status answer of the same analysis stored again, as a new job
    stored_points: int  # phase points of the video in the Qdrant folder afterwards
    latencies: dict[str, list[float]]  # seconds per request, by path, while the job ran
    failed_reads: list[tuple[str, int, float]]  # reads that did not answer 200

    @property
    def phases_per_sec(self) -> float:
        return self.phases / self.seconds

    def latency_line(self) -> str:
        parts = []
        for path, values in self.latencies.items():
            ordered = sorted(values)
            p50 = statistics.median(ordered) * 1000
            parts.append(f"{path} n={len(ordered)} p50 {p50:.0f} ms max {ordered[-1] * 1000:.0f} ms")
        return "; ".join(parts)

    def report(self) -> str:
        return (
            f"{self.phases:,} phases stored in {self.seconds:.1f} s ({self.phases_per_sec:.1f} phases/s); "
            f"reads meanwhile: {self.latency_line()}"
        )


def store_large_analysis(settings: Settings, server: LiveServer, video_id: str, phases: int) -> LargeIngestRun:
    """POST a ``phases``-phase analysis to the running ``server``, time the reads until its job
    ends, store the same analysis again as a new job (idempotency), then stop the server and
    count the video's points in its Qdrant folder."""
    body = analysis(video_id, phases=large_phases(phases))
    with server.client() as http:
        assert http.get(READ_PATHS[1]).status_code == 200  # the stats scope's first totals
        with LatencyMonitor(server.base) as monitor:
            started = time.monotonic()
            accepted = http.post(STORE, json=body)
            assert accepted.status_code == 202, accepted.text
            job = _wait_for_end(http, accepted.json()["job_id"], within=1800)
            seconds = time.monotonic() - started
        # The same body again is the same job (ids derive from the content); under another
        # Idempotency-Key it is a new job that runs the ingest again over the stored video.
        same = http.post(STORE, json=body)
        assert same.status_code == 202 and same.json()["job_id"] == accepted.json()["job_id"], same.text
        again = http.post(STORE, json=body, headers={"Idempotency-Key": f"{video_id}-again"})
        assert again.status_code == 202 and again.json()["job_id"] != accepted.json()["job_id"], again.text
        repeat = _wait_for_end(http, again.json()["job_id"], within=600)
    server.stop()
    kb = KnowledgeBase(settings)
    try:
        by_video = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value=video_id))])
        stored = kb.client.count(settings.qdrant_collection, count_filter=by_video, exact=True).count
    finally:
        kb.client.close()
    latencies: dict[str, list[float]] = {path: [] for path in READ_PATHS}
    for path, _, took in monitor.samples:
        latencies[path].append(took)
    failed = [s for s in monitor.samples if s[1] != 200]
    return LargeIngestRun(phases, seconds, job, repeat, stored, latencies, failed)


def _wait_for_end(http: Any, job_id: str, *, within: float) -> dict[str, Any]:
    """Poll the job's status route until it is ``done`` or ``failed``; returns that answer."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        answer = http.get(f"/api/v1/external/analysis/{job_id}")
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(1.0)
    raise AssertionError(f"job {job_id} did not end within {within} s")
