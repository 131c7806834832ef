"""Fixtures shared by the API tests that run the service as a real process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_core.base.settings import Settings
from tests.api.live_server import LiveServer


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    """The service with its queue worker, on the requesting module's ``settings``; stopped after."""
    live = LiveServer(settings, tmp_path / "server", worker=True)
    yield live
    live.stop()
