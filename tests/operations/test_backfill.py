"""Backfill from Blob Storage (real Azurite) and from an HTTP API (a real server on 127.0.0.1).

Covers resuming from a checkpoint (records handled exactly once across runs),
retries of 429 / 5xx, a malformed record reported and skipped, the rate limit,
and idempotence (a repeat run is all ``unchanged`` with no embedding calls).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import pytest
from qdrant_client import QdrantClient

from rag_core.base.storage import Storage
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.knowledge_base import KnowledgeBase
from rag_core.operations.backfill.cli import BackfillSummary, build_source, main, parser, run_backfill
from rag_core.operations.backfill.sources import ApiSource, Checkpoint, LocalSource, Source
from tests.azurite import Azurite
from tests.conftest import SettingsFactory

TOKEN = "backfill-test-token"
MALFORMED = {"video_id": "broken", "phases": "not a list"}


def analysis(i: int) -> dict[str, Any]:
    return {
        "video_id": f"past-{i}",
        "liver_id": "sakura",
        "stream_date": "2025-12-01",
        "phases": [{"phase_index": 0, "phase_type": "product_demo", "speech_text": f"過去の配信{i}：セラムの実演"}],
    }


@pytest.fixture
def kb(make_settings: SettingsFactory, local_embedder: LocalE5Embedder) -> Iterator[KnowledgeBase]:
    settings = make_settings()
    client = QdrantClient(path=str(settings.qdrant_path))
    yield KnowledgeBase(settings, client=client, embedder=local_embedder)
    client.close()


def backfill(source: Source, kb: KnowledgeBase | None = None) -> tuple[BackfillSummary, int]:
    """Run a backfill; returns its summary and the embedding calls it made."""
    before = kb.embedder.usage.calls if kb else 0
    summary = run_backfill(source, kb=kb, dry_run=kb is None, progress=False)
    return summary, (kb.embedder.usage.calls - before if kb else 0)


# --------------------------------------------------------------------------- Blob Storage --


def test_azure_backfill_resumes_mid_blob_and_is_idempotent(
    azurite: Azurite, make_settings: SettingsFactory, kb: KnowledgeBase, tmp_path: Path
) -> None:
    settings = make_settings(storage_connection_string=azurite.connection_string)
    name = f"backfill-{uuid.uuid4().hex[:8]}"
    container = Storage(settings).container(name)
    blobs = {
        "2026/a.json": json.dumps(analysis(1)),
        "2026/b.json": json.dumps([analysis(2), analysis(3)]),
        "2026/c.jsonl": "\n".join([json.dumps(analysis(4)), "{not json", json.dumps(analysis(5))]),
        "2026/notes.txt": "not an analysis",
        "2025/old.json": json.dumps(analysis(99)),  # outside the prefix
    }
    for blob, text in blobs.items():
        container.upload_blob(blob, text.encode())
    checkpoint = tmp_path / "azure.checkpoint.json"
    argv = ["--source", "azure", "--container", name, "--prefix", "2026/", "--checkpoint", str(checkpoint)]

    # First run stops after 4 records: a, b[0], b[1] and the first line of c.jsonl.
    first, _ = backfill(build_source(parser().parse_args([*argv, "--limit", "4"]), settings), kb)
    assert first.counts == {"inserted": 4}
    state = json.loads(checkpoint.read_text())
    assert state["position"]["blob"] == "2026/c.jsonl"
    assert (state["position"]["done"], state["position"]["finished"], state["complete"]) == (1, False, False)

    # The second run picks up inside c.jsonl: its bad line is reported, the last one ingested.
    second, _ = backfill(build_source(parser().parse_args(argv), settings), kb)
    assert second.counts == {"inserted": 1, "failed": 1}
    assert [n for n, _ in second.failures] == [f"{name}/2026/c.jsonl:2"]
    state = json.loads(checkpoint.read_text())
    assert (state["records"], state["complete"]) == (6, True)

    # A completed checkpoint has nothing left to do.
    third, _ = backfill(build_source(parser().parse_args(argv), settings), kb)
    assert third.counts["inserted"] + third.counts["unchanged"] + third.counts["failed"] == 0

    # Without the checkpoint everything is read again and nothing changes or gets embedded.
    again, calls = backfill(build_source(parser().parse_args(argv[:6]), settings), kb)
    assert again.counts == {"unchanged": 5, "failed": 1}
    assert calls == 0
    assert kb.get_video("past-99") is None


# ------------------------------------------------------------------------------ HTTP API --


@dataclass
class AnalysesApi:
    """A small HTTP API of past analyses, served for real on 127.0.0.1.

    ``style`` picks the paging: ``cursor`` (``items`` + ``next_cursor``), ``next``
    (``analyses`` + a relative ``next`` link) or ``pages`` (a bare array per
    ``page``/``per_page``, empty after the last). ``faults`` maps a page index to
    responses (status, headers) served before that page is served normally.
    """

    records: list[Any]
    style: Literal["cursor", "next", "pages"]
    page_size: int = 2
    faults: dict[int, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    foreign_next: bool = False
    log: list[tuple[float, int, str | None]] = field(default_factory=list)  # (time, page, Authorization)
    url: str = ""

    def respond(self, target: str, auth: str | None) -> tuple[int, dict[str, str], Any]:
        query = dict(parse_qsl(urlsplit(target).query))
        size = int(query.get("per_page", self.page_size)) if self.style == "pages" else self.page_size
        if self.style == "cursor":
            page = int(query.get("cursor", "tok0").removeprefix("tok"))
        elif self.style == "next":
            page = int(query.get("offset", 0)) // size
        else:
            page = int(query["page"]) - 1
        self.log.append((time.monotonic(), page, auth))
        if auth != f"Bearer {TOKEN}":
            return 401, {}, {"error": "unauthorized"}
        if self.faults.get(page):
            status, headers = self.faults[page].pop(0)
            return status, headers, {"error": "try again"}
        chunk = self.records[page * size : (page + 1) * size]
        more = (page + 1) * size < len(self.records)
        if self.style == "cursor":
            return 200, {}, {"items": chunk, "next_cursor": f"tok{page + 1}" if more else None}
        if self.style == "next":
            link = f"/v1/analyses?offset={(page + 1) * size}" if more else None
            if link and self.foreign_next:
                link = "http://elsewhere.invalid" + link
            return 200, {}, {"analyses": chunk, "next": link}
        return 200, {}, chunk

    def requests_for(self, page: int) -> list[tuple[float, int, str | None]]:
        return [r for r in self.log if r[1] == page]


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start an :class:`AnalysesApi` on a free loopback port; stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(api: AnalysesApi) -> AnalysesApi:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, headers, body = api.respond(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep the test output quiet."""

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        api.url = f"http://127.0.0.1:{server.server_address[1]}/v1/analyses"
        return api

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_api_cursor_paging_retries_429_and_500_and_skips_a_malformed_record(serve: Any, kb: KnowledgeBase) -> None:
    records = [analysis(1), analysis(2), analysis(3), MALFORMED, analysis(5), analysis(6), analysis(7)]
    api = serve(
        AnalysesApi(
            records,
            "cursor",
            faults={1: [(429, {"Retry-After": "1"})], 2: [(500, {}), (503, {})]},
        )
    )
    source = ApiSource(url=api.url, token=TOKEN, rate=None, backoff=0.05)
    summary, calls = backfill(source, kb)

    assert summary.counts == {"inserted": 6, "failed": 1}
    [(where, why)] = summary.failures
    assert "cursor=tok1" in where and where.endswith("[1]")
    assert "phases" in why
    assert calls > 0
    waited = api.requests_for(1)[1][0] - api.requests_for(1)[0][0]
    assert len(api.requests_for(1)) == 2 and waited >= 0.95  # Retry-After honoured
    assert len(api.requests_for(2)) == 3  # two server errors, then success
    assert len(api.log) == 7 and {auth for _, _, auth in api.log} == {f"Bearer {TOKEN}"}

    # A wrong token is a client error: reported once, not retried.
    refused, _ = backfill(ApiSource(url=api.url, token="wrong", rate=None, backoff=0.05), kb)
    assert refused.counts == {"failed": 1}
    assert "HTTP 401" in refused.failures[0][1]
    assert len(api.log) == 8


