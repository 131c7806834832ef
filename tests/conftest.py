"""Shared fixtures: a real Azurite, embedded Qdrant folders, the offline embedder, and the API
client and function map over whatever ``ctx`` (AppContext) fixture the requesting module defines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.api import create_api
from rag_core.base.settings import Settings, load_settings
from rag_core.context import AppContext
from rag_core.embeddings.local import LocalE5Embedder
from tests.appkit import RememberingEmbedder, function_map
from tests.azurite import Azurite

SettingsFactory = Callable[..., Settings]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite process for the whole session (tests use unique container/queue names)."""
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_embedder() -> LocalE5Embedder:
    """The offline model, loaded once; tests read ``usage`` deltas, never absolute values."""
    return LocalE5Embedder()


@pytest.fixture(scope="session")
def sample_embedder(local_embedder: LocalE5Embedder) -> RememberingEmbedder:
    """The embedder for fixtures that load the sample analyses (see RememberingEmbedder)."""
    return RememberingEmbedder(local_embedder)


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for an isolated test: own Qdrant folder, offline providers, no Azure."""

    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "qdrant_path": tmp_path / "qdrant",
            "embedding_provider": "local",
            "sales_ocr_provider": "local",
            "azure_openai_endpoint": None,
        }
        values.update(overrides)
        return load_settings(**values)

    return factory


@pytest.fixture(scope="module")
def client(ctx: AppContext) -> Iterator[TestClient]:
    """The HTTP API over the module's context."""
    with TestClient(create_api(lambda: ctx)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def functions(ctx: AppContext) -> dict[str, Callable[..., Any]]:
    """The Functions app's user functions over the module's context, by name."""
    return function_map(ctx)
