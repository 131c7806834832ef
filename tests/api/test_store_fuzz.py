"""Property-based fuzz of ``POST /external/analysis/store`` (JSON and multipart bodies).

Random structure, depth, sizes, encodings and numbers (NaN, ±inf, huge ints, ``1.2万``,
full-width digits, ``￥150,000``) laid over a valid analysis, or sent as raw bytes:
the API never answers 5xx, and every job it accepts ends ``done`` or ``failed`` with a
reason when the queue trigger runs it (a failure escaping as transient would be a
misclassified input). Bounded to ``MAX_EXAMPLES`` examples per body kind and no
shrinking-phase blow-up (``deadline`` per example), so the suite stays fast; a longer
run is ``HYPOTHESIS_PROFILE=long`` (``benchmarks/`` style: same test, more examples).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.api import create_api
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.jobs.records import JobStatus
from tests.appkit import analysis, app_context, app_settings, function_map, run_queue
from tests.azurite import Azurite

STORE = "/api/v1/external/analysis/store"
MAX_EXAMPLES = 400 if os.environ.get("HYPOTHESIS_PROFILE") == "long" else 40
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples every run: a fuzz failure is reproducible
)

HUMAN_NUMBERS = ["1.2万", "１２３", "￥150,000", "150000円", "12.5K", "3,200人", "", "-0", "1e309", "0x10", "٣"]
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(HUMAN_NUMBERS),
    st.text(max_size=12),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=40))
values = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
PHASE_KEYS = ["phase_index", "start_sec", "end_sec", "speech_text", "phase_type", "products", "duration_seconds"]
RECORD_KEYS = ["video_id", "stream_date", "sales", "set_products", "screen_metrics", "brand_id", "liver_id"]


@st.composite
def records(draw: st.DrawFn) -> Any:
    """A valid analysis with some fields replaced by anything, or anything at all, maybe nested deep."""
    record: Any = analysis(f"fuzz-{draw(st.integers(0, 5))}")
    for key in draw(st.lists(st.sampled_from(RECORD_KEYS), max_size=3)):
        record[key] = draw(values)
    for key in draw(st.lists(st.sampled_from(PHASE_KEYS), max_size=3)):
        record["phases"][0][key] = draw(numbers | values)
    if draw(st.booleans()):
        record["sales"] = {k: draw(numbers) for k in draw(st.lists(st.sampled_from(["gmv", "cvr", "viewers"])))}
    return record if draw(st.integers(0, 9)) else draw(values)


# Nesting is applied to the encoded text, not drawn as data: hypothesis could not even print
# a 2,000-deep example when reporting it.
depths = st.sampled_from([0, 0, 0, 10, 40, 300, 2000])


def _encode(record: Any, how: str, depth: int = 0) -> bytes:
    text = "[" * depth + json.dumps(record, ensure_ascii=how == "ascii", allow_nan=True) + "]" * depth
    return text.encode("utf-16") if how == "utf-16" else text.encode()


@pytest.fixture(scope="module")
def ctx(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory, local_embedder: LocalE5Embedder) -> AppContext:
    settings_ = app_settings(azurite, Path(tmp_path_factory.mktemp("fuzz")) / "qdrant")
    return app_context(settings_, local_embedder)


@pytest.fixture(scope="module")
def http(ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_api(lambda: ctx), raise_server_exceptions=False) as client:
        yield client


def _settle(ctx: AppContext, functions: dict[str, Callable[..., Any]], response: Any) -> None:
    """No 5xx; an accepted job runs to ``done`` or to ``failed`` with a reason, on first delivery."""
    assert response.status_code < 500, response.text[:500]
    if response.status_code != 202:
        assert "error" in response.json()
        return
    run_queue(ctx, functions)  # raising here = a fuzz input classed as an infrastructure fault
    job = ctx.jobs.get(response.json()["job_id"])
    assert job is not None and job.status in (JobStatus.DONE, JobStatus.FAILED), job
    assert job.status == JobStatus.DONE or job.error, job


@FUZZ
@given(record=records(), how=st.sampled_from(["utf-8", "ascii", "utf-16"]), depth=depths)
def test_fuzzed_json_bodies(ctx: AppContext, http: TestClient, record: Any, how: str, depth: int) -> None:
    body = _encode(record, how, depth)
    response = http.post(STORE, content=body, headers={"Content-Type": "application/json"})
    _settle(ctx, function_map(ctx), response)


@FUZZ
@given(
    record=records(),
    depth=depths,
    liver_id=st.binary(max_size=20) | st.just(b"liver"),
    video_id=st.none() | st.binary(max_size=20) | st.text(max_size=30).map(str.encode),
    stream_date=st.none() | st.sampled_from([b"2026/10/01", b"2026-10-01T20:00:00+09:00", b"\xff", b"yesterday"]),
)
def test_fuzzed_multipart_bodies(
    ctx: AppContext,
    http: TestClient,
    record: Any,
    depth: int,
    liver_id: bytes,
    video_id: bytes | None,
    stream_date: bytes | None,
) -> None:
    analysis_part = _encode(record, "utf-8", depth)
    fields = {"video_url": b"https://example.com/v.mp4", "liver_id": liver_id, "analysis": analysis_part}
    if video_id is not None:
        fields["video_id"] = video_id
    if stream_date is not None:
        fields["stream_date"] = stream_date
    boundary = "fuzzboundary"
    body = (
        b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
            for name, value in fields.items()
        )
        + f"--{boundary}--\r\n".encode()
    )
    response = http.post(STORE, content=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    _settle(ctx, function_map(ctx), response)