def test_api_page_numbers_resume_after_a_stop_and_an_outage(serve: Any, kb: KnowledgeBase, tmp_path: Path) -> None:
    api = serve(AnalysesApi([analysis(i) for i in range(9)], "pages", faults={2: [(500, {})] * 3}))
    path = tmp_path / "api.checkpoint.json"

    def run(limit: int | None = None, checkpoint: Path | None = path) -> tuple[BackfillSummary, int]:
        source = ApiSource(url=api.url, token=TOKEN, per_page=3, rate=None, retries=2, backoff=0.01, limit=limit)
        source.checkpoint = Checkpoint.open(checkpoint, source.identity)
        return backfill(source, kb)

    # Stopped after 4 records: page 1 and the first record of page 2.
    first, _ = run(limit=4)
    assert first.counts == {"inserted": 4}
    assert json.loads(path.read_text())["position"] == {"url": f"{api.url}?page=2&per_page=3", "skip": 1}

    # Resumes inside page 2; page 3 keeps failing, so the run stops there and says so.
    second, _ = run()
    assert second.counts == {"inserted": 2, "failed": 1}
    assert "HTTP 500 after 3 attempts" in second.failures[0][1]
    state = json.loads(path.read_text())
    assert state["position"] == {"url": f"{api.url}?page=3&per_page=3", "skip": 0} and not state["complete"]

    # The API is back: page 3 is done, page 4 is empty, the backfill is complete.
    third, _ = run()
    assert third.counts == {"inserted": 3}
    state = json.loads(path.read_text())
    assert (state["records"], state["complete"]) == (9, True)
    assert [r[1] for r in api.log].count(0) == 1  # every page fetched only as often as needed

    # Idempotent: a fresh run (no checkpoint) changes nothing and embeds nothing.
    again, calls = run(checkpoint=None)
    assert again.counts == {"unchanged": 9}
    assert calls == 0


