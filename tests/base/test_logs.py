"""Logs carry job/video correlation and never the secrets the app holds."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from rag_core.base.logs import JsonFormatter, configure_logging, log_context
from tests.conftest import SettingsFactory

API_KEY = "lcj-3f9a7c2e-very-secret"
QDRANT_KEY = "qdrant-key-0123456789"
ACCOUNT_KEY = "c2VjcmV0LWFjY291bnQta2V5LWJhc2U2NA=="


@pytest.fixture
def captured(make_settings: SettingsFactory) -> Iterator[io.StringIO]:
    settings = make_settings(
        api_keys=[{"name": "lcj", "key": API_KEY, "brand_id": 1}],
        qdrant_api_key=QDRANT_KEY,
        storage_connection_string=f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={ACCOUNT_KEY};",
    )
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    configure_logging(settings)
    yield stream
    root.handlers, root.level = saved[0], saved[1]


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_secrets_are_masked_in_messages_arguments_and_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("test")
    log.warning("auth failed for key %s", API_KEY)
    log.info("connecting with api-key: %s and AccountKey=%s;", QDRANT_KEY, ACCOUNT_KEY)
    log.info("header Authorization: Bearer abc.def.ghi")
    try:
        raise RuntimeError(f"boom {QDRANT_KEY}")
    except RuntimeError:
        log.exception("failed")

    text = captured.getvalue()
    for secret in (API_KEY, QDRANT_KEY, ACCOUNT_KEY, "abc.def.ghi"):
        assert secret not in text
    assert text.count("***") >= 5


def test_log_context_correlates_job_and_video(captured: io.StringIO) -> None:
    log = logging.getLogger("test")
    with log_context(job_id="job-1", video_id="v-9"):
        log.info("ingesting")
        with log_context(phase=3):
            log.info("phase")
    log.info("outside")

    first, nested, outside = lines(captured)
    assert (first["job_id"], first["video_id"]) == ("job-1", "v-9")
    assert nested["phase"] == 3 and nested["job_id"] == "job-1"
    assert "job_id" not in outside
