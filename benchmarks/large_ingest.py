"""A 10,000-phase analysis stored through the API: phases/s, and ``/health`` and
``/external/stats`` latency while it ingests.

    nice -n 10 .venv/bin/python benchmarks/large_ingest.py [--phases 10000]

The scenario of ``tests/api/test_large_analysis.py`` (which runs it at a size that keeps the
suite fast) at the issue's size: the real service (``functions.local_host``: uvicorn on
127.0.0.1 and its queue worker) over a project-started Azurite and a temporary Qdrant
folder, the local embedding model, short varied Japanese phase texts. It POSTs the analysis,
requests ``/health`` and ``/external/stats`` back to back until the job ends, stores the
same analysis again (it must cost no embedding), and prints phases/s, the read latencies
(p50 and max per route) and the load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", type=int, default=10_000)
    args = parser.parse_args(argv)

    from tests.api.large_analysis import store_large_analysis
    from tests.api.live_server import LiveServer
    from tests.appkit import app_settings
    from tests.azurite import Azurite

    with tempfile.TemporaryDirectory(prefix="large-ingest-") as tmp:
        storage = Azurite(Path(tmp) / "azurite").start()
        server = None
        try:
            settings = app_settings(storage, Path(tmp) / "qdrant", log_level="WARNING")
            server = LiveServer(settings, Path(tmp) / "server", worker=True).start()
            print(f"load average before: {_load()}")
            run = store_large_analysis(settings, server, "large-ingest-bench", args.phases)
            print(f"load average after: {_load()} (cpus: {os.cpu_count()})")
        finally:
            if server is not None:
                server.stop()
            storage.stop()
    result = run.job.get("result") or {}
    repeat = run.repeat.get("result") or {}
    print(run.report())
    print(
        f"job {run.job['status']}: point_count {result.get('point_count')}, embedded {result.get('embedded')}; "
        f"points stored {run.stored_points}; stored again: {run.repeat['status']}, "
        f"unchanged {repeat.get('unchanged')}, embedded {repeat.get('embedded')}; "
        f"failed reads {len(run.failed_reads)}"
    )
    ok = (
        run.job["status"] == "done"
        and run.stored_points == args.phases
        and repeat.get("embedded") == 0
        and not run.failed_reads
    )
    return 0 if ok else 1


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    raise SystemExit(main())
