"""Open the configured Qdrant: a server (``QDRANT_URL``) or the embedded local mode.

Local mode allows a single client per storage folder (it holds a file lock), so
clients are cached per resolved path for the life of the process.
"""

from __future__ import annotations

import atexit
import threading
from pathlib import Path

from qdrant_client import QdrantClient

from rag_core.base.settings import Settings

_local_clients: dict[Path, QdrantClient] = {}
_lock = threading.Lock()


def open_qdrant(settings: Settings) -> QdrantClient:
    """A client for the server at ``QDRANT_URL``, else the shared local client for ``QDRANT_PATH``."""
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=settings.qdrant_timeout_sec)
    path = settings.qdrant_path.resolve()
    with _lock:
        client = _local_clients.get(path)
        if client is None:
            path.mkdir(parents=True, exist_ok=True)
            client = QdrantClient(path=str(path))
            _local_clients[path] = client
        return client


@atexit.register
def _close_all() -> None:
    """Close local clients before interpreter shutdown (their finalizer fails late in it)."""
    for path in list(_local_clients):
        close_local(path)


def close_local(path: Path) -> None:
    """Release the local client of ``path`` (restores and tests reopen the folder afterwards)."""
    with _lock:
        client = _local_clients.pop(path.resolve(), None)
    if client is not None:
        client.close()
