"""Hostile input through the real service over a real socket (``functions.local_host`` under
uvicorn on 127.0.0.1 in a child process, queue worker off so "nothing was queued" is visible).

Every case gets its 4xx JSON error, leaves no blob, job record or queue message, and the
service keeps answering: a monitor thread requests ``/health`` and ``/external/stats``
back to back for the whole module, and at the end at least 95 % of them must have
answered within 1 s and every one within 5 s (the 1 s bound is the issue's; the
percentile and the 5 s cap leave room for a loaded two-core test machine, where one
request can wait on the scheduler).

The limits are set low (1 MiB bodies, 4 MiB drained) so the oversized cases stay cheap;
the code paths are those of the defaults.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from rag_core.analysis.record import MAX_PHASE_TEXT, parse_analysis
from rag_core.base.settings import Settings
from rag_core.context import AppContext
from tests.api.live_server import KEY, LatencyMonitor, LiveServer
from tests.appkit import analysis, app_settings, error_of, storage_snapshot
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"
LIMIT = 1024 * 1024


def limited_settings(azurite: Azurite, folder: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "max_json_bytes": LIMIT,
        "max_upload_bytes": LIMIT,
        "max_discard_bytes": 4 * LIMIT,
        "log_level": "WARNING",
    }
    return app_settings(azurite, folder / "qdrant", **{**values, **overrides})


@pytest.fixture(scope="module")
def server(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("hostile")
    live = LiveServer(limited_settings(azurite, folder), folder, worker=False).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def ctx(server: LiveServer) -> AppContext:
    """Storage of the server (never its Qdrant folder, which the server holds)."""
    return AppContext(server.settings)


@pytest.fixture(scope="module")
def monitor(server: LiveServer) -> Iterator[LatencyMonitor]:
    with LatencyMonitor(server.base) as watching:
        yield watching
    print(watching.check())  # the figures, for pytest -s


@pytest.fixture
def http(server: LiveServer, monitor: LatencyMonitor) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def phase_with(**fields: Any) -> dict[str, Any]:
    record = analysis("hostile-1")
    record["phases"][0].update(fields)
    return record


def multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart body built by hand, so any byte can go into a text part."""
    boundary = "hostileboundary7"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields.items()
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def form_fields(**extra: bytes) -> dict[str, bytes]:
    return {"video_url": b"https://example.com/v.mp4", "liver_id": b"liver-1", **extra}


JSON = {"Content-Type": "application/json"}

# name, request kwargs (for httpx), status, error code, field
CASES: list[tuple[str, dict[str, Any], int, str, str | None]] = [
    ("json nested 1000 deep", {"content": nested(1000), "headers": JSON}, 422, "json_too_deep", "body"),
    (
        "json nested 500 deep inside a phase",
        {"content": json.dumps(phase_with(extra="NEST")).replace('"NEST"', nested(500)), "headers": JSON},
        422,
        "json_too_deep",
        "body",
    ),
    (
        "json NaN",
        {"content": b'{"video_id": "x", "phases": [{"gmv": NaN}]}', "headers": JSON},
        422,
        "invalid_json",
        "body",
    ),
    (
        "json int of 5000 digits",
        {"content": b'{"video_id": 1' + b"0" * 5000 + b"}", "headers": JSON},
        422,
        "invalid_json",
        "body",
    ),
    ("json invalid UTF-8", {"content": b'{"video_id": "\xff"}', "headers": JSON}, 422, "invalid_json", "body"),
    (
        "speech_text over its maximum",
        {"json": phase_with(speech_text="あ" * (MAX_PHASE_TEXT + 1))},
        422,
        "invalid_analysis",
        "phases.0.speech_text",
    ),
    ("blank video id", {"json": analysis("   ")}, 422, "invalid_analysis", "video_id"),
    ("NUL in video id", {"json": analysis("a\x00b")}, 422, "invalid_analysis", "video_id"),
    ("CR/LF in video id", {"json": analysis("a\r\nb")}, 422, "invalid_analysis", "video_id"),
    ("zero-width space in video id", {"json": analysis("a\u200bb")}, 422, "invalid_analysis", "video_id"),
    ("201-character video id", {"json": analysis("v" * 201)}, 422, "invalid_analysis", "video_id"),
]