def test_api_rate_limit_and_relative_next_links(serve: Any) -> None:
    api = serve(AnalysesApi([analysis(i) for i in range(5)], "next", page_size=1))
    start = time.monotonic()
    summary, _ = backfill(ApiSource(url=api.url, token=TOKEN, rate=20))
    elapsed = time.monotonic() - start
    assert summary.counts == {"valid": 5}
    assert len(api.log) == 5
    # 20 requests/s: the client waits four intervals of 50 ms between its five requests. A lower
    # bound on the client's own clock (a sleep never ends early); the server's arrival times
    # move with how soon a busy machine ran the handler, so they prove nothing either way.
    assert elapsed >= 4 * 0.05


def test_api_never_follows_a_next_link_to_another_origin(serve: Any) -> None:
    api = serve(AnalysesApi([analysis(1), analysis(2)], "next", page_size=1, foreign_next=True))
    summary, _ = backfill(ApiSource(url=api.url, token=TOKEN, rate=None))
    assert summary.counts == {"valid": 1, "failed": 1}
    assert "another origin" in summary.failures[0][1]
    assert len(api.log) == 1


# ----------------------------------------------------------------------------------- CLI --


def test_cli_api_dry_run(serve: Any, capsys: pytest.CaptureFixture[str]) -> None:
    api = serve(AnalysesApi([analysis(1), MALFORMED], "cursor"))
    code = main(["--source", "api", "--url", api.url, "--token", TOKEN, "--dry-run", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1  # one record failed
    assert "valid 1" in out and "failed 1" in out


def test_cli_arguments(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings(backfill_api_token="from-settings", backfill_rate_per_sec=2)
    source = build_source(parser().parse_args(["--source", "api", "--url", "https://api.example/v1"]), settings)
    assert isinstance(source, ApiSource)
    assert (source.token, source.rate) == ("from-settings", 2)

    checkpoint = tmp_path / "cp.json"
    checkpoint.write_text(json.dumps({"source": "api:https://other", "position": {}, "records": 0, "complete": False}))
    for argv, message in [
        (["--source", "azure"], "needs --container"),
        (["--source", "api"], "needs --url"),
        (["--source", "api", "--url", "ftp://x"], "not an http"),
        (["--source", "api", "--url", "https://a", "--dry-run", "--checkpoint", "x.json"], "no --checkpoint"),
        (["--source", "api", "--url", "https://api.example/v1", "--checkpoint", str(checkpoint)], "belongs to"),
        (["--source", "local", "--dir", ".", "--limit", "3"], "for --source azure / api"),
    ]:
        with pytest.raises(SystemExit, match=message):
            build_source(parser().parse_args(argv), settings)


# --------------------------------------------------------------------------- JSON depth --


def test_backfill_files_are_parsed_with_the_json_depth_limit(
    tmp_path: Path, serve: Any, make_settings: SettingsFactory
) -> None:
    """Backfill input is outside input like a request body: a record nested past MAX_JSON_DEPTH
    (here 5,000 deep, which would overflow Python's recursive decoder) is a failure naming the
    limit, in a JSON file, an array, a JSON Lines line and an API page alike; the records
    beside it are read; the configured limit reaches every source."""
    deep = '{"video_id": "deep", "phases": ' + "[" * 5000 + "]" * 5000 + "}"
    within = {**analysis(1), "extra": json.loads("[" * 20 + "]" * 20)}  # deep enough to count, not too deep
    (tmp_path / "one.json").write_text(deep, encoding="utf-8")
    (tmp_path / "many.json").write_text(f"[{json.dumps(analysis(2))}, {deep}]", encoding="utf-8")
    lines = "\n".join([json.dumps(within), deep, json.dumps(analysis(3))])
    (tmp_path / "lines.jsonl").write_text(lines, encoding="utf-8")
    (tmp_path / "edge.json").write_text(json.dumps({**analysis(4), "extra": json.loads("[" * 31 + "]" * 31)}))

    summary, _ = backfill(LocalSource(tmp_path))
    assert summary.counts == {"valid": 3, "failed": 3}, summary.failures
    assert {where.rsplit("/", 1)[-1] for where, _ in summary.failures} == {"one.json", "many.json", "lines.jsonl:2"}
    assert all("the limit is 32 (MAX_JSON_DEPTH)" in why for _, why in summary.failures), summary.failures

    api = serve(AnalysesApi([json.loads("[" * 40 + "]" * 40)], "cursor"))  # past the limit + a page's 2 levels
    refused, _ = backfill(ApiSource(url=api.url, token=TOKEN, rate=None, backoff=0.05))
    assert refused.counts == {"failed": 1} and "the limit is" in refused.failures[0][1], refused.failures

    settings = make_settings(max_json_depth=8)
    local = build_source(parser().parse_args(["--source", "local", "--dir", str(tmp_path)]), settings)
    remote = build_source(parser().parse_args(["--source", "api", "--url", "https://api.example/v1"]), settings)
    assert isinstance(local, LocalSource) and isinstance(remote, ApiSource)
    assert local.max_depth == remote.max_depth == 8
