"""The real service in a child process: ``python -m functions.local_host`` (uvicorn on 127.0.0.1,
plus the queue worker unless ``worker=False``), configured through its environment as a
deployment is, over a test's Azurite names and Qdrant folder.

Tests talk to it over a real socket, so what they see is what a client sees: the byte
limits on the stream, the 413 a client that writes its whole body first still reads, the
event loop staying free while a body is parsed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from rag_core.base.settings import Settings
from tests.appkit import ROOT

KEY = "hostile-key-0123456789abcdef"
_ENV_NAMES = {"storage_connection_string": "AzureWebJobsStorage"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment(settings: Settings, extra_keys: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """The child's environment: every setting the test chose, as the deployment would set it."""
    env = {k: v for k, v in os.environ.items() if k.upper() not in {n.upper() for n in Settings.model_fields}}
    for name, value in settings.model_dump(mode="json", exclude={"api_keys"}).items():
        if value is not None:
            env[_ENV_NAMES.get(name, name.upper())] = value if isinstance(value, str) else json.dumps(value)
    env["API_KEYS"] = json.dumps([{"name": "test", "key": KEY}, *(extra_keys or [])])
    env["PYTHONPATH"] = str(ROOT)
    return env


class LiveServer:
    """One ``functions.local_host`` process; ``kill()`` is SIGKILL, as a crash."""

    def __init__(
        self,
        settings: Settings,
        workdir: Path,
        *,
        worker: bool,
        poll_interval: float = 0.2,
        extra_keys: list[dict[str, Any]] | None = None,
    ) -> None:
        self.settings, self.workdir, self.worker, self.poll_interval = settings, workdir, worker, poll_interval
        self.extra_keys = extra_keys  # more API keys beside KEY (brand-scoped ones)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> LiveServer:
        args = [sys.executable, "-m", "functions.local_host", "--port", str(self.port)]
        args += ["--poll-interval", str(self.poll_interval)] + ([] if self.worker else ["--no-worker"])
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "server.log").open("ab")
        # cwd: a folder with no local.settings.json, so only the environment configures it
        self.process = subprocess.Popen(
            args, cwd=self.workdir, env=environment(self.settings, self.extra_keys), stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=5).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"the server did not become ready: {self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        path = self.workdir / "server.log"
        return path.read_text(encoding="utf-8", errors="replace")[-chars:] if path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=60, **kwargs)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when the host or machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


class LatencyMonitor:
    """Requests /health and /external/stats back to back in a thread, recording each latency."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.samples: list[tuple[str, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, headers={"X-API-Key": KEY}, timeout=30) as http:
            while not self._stop.is_set():
                for path in ("/api/v1/health", "/api/v1/external/stats"):
                    start = time.perf_counter()
                    try:
                        status = http.get(path).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.samples.append((path, status, time.perf_counter() - start))
                self._stop.wait(0.05)

    def __enter__(self) -> LatencyMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def check(self) -> str:
        """Assert the service answered throughout; returns the figures for the report."""
        assert self.samples, "the monitor sent no request"
        failed = [s for s in self.samples if s[1] != 200]
        assert not failed, failed[:5]
        latencies = sorted(s[2] for s in self.samples)
        p95 = latencies[int(len(latencies) * 0.95) - 1] if len(latencies) >= 20 else latencies[-1]
        assert p95 < 1.0 and latencies[-1] < 5.0, (p95, latencies[-1])
        return (
            f"{len(latencies)} health/stats requests: median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
        )
