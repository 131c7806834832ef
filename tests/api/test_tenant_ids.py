"""Video ids are unique per brand, through the real service over a real socket.

Two fresh services (``functions.local_host`` under uvicorn on 127.0.0.1, queue worker on,
real Azurite, embedded Qdrant) run the same sequence of brand-A requests on video id
``shared-1``: store, job status until done, read-back, search, stats, feedback (two routes),
a repeated store, deletion. On the second service brand B stored its own ``shared-1``
first. Brand A's answers must be the same bytes on both (status, headers but ``date``,
body), so nothing A sees tells "another brand holds this id" from "the id is free".

Normalised before comparing, and only these: the timestamp fields ``created_at``,
``updated_at``, ``read_at`` and ``at`` (a sales source's time) wherever they occur in a
JSON body (when the job ran is inherently variable), and the ``date`` and ``content-length`` headers (the length
follows from the timestamps; the normalised bodies are compared byte for byte).

On the second service the test also shows the two videos are independent: B's read-back,
search and stats are unchanged by everything A did, an unscoped key gets 409
``ambiguous_video_id`` (listing both brands) without ``brand_id`` and each video with it,
and after A's deletion B's video is the only one left.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.live_server import KEY, LiveServer
from tests.appkit import analysis, app_settings
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"
VIDEO = "shared-1"
BRAND_A = {"X-API-Key": "tenant-brand-a-0123456789abcdef"}
BRAND_B = {"X-API-Key": "tenant-brand-b-0123456789abcdef"}
ADMIN = {"X-API-Key": KEY}
KEYS = [
    {"name": "brand-a", "key": BRAND_A["X-API-Key"], "brand_id": 1},
    {"name": "brand-b", "key": BRAND_B["X-API-Key"], "brand_id": 2},
]
A_TEXT = "この美容液、今夜だけ三本で九千八百円です"
B_TEXT = "ブランドBの冬物コート、在庫は残りわずかです"
VARIABLE = {"created_at", "updated_at", "read_at", "at"}

Answer = tuple[int, dict[str, str], bytes]


def analysis_of(text: str, liver: str, gmv: int) -> dict[str, Any]:
    data = analysis(VIDEO, liver_id=liver, sales={"gmv": gmv, "orders": 10, "cvr": 2.0})
    data["phases"][1]["speech_text"] = text
    return data


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<time>" if k in VARIABLE and v is not None else _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    return value


def answer(response: httpx.Response) -> Answer:
    """Status, headers (but date and content-length) and the body with its timestamps normalised."""
    headers = {k: v for k, v in response.headers.items() if k not in ("date", "content-length")}
    body = response.content
    if response.headers.get("content-type", "").startswith("application/json"):
        body = json.dumps(_normalised(response.json()), ensure_ascii=False, sort_keys=False).encode()
    return response.status_code, headers, body


def wait_done(http: httpx.Client, job_id: str, key: dict[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = http.get(f"/api/v1/external/analysis/{job_id}", headers=key)
        if response.json().get("status") in ("done", "failed"):
            return response
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not end within 120 s")


def brand_a_session(http: httpx.Client) -> list[Answer]:
    """What brand A does with ``shared-1``; every answer it gets, in order."""
    answers = []

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = http.request(method, path, headers=BRAND_A, **kwargs)
        answers.append(answer(response))
        return response

    stored = call("POST", STORE, json=analysis_of(A_TEXT, "liver_a", 100_000))
    assert stored.status_code == 202, stored.text
    done = wait_done(http, stored.json()["job_id"], BRAND_A)
    answers.append(answer(done))
    assert done.json()["status"] == "done", done.text
    call("GET", f"/api/v1/external/videos/{VIDEO}")
    call("GET", f"/api/v1/external/videos/{VIDEO}", params={"brand_id": "2"})  # naming B: nothing
    call("GET", "/api/v1/external/videos/not-stored")
    call("POST", "/api/v1/external/search", json={"query": A_TEXT, "k": 10})
    call("POST", "/api/v1/external/search", json={"query": B_TEXT, "k": 10})
    call("GET", "/api/v1/external/stats")
    call("POST", "/api/v1/feedback", json={"video_id": VIDEO, "phase_index": 1, "rating": 5})
    call("PUT", f"/api/v1/videos/{VIDEO}/phases/0/rating", json={"rating": 2})
    call("GET", f"/api/v1/external/videos/{VIDEO}")
    again = call("POST", STORE, json=analysis_of(A_TEXT, "liver_a", 100_000))
    assert again.json()["duplicate"] is True
    call("DELETE", f"/api/v1/external/videos/{VIDEO}")
    call("DELETE", f"/api/v1/external/videos/{VIDEO}")
    call("GET", "/api/v1/external/stats")
    return answers


@pytest.fixture
def server_factory(azurite: Azurite, tmp_path: Path) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(name: str) -> LiveServer:
        folder = tmp_path / name
        settings = app_settings(azurite, folder / "qdrant", log_level="WARNING")
        live = LiveServer(settings, folder, worker=True, extra_keys=KEYS).start()
        servers.append(live)
        return live

    yield start
    for live in servers:
        live.stop()


def test_the_same_video_id_under_two_brands_is_two_videos_and_no_oracle(server_factory: Any) -> None:
    free = server_factory("free")
    with httpx.Client(base_url=free.base, timeout=60) as http:
        alone = brand_a_session(http)

    taken = server_factory("taken")
    with httpx.Client(base_url=taken.base, timeout=60) as http:
        b_store = http.post(STORE, json=analysis_of(B_TEXT, "liver_b", 900_000), headers=BRAND_B)
        assert b_store.status_code == 202, b_store.text
        assert wait_done(http, b_store.json()["job_id"], BRAND_B).json()["status"] == "done"
        b_before = answer(http.get(f"/api/v1/external/videos/{VIDEO}", headers=BRAND_B))
        b_search = answer(http.post("/api/v1/external/search", json={"query": B_TEXT, "k": 10}, headers=BRAND_B))

        beside_b = brand_a_session(http)

        # B's video: the same answers after all that A did with the same id
        assert answer(http.get(f"/api/v1/external/videos/{VIDEO}", headers=BRAND_B)) == b_before
        b_search_after = http.post("/api/v1/external/search", json={"query": B_TEXT, "k": 10}, headers=BRAND_B)
        assert answer(b_search_after) == b_search
        assert {h["video_id"] for h in b_search_after.json()["results"]} == {VIDEO}
        stats = http.get("/api/v1/external/stats", headers=BRAND_B).json()
        assert (stats["total_videos"], stats["total_gmv"]) == (1, 900_000)
        # with A's video gone, an unscoped key finds B's alone
        only = http.get(f"/api/v1/external/videos/{VIDEO}", headers=ADMIN)
        assert only.status_code == 200 and only.json()["brand_id"] == 2

    assert [a[0] for a in alone] == [202, 200, 200, 404, 404, 200, 200, 200, 200, 200, 200, 202, 200, 404, 200]
    for step, (a, b) in enumerate(zip(alone, beside_b, strict=True)):
        assert a == b, f"brand A's answer {step} differs when brand B holds the id:\n{a}\n{b}"


def test_an_unscoped_key_names_the_owner_of_an_id_two_brands_hold(server_factory: Any) -> None:
    live = server_factory("admin")
    with httpx.Client(base_url=live.base, timeout=60) as http:
        for key, text, liver, gmv in ((BRAND_A, A_TEXT, "liver_a", 100_000), (BRAND_B, B_TEXT, "liver_b", 900_000)):
            stored = http.post(STORE, json=analysis_of(text, liver, gmv), headers=key)
            assert wait_done(http, stored.json()["job_id"], key).json()["status"] == "done"
        stats = http.get("/api/v1/external/stats", headers=ADMIN).json()
        assert stats["total_videos"] == 2

        ambiguous = http.get(f"/api/v1/external/videos/{VIDEO}", headers=ADMIN)
        assert ambiguous.status_code == 409, ambiguous.text
        error = ambiguous.json()["error"]
        assert error["code"] == "ambiguous_video_id" and error["field"] == "brand_id"
        assert [d["message"] for d in error["details"]] == ["1", "2"]
        for path, method in ((f"/api/v1/external/videos/{VIDEO}", "DELETE"), ("/api/v1/feedback", "POST")):
            body = {"video_id": VIDEO, "phase_index": 0, "rating": 3} if method == "POST" else None
            refused = http.request(method, path, json=body, headers=ADMIN)
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "ambiguous_video_id"

        # The prompt for brand 2's video, asked with the owner named, leaves out that video only:
        # brand 1's video with the same id is another stream, and its phases are similar ones.
        ask = {"speech_text": A_TEXT, "video_id": VIDEO, "k": 5}
        prompt = "/api/v1/external/prompt"
        named_owner = http.post(prompt, params={"brand_id": 2}, json=ask, headers=ADMIN).json()["similar"]
        assert {(h["video_id"], h["brand_id"]) for h in named_owner} == {(VIDEO, 1)}
        assert named_owner[0]["speech_text"] == A_TEXT
        assert http.post(prompt, json=ask, headers=ADMIN).json()["similar"] == []  # no owner named: every copy out
        assert http.post(prompt, params={"brand_id": 2}, json=ask, headers=BRAND_A).status_code == 404
        hits = http.post("/api/v1/external/search", json={"query": B_TEXT}, headers=ADMIN).json()["results"]
        assert {(h["video_id"], h["brand_id"]) for h in hits} == {(VIDEO, 1), (VIDEO, 2)}  # each hit names its owner

        for brand, liver in ((1, "liver_a"), (2, "liver_b")):
            named = http.get(f"/api/v1/external/videos/{VIDEO}", params={"brand_id": brand}, headers=ADMIN)
            assert named.status_code == 200 and named.json()["liver_id"] == liver and named.json()["brand_id"] == brand
        assert (
            http.get(f"/api/v1/external/videos/{VIDEO}", params={"brand_id": "none"}, headers=ADMIN).status_code == 404
        )

        rated = http.post(
            "/api/v1/feedback", params={"brand_id": 2}, json={"video_id": VIDEO, "phase_index": 1, "rating": 5},
            headers=ADMIN,
        )  # fmt: skip
        assert rated.status_code == 200, rated.text
        phases_b = http.get(f"/api/v1/external/videos/{VIDEO}", params={"brand_id": 2}, headers=ADMIN).json()["phases"]
        phases_a = http.get(f"/api/v1/external/videos/{VIDEO}", headers=BRAND_A).json()["phases"]
        assert [p.get("feedback_count") for p in phases_b] == [0, 1]
        assert [p.get("feedback_count") for p in phases_a] == [0, 0]

        deleted = http.delete(f"/api/v1/external/videos/{VIDEO}", params={"brand_id": 1}, headers=ADMIN)
        assert deleted.status_code == 200 and deleted.json()["deleted_points"] == 2
        assert http.get(f"/api/v1/external/videos/{VIDEO}", headers=BRAND_A).status_code == 404
        assert http.get(f"/api/v1/external/videos/{VIDEO}", headers=BRAND_B).status_code == 200
        assert http.get(f"/api/v1/external/videos/{VIDEO}", headers=ADMIN).json()["brand_id"] == 2
