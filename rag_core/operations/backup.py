"""Snapshots of both Qdrant collections in Blob storage, with retention and restore.

Two ways to take one, by where Qdrant runs:

* **Embedded engine** (no ``QDRANT_URL``; qdrant-edge 0.9 can restore a
  shard from a server snapshot but has no call that makes one): the engine's
  own storage, both collections' shard folders (segments, payload indexes,
  HNSW graphs, write-ahead log) copied with writes paused, as one gzipped tar
  ``<name>.edge.tar.gz`` (``EdgeEngine.export_store``). Restoring it puts those
  folders back: no re-embedding, no re-indexing. It restores into an embedded
  store of the same qdrant-edge minor version only.
* **JSON Lines archive** ``<name>.jsonl.gz`` (what the embedded engine wrote
  before, and what any other engine given here writes): every point of the
  phase and the stream collection, with its vectors and payload, plus each
  collection's vector configuration and payload indexes. Restoring it replaces
  the collections with exactly those points (ids, vectors, payloads), into
  either engine; archives made before the edge store restore unchanged.
* **Qdrant server**: Qdrant's own snapshot of each collection is downloaded
  and stored as ``<name>/<collection>.snapshot``, then deleted on the server;
  restore uploads it back (``/collections/<c>/snapshots/upload``).

Snapshot names are ``qdrant-<UTC timestamp>``, so they sort by age. After a
new snapshot is stored, the oldest beyond ``SNAPSHOT_RETENTION`` are deleted
(never before the new one is safely uploaded; a server snapshot that fails
half-way has the blobs it had stored deleted again).

    python -m rag_core.operations.backup create
    python -m rag_core.operations.backup list
    python -m rag_core.operations.backup restore --snapshot qdrant-20260101T180000000Z
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import httpx
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from rag_core.base.settings import Settings
from rag_core.base.storage import AzureError, ContainerClient
from rag_core.context import AppContext
from rag_core.knowledge.engine import EdgeEngine, VectorEngine

log = logging.getLogger(__name__)

PREFIX = "qdrant-"
ARCHIVE_SUFFIX = ".jsonl.gz"
EDGE_SUFFIX = ".edge.tar.gz"
SERVER_SUFFIX = ".snapshot"
FORMAT = 1
_PAGE = 256


@dataclass
class SnapshotInfo:
    name: str
    blobs: list[str] = field(default_factory=list)
    size: int = 0

    @property
    def kind(self) -> str:
        """``edge`` (the embedded engine's storage), ``archive`` (JSON Lines) or ``server``."""
        if any(b.endswith(EDGE_SUFFIX) for b in self.blobs):
            return "edge"
        return "archive" if any(b.endswith(ARCHIVE_SUFFIX) for b in self.blobs) else "server"


def snapshot_name(at: dt.datetime) -> str:
    at = at.astimezone(dt.UTC)
    return f"{PREFIX}{at:%Y%m%dT%H%M%S}{at.microsecond // 1000:03d}Z"


def collections_of(settings: Settings) -> list[str]:
    return [settings.qdrant_collection, settings.streams_collection]


# ------------------------------------------------------------------- create --
def create_snapshot(
    settings: Settings, client: VectorEngine, container: ContainerClient, *, at: dt.datetime | None = None
) -> SnapshotInfo:
    """Snapshot both collections into ``container``, then apply the retention."""
    name = snapshot_name(at or dt.datetime.now(dt.UTC))
    if settings.qdrant_url and isinstance(client, QdrantClient):
        info = _store_server_snapshots(settings, client, container, name)
    elif isinstance(client, EdgeEngine):
        info = _store_edge(settings, client, container, name)
    else:
        info = _store_archive(settings, client, container, name)
    deleted = prune(container, keep=settings.snapshot_retention)
    log.info("snapshot %s stored (%d bytes); %d old snapshots deleted", name, info.size, len(deleted))
    return info


def snapshot_on_schedule(ctx: AppContext, *, past_due: bool = False) -> SnapshotInfo:
    """What the snapshot timer does: snapshot the knowledge base into the snapshots container."""
    if past_due:
        log.info("snapshot timer is past due; taking the snapshot now")
    container = ctx.storage.container(ctx.settings.snapshots_container)
    with ctx.knowledge() as kb:
        return create_snapshot(ctx.settings, kb.client, container)


def _collection_header(client: VectorEngine, collection: str) -> dict[str, Any]:
    info = client.get_collection(collection)
    vectors = info.config.params.vectors
    if isinstance(vectors, dict):
        vector_config: Any = {k: v.model_dump(mode="json", exclude_none=True) for k, v in vectors.items()}
    else:
        vector_config = vectors.model_dump(mode="json", exclude_none=True) if vectors else {}
    return {
        "kind": "collection",
        "name": collection,
        "vectors": vector_config,
        "payload_schema": {k: v.data_type.value for k, v in (info.payload_schema or {}).items()},
    }


def _points(client: VectorEngine, collection: str) -> Iterator[qm.Record]:
    offset: qm.ExtendedPointId | None = None
    while True:
        page, offset = client.scroll(collection, limit=_PAGE, offset=offset, with_payload=True, with_vectors=True)
        yield from page
        if offset is None:
            return


def export_archive(settings: Settings, client: VectorEngine, out: IO[bytes]) -> int:
    """Write both collections as gzipped JSON Lines to ``out``; returns the number of points."""
    count = 0
    with gzip.GzipFile(fileobj=out, mode="wb") as gz:

        def line(obj: dict[str, Any]) -> None:
            gz.write(json.dumps(obj, ensure_ascii=False).encode() + b"\n")

        line({"kind": "snapshot", "format": FORMAT, "collections": collections_of(settings)})
        for collection in collections_of(settings):
            line(_collection_header(client, collection))
            for point in _points(client, collection):
                vector = point.vector or {}
                line(
                    {
                        "kind": "point",
                        "collection": collection,
                        "id": point.id,
                        "vector": vector,
                        "payload": point.payload,
                    }
                )
                count += 1
    return count


def _store_archive(settings: Settings, client: VectorEngine, container: ContainerClient, name: str) -> SnapshotInfo:
    with tempfile.TemporaryFile() as tmp:
        points = export_archive(settings, client, tmp)
        size = tmp.tell()
        tmp.seek(0)
        blob = name + ARCHIVE_SUFFIX
        container.upload_blob(blob, tmp, length=size, overwrite=False, metadata={"points": str(points)})
    return SnapshotInfo(name=name, blobs=[blob], size=size)


def _store_edge(settings: Settings, engine: EdgeEngine, container: ContainerClient, name: str) -> SnapshotInfo:
    with tempfile.TemporaryFile() as tmp:
        engine.export_store(collections_of(settings), tmp)
        size = tmp.tell()
        tmp.seek(0)
        blob = name + EDGE_SUFFIX
        container.upload_blob(blob, tmp, length=size, overwrite=False)
    return SnapshotInfo(name=name, blobs=[blob], size=size)


def _server(settings: Settings) -> httpx.Client:
    headers = {"api-key": settings.qdrant_api_key.get_secret_value()} if settings.qdrant_api_key else {}
    return httpx.Client(base_url=str(settings.qdrant_url), headers=headers, timeout=600)


def _store_server_snapshots(
    settings: Settings, client: QdrantClient, container: ContainerClient, name: str
) -> SnapshotInfo:
    """Qdrant's own snapshot per collection, streamed from the server into Blob storage.

    If any collection fails, the blobs already stored for this snapshot are deleted again:
    left behind, a part of a snapshot would be listed as the newest one, count against the
    retention and restore only some of the collections.
    """
    info = SnapshotInfo(name=name)
    try:
        with _server(settings) as http:
            for collection in collections_of(settings):
                snap = client.create_snapshot(collection, wait=True)
                if snap is None:
                    raise RuntimeError(f"Qdrant made no snapshot of {collection}")
                try:
                    with tempfile.TemporaryFile() as tmp:
                        with http.stream("GET", f"/collections/{collection}/snapshots/{snap.name}") as response:
                            response.raise_for_status()
                            for chunk in response.iter_bytes():
                                tmp.write(chunk)
                        size = tmp.tell()
                        tmp.seek(0)
                        blob = f"{name}/{collection}{SERVER_SUFFIX}"
                        container.upload_blob(blob, tmp, length=size, overwrite=False)
                    info.blobs.append(blob)
                    info.size += size
                finally:
                    client.delete_snapshot(collection, snap.name, wait=True)
    except Exception:
        for blob in info.blobs:
            with contextlib.suppress(AzureError):  # best effort; the original error is what matters
                container.delete_blob(blob)
        raise
    return info


# --------------------------------------------------------------- list/prune --
def list_snapshots(container: ContainerClient) -> list[SnapshotInfo]:
    """Stored snapshots, oldest first."""
    found: dict[str, SnapshotInfo] = {}
    for blob in container.list_blobs(name_starts_with=PREFIX):
        if blob.name.endswith(EDGE_SUFFIX):
            name = blob.name[: -len(EDGE_SUFFIX)]
        elif blob.name.endswith(ARCHIVE_SUFFIX):
            name = blob.name[: -len(ARCHIVE_SUFFIX)]
        elif "/" in blob.name:
            name = blob.name.split("/", 1)[0]
        else:
            continue
        info = found.setdefault(name, SnapshotInfo(name=name))
        info.blobs.append(blob.name)
        info.size += blob.size or 0
    return [found[k] for k in sorted(found)]


def prune(container: ContainerClient, *, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` snapshots; returns the names deleted."""
    old = list_snapshots(container)[:-keep] if keep > 0 else []
    for info in old:
        for blob in info.blobs:
            container.delete_blob(blob)
    return [info.name for info in old]


# ------------------------------------------------------------------ restore --
def restore_snapshot(settings: Settings, client: VectorEngine, container: ContainerClient, name: str) -> int:
    """Replace the collections with the snapshot ``name``; returns points restored (-1: server snapshot)."""
    info = next((s for s in list_snapshots(container) if s.name == name), None)
    if info is None:
        raise LookupError(f"no snapshot named {name!r} in {container.container_name}")
    if info.kind == "edge":
        if not isinstance(client, EdgeEngine):
            raise RuntimeError(
                f"{name} is the embedded engine's storage: restore it into an embedded store (no QDRANT_URL); "
                "to move it to a server, restore it embedded, then run python -m rag_core.operations.migrate"
            )
        with tempfile.TemporaryFile() as tmp:
            container.download_blob(info.blobs[0]).readinto(tmp)
            tmp.seek(0)
            names = client.import_store(tmp)
        return sum(client.count(n, exact=True).count for n in names)
    if info.kind == "archive":
        with tempfile.TemporaryFile() as tmp:
            container.download_blob(info.blobs[0]).readinto(tmp)
            tmp.seek(0)
            return import_archive(client, tmp)
    if not settings.qdrant_url:
        raise RuntimeError(f"{name} is a Qdrant server snapshot: restore it with QDRANT_URL set")
    with _server(settings) as http:
        for blob in info.blobs:
            collection = blob.split("/", 1)[1].removesuffix(SERVER_SUFFIX)
            with tempfile.TemporaryFile() as tmp:
                container.download_blob(blob).readinto(tmp)
                tmp.seek(0)
                response = http.post(
                    f"/collections/{collection}/snapshots/upload",
                    params={"priority": "snapshot", "wait": "true"},
                    files={"snapshot": (blob.rsplit("/", 1)[1], tmp)},
                )
                response.raise_for_status()
    return -1


def _vector_config(raw: dict[str, Any]) -> dict[str, qm.VectorParams] | qm.VectorParams:
    if "size" in raw:  # one unnamed vector
        return qm.VectorParams.model_validate(raw)
    return {k: qm.VectorParams.model_validate(v) for k, v in raw.items()}


def import_archive(client: VectorEngine, archive: IO[bytes]) -> int:
    """Recreate every collection in a JSON Lines archive with exactly its points."""
    count = 0
    batch: list[qm.PointStruct] = []
    collection: str | None = None

    def flush() -> None:
        if batch and collection:
            client.upsert(collection, batch, wait=True)
            batch.clear()

    with gzip.GzipFile(fileobj=archive, mode="rb") as gz:
        for raw_line in gz:
            obj = json.loads(raw_line)
            if obj["kind"] == "snapshot":
                if obj.get("format") != FORMAT:
                    raise ValueError(f"unknown archive format {obj.get('format')!r}")
            elif obj["kind"] == "collection":
                flush()
                collection = obj["name"]
                if client.collection_exists(collection):
                    client.delete_collection(collection)
                client.create_collection(collection, vectors_config=_vector_config(obj["vectors"]))
                with warnings.catch_warnings():  # local mode ignores payload indexes and warns
                    warnings.simplefilter("ignore", UserWarning)
                    for key, schema in obj["payload_schema"].items():
                        client.create_payload_index(collection, key, qm.PayloadSchemaType(schema))
            else:
                batch.append(qm.PointStruct(id=obj["id"], vector=obj["vector"], payload=obj["payload"]))
                count += 1
                if len(batch) >= _PAGE:
                    flush()
        flush()
    return count


# ---------------------------------------------------------------------- CLI --
def main(argv: list[str] | None = None) -> int:
    from rag_core.base.settings import get_settings
    from rag_core.base.storage import Storage
    from rag_core.knowledge.engine import open_engine

    parser = argparse.ArgumentParser(prog="python -m rag_core.operations.backup", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("create", help="snapshot both collections now (applies SNAPSHOT_RETENTION)")
    sub.add_parser("list", help="list stored snapshots, oldest first")
    restore = sub.add_parser("restore", help="replace the collections with a stored snapshot (stop ingest first)")
    restore.add_argument("--snapshot", required=True, help="a name shown by `list`")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    settings = get_settings()
    container = Storage(settings).container(settings.snapshots_container)
    if args.command == "list":
        for info in list_snapshots(container):
            print(f"{info.name}\t{info.kind}\t{info.size}")
        return 0
    client = open_engine(settings)
    if args.command == "create":
        print(create_snapshot(settings, client, container).name)
        return 0
    restored = restore_snapshot(settings, client, container, args.snapshot)
    print(f"restored {args.snapshot}" + (f": {restored} points" if restored >= 0 else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