def _multipart_cases() -> list[tuple[str, dict[str, Any], int, str, str | None]]:
    cases: list[tuple[str, dict[str, Any], int, str, str | None]] = []
    record = json.dumps(analysis("hostile-mp")).encode()
    for name, fields, code, field in [
        (
            "multipart analysis \\xc3\\x28",
            form_fields(analysis=b'{"video_id": "vid-\xc3\x28"}'),
            "invalid_encoding",
            "analysis",
        ),
        ("multipart liver_id \\xff", form_fields(liver_id=b"\xff", analysis=record), "invalid_encoding", "liver_id"),
        (
            "multipart analysis nested 1000 deep",
            form_fields(analysis=nested(1000).encode()),
            "invalid_analysis",
            "analysis",
        ),
        ("multipart blank video_id", form_fields(video_id=b" ", analysis=record), "invalid_request", "video_id"),
    ]:
        body, content_type = multipart(fields)
        cases.append((name, {"content": body, "headers": {"Content-Type": content_type}}, 422, code, field))
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    cases.append(
        (
            "urlencoded %FF",
            {"content": b"video_url=x&liver_id=%FF", "headers": urlencoded},
            422,
            "invalid_encoding",
            "liver_id",
        )
    )
    return cases


@pytest.mark.parametrize(
    ("name", "send", "status", "code", "field"),
    CASES + _multipart_cases(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_hostile_body_is_refused_and_nothing_is_kept(
    http: httpx.Client, ctx: AppContext, name: str, send: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    before = storage_snapshot(ctx)
    response = http.post(STORE, **send)
    assert response.status_code == status, (name, response.text[:500])
    error = error_of(response)
    assert error["code"] == code and error.get("field") == field, (name, error)
    if code == "json_too_deep":
        assert "MAX_JSON_DEPTH" in error["message"]
    assert storage_snapshot(ctx) == before, name


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/external/search",
        "/api/v1/external/prompt",
        "/api/v1/feedback",
        "/api/v1/external/retrieve/similar",
        "/api/v1/external/sales/ingest-json",
    ],
)
def test_deep_json_is_422_on_every_json_route(http: httpx.Client, path: str) -> None:
    """FastAPI's own body decoding recurses: a 5,000-deep body was a 500 on any JSON route."""
    response = http.post(path, content='{"a": ' + nested(5000) + "}", headers=JSON)
    assert response.status_code == 422 and error_of(response)["code"] == "json_too_deep", response.text[:300]


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON body streamed from a generator: httpx sends it chunked, with no Content-Length."""
    head = b'{"video_id": "chunked", "phases": [{"speech_text": "'
    yield head
    sent = len(head)
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}]}'


def test_chunked_body_over_the_limit_gets_413(http: httpx.Client, ctx: AppContext) -> None:
    """The issue's stall: a chunked JSON body with one huge speech_text. Counted as it arrives,
    drained, answered 413 (before: 202, then ten minutes of 200 % CPU)."""
    before = storage_snapshot(ctx)
    response = http.post(STORE, content=_chunks(3 * LIMIT), headers=JSON)
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"
    assert storage_snapshot(ctx) == before


def test_chunked_body_within_the_limit_is_parsed(http: httpx.Client) -> None:
    """The same route, a chunked body under the limit: read to its end and validated as usual."""
    response = http.post(STORE, content=_chunks(LIMIT // 2), headers=JSON)
    assert response.status_code == 422 and error_of(response)["field"] == "phases.0.speech_text"


def test_clients_that_write_their_whole_body_first_read_the_413(
    server: LiveServer, ctx: AppContext, monitor: LatencyMonitor, tmp_path: Path
) -> None:
    """urllib, requests (with a file) and node's fetch send the whole body before reading the
    answer; an over-limit body is drained, so each reads the JSON 413 instead of a reset."""
    before = storage_snapshot(ctx)
    body = b"x" * (2 * LIMIT)
    url = f"{server.base}{STORE}"

    request = urllib.request.Request(url, data=body, method="POST", headers={**JSON, "X-API-Key": KEY})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 413 and json.loads(refused.value.read())["error"]["code"] == "too_large"

    path = tmp_path / "big.json"
    path.write_bytes(body)
    with path.open("rb") as file:
        answer = requests.post(url, data=file, headers={**JSON, "X-API-Key": KEY}, timeout=60)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "too_large"

    script = (
        "fetch(process.argv[1], {method: 'POST', body: Buffer.alloc(Number(process.argv[2]), 120),"
        " headers: {'Content-Type': 'application/json', 'X-API-Key': process.argv[3]}})"
        ".then(async r => console.log(r.status, await r.text())).catch(e => { console.log('error', e.cause || e); })"
    )
    node = subprocess.run(
        ["node", "-e", script, url, str(2 * LIMIT), KEY], capture_output=True, text=True, timeout=60, check=True
    )
    status, _, text = node.stdout.strip().partition(" ")
    assert status == "413" and json.loads(text)["error"]["code"] == "too_large", node.stdout
    assert storage_snapshot(ctx) == before


def test_multipart_over_the_limit_gets_413(http: httpx.Client, ctx: AppContext) -> None:
    before = storage_snapshot(ctx)
    body, content_type = multipart(form_fields(analysis=b"a" * (3 * LIMIT)))
    response = http.post(STORE, content=body, headers={"Content-Type": content_type})
    assert response.status_code == 413 and error_of(response)["code"] == "too_large"
    assert storage_snapshot(ctx) == before


@pytest.mark.parametrize("bad", ["a%0D%0Ab", "a%0Ab", "a%0A", "a%0D", "%0A", "a%00b", "a%7Fb", "a%E2%80%8Bb"])
def test_control_characters_in_a_path_id_get_the_id_grammar_422(http: httpx.Client, bad: str) -> None:
    """The same 422 as in a body on every route taking a path id; a line break used to stop the
    route's match (404), and one at the end matched the id without it ("a%0A" reached "a")."""
    for method, path in (
        ("DELETE", f"/api/v1/external/videos/{bad}"),
        ("GET", f"/api/v1/external/videos/{bad}"),
        ("PUT", f"/api/v1/videos/{bad}/phases/0/rating"),
    ):
        response = http.request(method, path, json={"rating": 3} if method == "PUT" else None)
        assert response.status_code == 422, (method, bad, response.text)
        error = error_of(response)
        assert error["code"] == "invalid_request" and error["field"] == "video_id", (method, bad, error)
        assert error["message"].startswith("video_id must"), error


def test_unknown_job_ids_are_404(http: httpx.Client) -> None:
    for job_id in ("not-a-uuid", "00000000-0000-4000-8000-000000000000", "%2F..%2F", "a%23b"):
        response = http.get(f"/api/v1/external/analysis/{job_id}")
        assert response.status_code == 404 and error_of(response)["code"] == "not_found", job_id


@pytest.mark.parametrize(
    ("sent", "date"),
    [
        ("2026-10-01", "2026-10-01"),
        ("2026/10/01", "2026-10-01"),
        ("2026.10.1", "2026-10-01"),
        ("2026年10月1日", "2026-10-01"),
        ("20261001", "2026-10-01"),
        ("2026-10-01T20:00:00+09:00", "2026-10-01"),
        ("2026-10-01T23:30:00-05:00", "2026-10-01"),  # the date in the timestamp's own offset
        ("2026-09-30T20:00:00Z", "2026-09-30"),
        ("2026-10-01T20:00:00", "2026-10-01"),  # no offset: Japan time
    ],
)
def test_stream_dates_as_callers_send_them(sent: str, date: str) -> None:
    assert str(parse_analysis(analysis("dated", stream_date=sent)).stream_date) == date


def test_a_date_that_is_no_date_is_refused(http: httpx.Client) -> None:
    response = http.post(STORE, json=analysis("undated", stream_date="2026-13-45"))
    assert response.status_code == 422 and error_of(response)["field"] == "stream_date"
