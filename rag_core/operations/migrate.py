"""Move a knowledge base between the embedded engine and a Qdrant server, without re-embedding.

    python -m rag_core.operations.migrate --to-url https://qdrant.example:6333 [--api-key KEY]
    python -m rag_core.operations.migrate --from-url https://qdrant.example:6333
    python -m rag_core.operations.migrate --upgrade-local
    python -m rag_core.operations.migrate --tenant-ids

``--to-url`` copies both collections of the embedded store under ``QDRANT_PATH``
to the server; ``--from-url`` copies them from the server into the embedded
store; ``--upgrade-local`` moves a store written by qdrant-client's local mode
(the previous default) into the embedded edge store (the app also does this by
itself on first start); ``--tenant-ids`` moves brand-owned points written before
video ids were scoped by brand to their (brand, video id) keys, in the store the
settings name (embedded or ``QDRANT_URL``), without re-embedding: vectors and
payloads copied, old ids deleted, counts verified (see
:mod:`rag_core.knowledge.rekey`; the app also does this by itself on first open).

Every point moves with its id, vectors and payload; each collection is created
on the target with the source's vector configuration and payload indexes.
Copying is resumable: after each page the next scroll offset is recorded in a
checkpoint file beside the embedded store, and a repeated run continues from it
(writes are idempotent upserts, so a page repeated after a crash changes
nothing). At the end every collection is verified: point counts, then every id,
payload and vector compared page by page (vectors to float32 precision: a
cosine collection re-normalises what it stores). Stop writes to the source
while it runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from qdrant_client import QdrantClient
from qdrant_client import models as qm
from tqdm import tqdm

from rag_core.base.settings import Settings
from rag_core.knowledge.engine import VectorEngine, copy_points, create_like, legacy_local_collections, open_engine
from rag_core.knowledge.rekey import RekeyReport, rekey_brand_points
from rag_core.knowledge.store import KnowledgeStore

log = logging.getLogger(__name__)

PAGE = 256
VECTOR_TOLERANCE = 1e-6


@dataclass
class MigrationReport:
    copied: dict[str, int] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # collection → (source, target)
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and all(a == b for a, b in self.counts.values())


class Checkpoint:
    """Where each collection's copy got to (JSON file; absent = start from the beginning)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.state: dict[str, dict[str, object]] = {}
        if path is not None and path.exists():
            self.state = json.loads(path.read_text())

    def get(self, collection: str) -> dict[str, object] | None:
        return self.state.get(collection)

    def put(self, collection: str, **values: object) -> None:
        self.state[collection] = values
        if self.path is not None:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.state))
            tmp.replace(self.path)  # atomic: a crash leaves the old or the new checkpoint

    def clear(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def migrate(
    source: VectorEngine,
    target: VectorEngine,
    collections: list[str],
    *,
    checkpoint: Checkpoint | None = None,
    page: int = PAGE,
    progress: bool = False,
) -> MigrationReport:
    """Copy ``collections`` from ``source`` to ``target`` (resuming from ``checkpoint``), then verify."""
    checkpoint = checkpoint or Checkpoint(None)
    report = MigrationReport()
    for name in collections:
        total = source.count(name, exact=True).count
        state = checkpoint.get(name)
        resuming = state is not None and target.collection_exists(name)
        if state is not None and state.get("done") and resuming:
            report.copied[name] = 0
            continue
        if not resuming:
            create_like(source, target, name)
            checkpoint.put(name, offset=None, copied=0, done=False)
            state = checkpoint.get(name)
        assert state is not None
        start = state.get("offset")
        copied = int(state.get("copied") or 0)  # type: ignore[call-overload]
        bar = tqdm(total=total, initial=copied, desc=name, unit="pt", disable=not progress, file=sys.stderr)

        def done_page(n: int, offset: qm.ExtendedPointId | None, *, name: str = name, bar: tqdm = bar) -> None:
            nonlocal copied
            copied += n
            bar.update(n)
            checkpoint.put(name, offset=offset, copied=copied, done=offset is None)

        report.copied[name] = copy_points(
            source, target, name, page=page, start=start if isinstance(start, int | str) else None, on_page=done_page
        )
        bar.close()
    for name in collections:
        report.counts[name] = (source.count(name, exact=True).count, target.count(name, exact=True).count)
        report.mismatches += compare(source, target, name, page=page)
    if report.ok:
        checkpoint.clear()
    return report


def compare(source: VectorEngine, target: VectorEngine, name: str, *, page: int = PAGE) -> list[str]:
    """Every point of ``source``'s collection found in ``target`` with the same payload and vectors."""
    problems: list[str] = []
    offset: qm.ExtendedPointId | None = None
    while True:
        points, offset = source.scroll(name, limit=page, offset=offset, with_payload=True, with_vectors=True)
        found = {str(p.id): p for p in target.retrieve(name, [p.id for p in points], with_vectors=True)}
        for p in points:
            other = found.get(str(p.id))
            if other is None:
                problems.append(f"{name}/{p.id}: missing")
            elif other.payload != p.payload:
                problems.append(f"{name}/{p.id}: payload differs")
            elif not same_vectors(p.vector, other.vector):
                problems.append(f"{name}/{p.id}: vector differs")
        if offset is None:
            return problems


def same_vectors(a: object, b: object) -> bool:
    """Equal vectors, named or not, to float32 precision."""
    a = a or {}
    b = b or {}
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_vectors(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(
            math.isclose(float(x), float(y), abs_tol=VECTOR_TOLERANCE)  # type: ignore[arg-type]
            for x, y in zip(a, b, strict=True)
        )
    return a == b


def checkpoint_path(settings: Settings, url: str, direction: str) -> Path:
    """One checkpoint per embedded store, server and direction."""
    tag = hashlib.sha256(f"{direction}:{url}".encode()).hexdigest()[:12]
    return settings.qdrant_path / f"migrate-{tag}.json"


def main(argv: list[str] | None = None) -> int:
    from rag_core.base.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m rag_core.operations.migrate", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--to-url", help="copy the embedded store (QDRANT_PATH) to this Qdrant server")
    where.add_argument("--from-url", help="copy this Qdrant server's collections into the embedded store")
    where.add_argument("--upgrade-local", action="store_true", help="move a qdrant-client local-mode store to edge")
    where.add_argument(
        "--tenant-ids", action="store_true", help="re-key brand-owned points to (brand, video id) ids, no re-embedding"
    )
    parser.add_argument("--api-key", help="the server's API key (default: QDRANT_API_KEY)")
    parser.add_argument("--restart", action="store_true", help="ignore a checkpoint and copy from the beginning")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    settings = get_settings()
    if args.tenant_ids:
        return _tenant_ids(settings)
    path = settings.qdrant_path.resolve()
    collections = [settings.qdrant_collection, settings.streams_collection]
    embedded = settings.model_copy(update={"qdrant_url": None})
    if args.upgrade_local:
        if not legacy_local_collections(path):
            print(f"nothing to upgrade: no local-mode collections under {path}")
            return 0
        edge = open_engine(embedded)  # opening the embedded store upgrades it
        print("upgraded: " + ", ".join(f"{c} {edge.count(c, exact=True).count} points" for c in collections))
        return 0
    edge = open_engine(embedded)
    url = args.to_url or args.from_url
    key = args.api_key or (settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None)
    server = QdrantClient(url=url, api_key=key, timeout=settings.qdrant_timeout_sec)
    source, target = (edge, server) if args.to_url else (server, edge)
    marker = checkpoint_path(settings, url, "to" if args.to_url else "from")
    if args.restart:
        marker.unlink(missing_ok=True)
    try:
        report = migrate(source, target, collections, checkpoint=Checkpoint(marker), progress=not args.no_progress)
    finally:
        server.close()
    for name, (want, got) in report.counts.items():
        print(f"{name}: {got} of {want} points on the target, {report.copied[name]} copied in this run")
    for problem in report.mismatches[:20]:
        print(f"MISMATCH {problem}")
    print("verified: every id, payload and vector matches" if report.ok else "verification FAILED")
    return 0 if report.ok else 1


def _tenant_ids(settings: Settings) -> int:
    """Re-key the store the settings name (idempotent: a repeated run moves what is left)."""
    from rag_core.embeddings import build_embedder

    store = KnowledgeStore(open_engine(settings), build_embedder(settings), settings)
    missing = [c for c in (store.phases, store.streams) if not store.client.collection_exists(c)]
    if missing:
        print(f"nothing to re-key: no collection {', '.join(missing)}")
        return 0
    report: RekeyReport = rekey_brand_points(store)
    for name, moved in report.moved.items():
        before, after = report.branded[name]
        resumed = report.copied_before[name]
        print(f"{name}: {moved} moved in this run ({resumed} already copied by an interrupted run); "
              f"brand-owned points {before} before, {after} after; {report.left[name]} left at an old id")  # fmt: skip
    print("verified: every brand-owned point is at its brand-scoped id" if report.ok else "verification FAILED")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
