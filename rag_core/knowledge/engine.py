"""The vector engine behind the knowledge base: one interface, two engines.

* **Embedded** (no ``QDRANT_URL``, the zero-setup default): :class:`EdgeEngine`,
  Qdrant's own Rust engine in-process (``qdrant-edge-py``). One ``EdgeShard``
  per collection under ``QDRANT_PATH/edge/<collection>``: real segments,
  payload indexes, HNSW after :meth:`EdgeEngine.optimize`, facets, a write-ahead
  log. Its reads and writes are safe to run from several threads at once (the
  shard locks internally), so nothing above it has to serialise calls.

  New points are searched by brute force until ``optimize()`` builds their HNSW
  graph (100k unindexed 384-d points: 28 ms a search, 3 ms once indexed). The
  optimizer runs synchronously and, measured, holds the shard: reads and writes
  that arrive meanwhile wait until it is done (seconds at 20k points, minutes at
  100k on two cores). So it runs only where a pause is acceptable: at the end of a
  backfill (``KnowledgeBase.optimize``) and from a background thread once the
  engine has had no call for ``OPTIMIZE_IDLE_SEC``, each time only when at least
  ``OPTIMIZE_MIN_UNINDEXED`` vectors are unindexed (below that, brute force is a
  few milliseconds). Optimizing rewrites segments, never points: it changes no
  answer, so writes stay idempotent and cached reads stay valid.
* **Server** (``QDRANT_URL``): ``qdrant_client.QdrantClient`` as it is.

:class:`VectorEngine` is the interface: the subset of ``QdrantClient``'s
methods the knowledge base uses, with the same names, arguments and
``qdrant_client.models`` types. ``QdrantClient`` satisfies it as it stands (its
local mode is the stand-in for a server in tests), and ``EdgeEngine``
translates those types to and from the edge API, so store, search, analytics,
feedback, backup and deletion are engine-agnostic.

A knowledge base written by the previous default, qdrant-client's local mode
(``QDRANT_PATH/collection/<name>/storage.sqlite``), is found by
:func:`legacy_local_collections` and moved into the edge store on first start
by :func:`upgrade_local_mode` (vectors and payloads copied, counts checked,
the old folder kept as ``collection.migrated``).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import fcntl
import io
import itertools
import json
import logging
import shutil
import tarfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from importlib.metadata import version as package_version
from pathlib import Path
from typing import IO, Any, Protocol, TypeAlias

import qdrant_edge as qe
from qdrant_client import QdrantClient
from qdrant_client import models as qm
from qdrant_client.http import models as hm

from rag_core.base.settings import Settings

log = logging.getLogger(__name__)

EDGE_DIR = "edge"
LEGACY_DIR = "collection"  # where qdrant-client's local mode keeps its collections
_NO_VECTOR = "_none"  # an edge shard needs a vector; vector-less collections get an unused sparse one
_SIDECAR = "collection.json"
OPTIMIZE_MIN_UNINDEXED = 20_000  # unindexed vectors worth building HNSW for (brute force is ~3 ms below)
OPTIMIZE_IDLE_SEC = 60.0  # no engine call for this long: the background optimizer may hold the shards
CHANGE_LOG = 4096  # recent writes whose point ids are kept for changes_since()
STORE_FORMAT = 1  # of export_store archives
STORE_MANIFEST = "edge-store.json"

WithPayload: TypeAlias = bool | list[str] | qm.PayloadSelectorInclude | qm.PayloadSelectorExclude
WithVectors: TypeAlias = bool | list[str]
Selector: TypeAlias = list[qm.ExtendedPointId] | qm.Filter | qm.PointIdsList | qm.FilterSelector


class VectorEngine(Protocol):
    """What the knowledge base asks of a vector engine (``QdrantClient``'s names and types)."""

    def get_collections(self) -> qm.CollectionsResponse: ...
    def collection_exists(self, collection_name: str) -> bool: ...
    def get_collection(self, collection_name: str) -> qm.CollectionInfo: ...
    def create_collection(
        self, collection_name: str, vectors_config: qm.VectorParams | Mapping[str, qm.VectorParams] | None = None
    ) -> bool: ...
    def delete_collection(self, collection_name: str) -> bool: ...
    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: qm.PayloadSchemaType | None = None
    ) -> qm.UpdateResult: ...
    def upsert(self, collection_name: str, points: Sequence[qm.PointStruct], wait: bool = True) -> qm.UpdateResult: ...
    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[qm.ExtendedPointId],
        with_payload: WithPayload = True,
        with_vectors: WithVectors = False,
    ) -> list[qm.Record]: ...
    def scroll(
        self,
        collection_name: str,
        scroll_filter: qm.Filter | None = None,
        limit: int = 10,
        *,
        offset: qm.ExtendedPointId | None = None,
        with_payload: WithPayload = True,
        with_vectors: WithVectors = False,
    ) -> tuple[list[qm.Record], qm.ExtendedPointId | None]: ...
    def count(
        self, collection_name: str, count_filter: qm.Filter | None = None, exact: bool = True
    ) -> qm.CountResult: ...
    def facet(
        self,
        collection_name: str,
        key: str,
        facet_filter: qm.Filter | None = None,
        limit: int = 10,
        exact: bool = False,
    ) -> qm.FacetResponse: ...
    def delete(self, collection_name: str, points_selector: Selector, wait: bool = True) -> qm.UpdateResult: ...
    def set_payload(
        self, collection_name: str, payload: dict[str, Any], points: Selector, *, wait: bool = True
    ) -> qm.UpdateResult: ...
    def batch_update_points(
        self, collection_name: str, update_operations: Sequence[qm.UpdateOperation], wait: bool = True
    ) -> list[qm.UpdateResult]: ...
    def query_points(
        self,
        collection_name: str,
        query: list[float] | qm.FormulaQuery | None = None,
        using: str | None = None,
        *,
        prefetch: qm.Prefetch | list[qm.Prefetch] | None = None,
        query_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: WithPayload = True,
        with_vectors: WithVectors = False,
        score_threshold: float | None = None,
    ) -> hm.QueryResponse: ...
    def close(self) -> None: ...


# ----------------------------------------------------------- qm -> edge types --
_SCHEMAS = {
    qm.PayloadSchemaType.KEYWORD: qe.PayloadSchemaType.Keyword,
    qm.PayloadSchemaType.INTEGER: qe.PayloadSchemaType.Integer,
    qm.PayloadSchemaType.FLOAT: qe.PayloadSchemaType.Float,
    qm.PayloadSchemaType.BOOL: qe.PayloadSchemaType.Bool,
    qm.PayloadSchemaType.GEO: qe.PayloadSchemaType.Geo,
    qm.PayloadSchemaType.TEXT: qe.PayloadSchemaType.Text,
    qm.PayloadSchemaType.DATETIME: qe.PayloadSchemaType.Datetime,
    qm.PayloadSchemaType.UUID: qe.PayloadSchemaType.Uuid,
}
_SCHEMAS_BACK = {v: k for k, v in _SCHEMAS.items()}
_DISTANCES = {
    qm.Distance.COSINE: qe.Distance.Cosine,
    qm.Distance.DOT: qe.Distance.Dot,
    qm.Distance.EUCLID: qe.Distance.Euclid,
    qm.Distance.MANHATTAN: qe.Distance.Manhattan,
}


def edge_filter(flt: qm.Filter | None) -> qe.Filter | None:
    """A ``qdrant_client`` filter as an edge filter (must / should / must_not, nested)."""
    if flt is None:
        return None

    def conditions(items: Any) -> list[Any] | None:
        if items is None:
            return None
        listed = items if isinstance(items, list) else [items]
        return [_edge_condition(c) for c in listed]

    min_should = None
    if flt.min_should is not None:
        min_should = qe.MinShould(
            conditions=[_edge_condition(c) for c in flt.min_should.conditions], min_count=flt.min_should.min_count
        )
    return qe.Filter(
        must=conditions(flt.must),
        should=conditions(flt.should),
        must_not=conditions(flt.must_not),
        min_should=min_should,
    )


def _edge_condition(cond: Any) -> Any:
    if isinstance(cond, qm.Filter):
        return edge_filter(cond)
    if isinstance(cond, qm.HasIdCondition):
        return qe.HasIdCondition(point_ids={_id_in(i) for i in cond.has_id})
    if isinstance(cond, qm.IsEmptyCondition):
        return qe.IsEmptyCondition(key=cond.is_empty.key)
    if isinstance(cond, qm.IsNullCondition):
        return qe.IsNullCondition(key=cond.is_null.key)
    if isinstance(cond, qm.FieldCondition):
        rng: qe.RangeFloat | qe.RangeDateTime | None = None
        if isinstance(cond.range, qm.Range):
            rng = qe.RangeFloat(gte=cond.range.gte, gt=cond.range.gt, lte=cond.range.lte, lt=cond.range.lt)
        elif cond.range is not None:
            r = cond.range
            rng = qe.RangeDateTime(gte=_iso(r.gte), gt=_iso(r.gt), lte=_iso(r.lte), lt=_iso(r.lt))
        count = None
        if cond.values_count is not None:
            v = cond.values_count
            count = qe.ValuesCount(lt=v.lt, gt=v.gt, lte=v.lte, gte=v.gte)
        return qe.FieldCondition(
            key=cond.key,
            match=_edge_match(cond.match),
            range=rng,
            values_count=count,
            is_empty=cond.is_empty,
            is_null=cond.is_null,
        )
    raise NotImplementedError(f"edge engine: unsupported filter condition {type(cond).__name__}")


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def _edge_match(match: Any) -> Any:
    if match is None:
        return None
    if isinstance(match, qm.MatchValue):
        return qe.MatchValue(match.value)
    if isinstance(match, qm.MatchAny):
        return qe.MatchAny(match.any)
    if isinstance(match, qm.MatchExcept):
        return qe.MatchExcept(match.except_)
    if isinstance(match, qm.MatchText):
        return qe.MatchText(match.text)
    if isinstance(match, qm.MatchPhrase):
        return qe.MatchPhrase(match.phrase)
    raise NotImplementedError(f"edge engine: unsupported match {type(match).__name__}")


def _edge_query(query: list[float] | qm.FormulaQuery | qm.NearestQuery | None, using: str | None) -> Any:
    if query is None:
        return None
    if isinstance(query, qm.FormulaQuery):
        return qe.Formula(_edge_expression(query.formula), defaults=query.defaults or None)
    if isinstance(query, qm.NearestQuery):
        query = query.nearest  # type: ignore[assignment]
    if isinstance(query, list):
        return qe.Query.Nearest([float(x) for x in query], using=using)
    raise NotImplementedError(f"edge engine: unsupported query {type(query).__name__}")


def _edge_prefetch(prefetch: qm.Prefetch) -> Any:
    nested = prefetch.prefetch
    listed = None if nested is None else nested if isinstance(nested, list) else [nested]
    return qe.Prefetch(
        limit=prefetch.limit if prefetch.limit is not None else 10,
        query=_edge_query(prefetch.query, prefetch.using),  # type: ignore[arg-type]
        prefetches=None if listed is None else [_edge_prefetch(p) for p in listed],
        filter=edge_filter(prefetch.filter),
        score_threshold=prefetch.score_threshold,
    )


def _edge_expression(expr: Any) -> Any:
    """A scoring-formula expression of qdrant-client as the edge engine's (the operators
    the ranking formula uses: constants, payload variables and ``$score``, sum, product,
    division, natural log, negation)."""
    if isinstance(expr, bool):
        raise NotImplementedError("edge engine: a boolean is not a formula term")
    if isinstance(expr, int | float):
        return qe.Expression.Constant(float(expr))
    if isinstance(expr, str):
        return qe.Expression.Variable(expr)
    if isinstance(expr, qm.SumExpression):
        return qe.Expression.Sum([_edge_expression(e) for e in expr.sum])
    if isinstance(expr, qm.MultExpression):
        return qe.Expression.Mult([_edge_expression(e) for e in expr.mult])
    if isinstance(expr, qm.DivExpression):
        div = expr.div
        return qe.Expression.Div(
            _edge_expression(div.left), _edge_expression(div.right), by_zero_default=div.by_zero_default
        )
    if isinstance(expr, qm.LnExpression):
        return qe.Expression.Ln(_edge_expression(expr.ln))
    if isinstance(expr, qm.NegExpression):
        return qe.Expression.Neg(_edge_expression(expr.neg))
    raise NotImplementedError(f"edge engine: unsupported formula expression {type(expr).__name__}")


def _id_in(pid: qm.ExtendedPointId) -> int | str:
    return pid if isinstance(pid, int) else str(pid)


def _id_out(pid: Any) -> qm.ExtendedPointId:
    """Ids as qdrant-client returns them: ints, and UUIDs as their canonical string."""
    return pid if isinstance(pid, int) else str(pid)


def _payload_selector(with_payload: WithPayload) -> Any:
    if isinstance(with_payload, qm.PayloadSelectorInclude):
        return qe.PayloadSelector.Include(list(with_payload.include))
    if isinstance(with_payload, qm.PayloadSelectorExclude):
        return qe.PayloadSelector.Exclude(list(with_payload.exclude))
    return with_payload


def _vector_out(vector: Any) -> Any:
    if isinstance(vector, dict):
        return {k: v for k, v in vector.items() if k != _NO_VECTOR}
    return vector


def _ids_of(selector: Selector) -> list[qm.ExtendedPointId] | None:
    if isinstance(selector, qm.PointIdsList):
        return list(selector.points)
    if isinstance(selector, list):
        return selector
    return None


def _edge_filter_of(selector: Selector) -> qe.Filter:
    flt = selector.filter if isinstance(selector, qm.FilterSelector) else selector
    edge = edge_filter(flt) if isinstance(flt, qm.Filter) else None
    if edge is None:
        raise TypeError(f"not a point selector: {selector!r}")
    return edge


_DONE = qm.UpdateResult(operation_id=0, status=qm.UpdateStatus.COMPLETED)


class EdgeEngine:
    """Qdrant's engine in-process: one edge shard per collection under ``root``.

    Every method takes and returns ``qdrant_client.models`` types, the way
    ``QdrantClient`` does. Updates are applied synchronously (``wait`` is always
    true) and logged to each shard's write-ahead log before they return.
    """

    def __init__(
        self,
        root: Path,
        *,
        optimize_when_idle: float | None = OPTIMIZE_IDLE_SEC,
        optimize_min_unindexed: int = OPTIMIZE_MIN_UNINDEXED,
        indexing_threshold_kb: int | None = None,
    ) -> None:
        """``optimize_when_idle``: seconds without a call after which a background thread
        optimizes collections with at least ``optimize_min_unindexed`` unindexed vectors (None:
        never in the background). ``indexing_threshold_kb``: the size under which a new
        collection's segments stay unindexed (None: the engine's default, ~6k 384-d vectors;
        tests lower it to index a few points)."""
        self.root = root
        self.optimize_min_unindexed = optimize_min_unindexed
        self._indexing_threshold_kb = indexing_threshold_kb
        self.root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock = threading.Lock()  # guards the dict of open shards, not the shards
        self._optimizing = threading.Lock()  # one optimizer at a time; close waits for it
        self._held = _hold_store(root)
        self._write_counter = itertools.count(1)
        self.writes = 0  # bumped by every change: readers can tell whether anything changed
        # (version, collection, ids written or None for "any"), newest last: what changed since a version
        self._log: collections.deque[tuple[int, str, frozenset[str] | None]] = collections.deque(maxlen=CHANGE_LOG)
        self._log_lock = threading.Lock()
        self._gate = threading.Condition()  # writes in flight, and a pause that holds new ones off
        self._writers = 0
        self._paused = False
        self._last_call = time.monotonic()
        self._closed = threading.Event()
        self._idle_optimizer: threading.Thread | None = None
        if optimize_when_idle is not None:
            self._idle_optimizer = threading.Thread(
                target=self._optimize_when_idle, args=(optimize_when_idle,), name="edge-optimizer", daemon=True
            )
            self._idle_optimizer.start()

    def _changed(self, collection_name: str, ids: Sequence[qm.ExtendedPointId] | None = None) -> None:
        """Count a write (after it is applied) and log which points of which collection it touched."""
        with self._log_lock:
            self.writes = next(self._write_counter)
            self._log.append((self.writes, collection_name, None if ids is None else frozenset(map(str, ids))))

    def changes_since(self, collection_name: str, version: int) -> set[str] | None:
        """Ids of the points of ``collection_name`` written after ``version`` (a value of
        :attr:`writes` read before the caller's last full read), or None when that is not known
        (a write by filter, a new or deleted collection, or more writes than the log keeps).
        Lets a reader refresh what it derived from a collection by re-reading only those points."""
        with self._log_lock:
            log = list(self._log)
        if version < self.writes and (not log or log[0][0] > version + 1):
            return None  # writes after ``version`` fell out of the log
        changed: set[str] = set()
        for when, name, ids in log:
            if when > version and name == collection_name:
                if ids is None:
                    return None
                changed |= ids
        return changed

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every write: waits while the store is paused (:meth:`paused`)."""
        with self._gate:
            while self._paused:
                self._gate.wait()
            self._writers += 1
        try:
            yield
        finally:
            with self._gate:
                self._writers -= 1
                self._gate.notify_all()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold every write (and the optimizer) off for the block, once those in flight are
        done, and flush the open shards first: the store's files stay as they are until the
        block ends. Reads go on."""
        with self._gate:
            while self._paused:
                self._gate.wait()
            self._paused = True
            while self._writers:
                self._gate.wait()
        try:
            # After the writers: one of them may be deleting a collection, which waits for the optimizer.
            with self._optimizing:
                self.flush()
                yield
        finally:
            with self._gate:
                self._paused = False
                self._gate.notify_all()

    def _update(self, collection_name: str, operation: Any, ids: Sequence[qm.ExtendedPointId] | None = None) -> None:
        with self._writing():
            self._shard(collection_name).update(operation)
            self._changed(collection_name, ids)

    # -------------------------------------------------------------- collections --
    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid collection name {name!r}")
        return self.root / name

    def _shard(self, name: str) -> qe.EdgeShard:
        self._last_call = time.monotonic()  # every call goes through here: the idle clock
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        with self._lock:
            if name not in self._shards:
                if not (self._dir(name) / _SIDECAR).exists():
                    raise ValueError(f"Collection {name} not found")
                self._shards[name] = qe.EdgeShard.load(str(self._dir(name) / "shard"))
            return self._shards[name]

    def get_collections(self) -> qm.CollectionsResponse:
        names = sorted(p.parent.name for p in self.root.glob(f"*/{_SIDECAR}"))
        return qm.CollectionsResponse(collections=[qm.CollectionDescription(name=n) for n in names])

    def collection_exists(self, collection_name: str) -> bool:
        return (self._dir(collection_name) / _SIDECAR).exists()

    def create_collection(
        self, collection_name: str, vectors_config: qm.VectorParams | Mapping[str, qm.VectorParams] | None = None
    ) -> bool:
        """A new shard. ``vectors_config`` as qdrant-client takes it: one unnamed vector,
        named vectors, or none (``{}``: a collection of payload-only records)."""
        with self._writing():
            return self._create_collection(collection_name, vectors_config)

    def _create_collection(
        self, collection_name: str, vectors_config: qm.VectorParams | Mapping[str, qm.VectorParams] | None
    ) -> bool:
        folder = self._dir(collection_name)
        if self.collection_exists(collection_name):
            raise ValueError(f"Collection {collection_name} already exists")
        named = {"": vectors_config} if isinstance(vectors_config, qm.VectorParams) else dict(vectors_config or {})
        params = {name: qe.EdgeVectorParams(size=p.size, distance=_DISTANCES[p.distance]) for name, p in named.items()}
        optimizers = None
        if self._indexing_threshold_kb is not None:
            optimizers = qe.EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb)
        if not params:
            config = qe.EdgeConfig(sparse_vectors={_NO_VECTOR: qe.EdgeSparseVectorParams()}, optimizers=optimizers)
        elif "" in params:
            config = qe.EdgeConfig(vectors=params[""], optimizers=optimizers)
        else:
            config = qe.EdgeConfig(vectors=params, optimizers=optimizers)
        if folder.exists():
            shutil.rmtree(folder)  # a half-created collection from an interrupted start
        folder.mkdir(parents=True)
        shard = qe.EdgeShard.create(str(folder / "shard"), config)
        # What qdrant-client would report for the collection ("" = one unnamed vector).
        sidecar = {"vectors": {n: p.model_dump(mode="json", exclude_none=True) for n, p in named.items()}}
        (folder / _SIDECAR).write_text(json.dumps(sidecar))
        with self._lock:
            self._shards[collection_name] = shard
        self._changed(collection_name)
        return True

    def delete_collection(self, collection_name: str) -> bool:
        with self._writing():
            return self._delete_collection(collection_name)

    def _delete_collection(self, collection_name: str) -> bool:
        with self._optimizing, self._lock:  # never close a shard under the optimizer
            shard = self._shards.pop(collection_name, None)
        if shard is not None:
            shard.close()
        folder = self._dir(collection_name)
        if not folder.exists():
            return False
        shutil.rmtree(folder)
        self._changed(collection_name)
        return True

    def _vectors_config(self, collection_name: str) -> dict[str, qm.VectorParams]:
        raw = json.loads((self._dir(collection_name) / _SIDECAR).read_text()).get("vectors") or {}
        return {n: qm.VectorParams.model_validate(p) for n, p in raw.items()}

    def get_collection(self, collection_name: str) -> qm.CollectionInfo:
        """The collection's vectors, payload indexes and counts in qdrant-client's shape."""
        info = self._shard(collection_name).info()
        named = self._vectors_config(collection_name)
        vectors: qm.VectorParams | dict[str, qm.VectorParams] = named.get("", named)
        return qm.CollectionInfo(
            status=qm.CollectionStatus.GREEN,
            optimizer_status=qm.OptimizersStatusOneOf.OK,
            segments_count=info.segments_count,
            points_count=info.points_count,
            indexed_vectors_count=info.indexed_vectors_count,
            config=qm.CollectionConfig(
                params=qm.CollectionParams(vectors=vectors),
                hnsw_config=qm.HnswConfig(m=16, ef_construct=100, full_scan_threshold=10_000),
                optimizer_config=qm.OptimizersConfig(default_segment_number=0, flush_interval_sec=5),
            ),
            payload_schema={
                key: qm.PayloadIndexInfo(data_type=_SCHEMAS_BACK[idx.data_type], points=idx.points)
                for key, idx in info.payload_schema.items()
            },
        )

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: qm.PayloadSchemaType | None = None
    ) -> qm.UpdateResult:
        if field_schema is None:
            raise ValueError("edge engine: a payload index needs a schema type")
        self._update(collection_name, qe.UpdateOperation.create_field_index(field_name, _SCHEMAS[field_schema]))
        return _DONE

    # -------------------------------------------------------------------- writes --
    def upsert(self, collection_name: str, points: Sequence[qm.PointStruct], wait: bool = True) -> qm.UpdateResult:
        self._update(
            collection_name, qe.UpdateOperation.upsert_points([_edge_point(p) for p in points]), [p.id for p in points]
        )
        return _DONE

    def delete(self, collection_name: str, points_selector: Selector, wait: bool = True) -> qm.UpdateResult:
        ids = _ids_of(points_selector)
        if ids is not None:
            op = qe.UpdateOperation.delete_points([_id_in(i) for i in ids])
        else:
            op = qe.UpdateOperation.delete_points_by_filter(_edge_filter_of(points_selector))
        self._update(collection_name, op, ids)
        return _DONE

    def set_payload(
        self, collection_name: str, payload: dict[str, Any], points: Selector, *, wait: bool = True
    ) -> qm.UpdateResult:
        self._update(collection_name, _set_payload_op(payload, points), _ids_of(points))
        return _DONE

    def batch_update_points(
        self, collection_name: str, update_operations: Sequence[qm.UpdateOperation], wait: bool = True
    ) -> list[qm.UpdateResult]:
        """Applied in order; each is its own shard update (the edge API has no batch)."""
        for op in update_operations:
            if isinstance(op, qm.SetPayloadOperation):
                sp = op.set_payload
                selector: Selector = (
                    list(sp.points) if sp.points is not None else sp.filter if sp.filter is not None else []
                )
                self._update(collection_name, _set_payload_op(sp.payload, selector), _ids_of(selector))
            elif isinstance(op, qm.UpsertOperation) and isinstance(op.upsert, qm.PointsList):
                points = op.upsert.points
                self._update(
                    collection_name,
                    qe.UpdateOperation.upsert_points([_edge_point(p) for p in points]),
                    [p.id for p in points],
                )
            elif isinstance(op, qm.DeleteOperation):
                self.delete(collection_name, op.delete)  # type: ignore[arg-type]
            else:
                raise NotImplementedError(f"edge engine: unsupported batch operation {type(op).__name__}")
        return [_DONE for _ in update_operations]

    # --------------------------------------------------------------------- reads --
    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[qm.ExtendedPointId],
        with_payload: WithPayload = True,
        with_vectors: WithVectors = False,
    ) -> list[qm.Record]:
        found = self._shard(collection_name).retrieve(
            [_id_in(i) for i in ids], _payload_selector(with_payload), with_vectors
        )
        return [_record(r, with_vectors) for r in found]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: qm.Filter | None = None,
        limit: int = 10,
        *,
        offset: qm.ExtendedPointId | None = None,
        with_payload: WithPayload = True,
        with_vectors: WithVectors = False,
    ) -> tuple[list[qm.Record], qm.ExtendedPointId | None]:
        request = qe.ScrollRequest(
            offset=None if offset is None else _id_in(offset),
            limit=limit,
            filter=edge_filter(scroll_filter),
            with_payload=_payload_selector(with_payload),
            with_vector=with_vectors,
        )
        records, next_offset = self._shard(collection_name).scroll(request)
        return [_record(r, with_vectors) for r in records], None if next_offset is None else _id_out(next_offset)

    def count(self, collection_name: str, count_filter: qm.Filter | None = None, exact: bool = True) -> qm.CountResult:
        return qm.CountResult(
            count=self._shard(collection_name).count(qe.CountRequest(exact=exact, filter=edge_filter(count_filter)))
        )

    def facet(
        self,
        collection_name: str,
        key: str,
        facet_filter: qm.Filter | None = None,
        limit: int = 10,
        exact: bool = False,
    ) -> qm.FacetResponse:
        """Value counts of an indexed keyword/integer/bool field, most frequent first."""
        response = self._shard(collection_name).facet(
            qe.FacetRequest(key=key, limit=limit, exact=exact, filter=edge_filter(facet_filter))
        )
        return qm.FacetResponse(hits=[qm.FacetValueHit(value=h.value, count=h.count) for h in response.hits])

    def query_points(
        self,
        collection_name: str,
        query: list[float] | qm.FormulaQuery | None = None,
        using: str | None = None,
        *,
        prefetch: qm.Prefetch | list[qm.Prefetch] | None = None,
        query_filter: qm.Filter | None = None,
        limit: int = 10,
        offset: int | None = None,
        with_payload: WithPayload = True,
        with_vectors: WithVectors = False,
        score_threshold: float | None = None,
    ) -> hm.QueryResponse:
        """Nearest neighbours of a dense ``query`` vector (``using`` names it) under the filter,
        or a :class:`~qdrant_client.models.FormulaQuery` re-scoring what ``prefetch`` found."""
        prefetches = None if prefetch is None else prefetch if isinstance(prefetch, list) else [prefetch]
        request = qe.QueryRequest(
            limit=limit,
            offset=offset,
            query=_edge_query(query, using),
            prefetches=None if prefetches is None else [_edge_prefetch(p) for p in prefetches],
            filter=edge_filter(query_filter),
            with_payload=_payload_selector(with_payload),
            with_vector=with_vectors,
            score_threshold=score_threshold,
        )
        points = self._shard(collection_name).query(request)
        return hm.QueryResponse(
            points=[
                qm.ScoredPoint.model_construct(  # the engine's own values: validating them costs ~3 ms a search
                    id=_id_out(p.id),
                    version=p.version,
                    score=p.score,
                    payload=p.payload,
                    vector=_vector_out(p.vector) if with_vectors else None,
                )
                for p in points
            ]
        )

    # ------------------------------------------------------------------ upkeep --
    def unindexed(self, collection_name: str) -> int:
        """Dense vectors of the collection not yet in an HNSW graph (searched by brute force)."""
        named = self._vectors_config(collection_name)
        if not named:
            return 0
        info = self._shard(collection_name).info()
        return max(0, info.points_count * len(named) - info.indexed_vectors_count)

    def optimize(self, collection_name: str, *, min_unindexed: int = 0) -> bool:
        """Merge segments and build the HNSW graphs, when at least ``min_unindexed`` vectors
        are unindexed. Blocking, and the shard's reads and writes wait for it (module
        docstring). True when it ran and changed segments."""
        with self._optimizing:
            if self._closed.is_set() or self.unindexed(collection_name) < max(min_unindexed, 1):
                return False
            started = time.monotonic()
            changed = self._shard(collection_name).optimize()
            log.info(
                "edge collection optimized",
                extra={"collection": collection_name, "seconds": round(time.monotonic() - started, 1)},
            )
            return changed

    def optimize_all(self, *, min_unindexed: int | None = None) -> list[str]:
        """Optimize every collection with at least ``min_unindexed`` (default: the engine's
        ``optimize_min_unindexed``) unindexed vectors; returns the names of those optimized."""
        if min_unindexed is None:
            min_unindexed = self.optimize_min_unindexed
        return [
            d.name
            for d in self.get_collections().collections
            if not self._closed.is_set() and self.optimize(d.name, min_unindexed=min_unindexed)
        ]

    def _optimize_when_idle(self, idle_sec: float) -> None:
        """Background thread: after ``idle_sec`` without a call, optimize what needs it."""
        while not self._closed.wait(min(idle_sec / 4, 15.0)):
            if time.monotonic() - self._last_call < idle_sec:
                continue
            try:
                self.optimize_all()
            except Exception:  # a failed optimization leaves the segments as they were
                log.exception("background optimization of the edge store failed")
            self._last_call = time.monotonic()  # checked again only after the next idle period

    # ---------------------------------------------------------------- archives --
    def export_store(self, names: Sequence[str], out: IO[bytes]) -> None:
        """Write the named collections' folders (segments, payload indexes, HNSW graphs, the
        write-ahead log) as a gzipped tar to ``out``, with writes paused for the whole copy:
        a consistent image of the store, restorable by :meth:`import_store` without
        re-embedding or re-indexing."""
        manifest = {"format": STORE_FORMAT, "qdrant_edge": _edge_version(), "collections": list(names)}
        with self.paused(), tarfile.open(fileobj=out, mode="w:gz") as tar:
            data = json.dumps(manifest).encode()
            info = tarfile.TarInfo(STORE_MANIFEST)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for name in names:
                if not self.collection_exists(name):
                    raise ValueError(f"Collection {name} not found")
                tar.add(self._dir(name), arcname=name)

    def import_store(self, archive: IO[bytes]) -> list[str]:
        """Replace the collections of an :meth:`export_store` archive with its content (writes
        paused meanwhile; the shards reopen on their next use). Returns the collections."""
        with tarfile.open(fileobj=archive, mode="r:gz") as tar:
            manifest_file = tar.extractfile(STORE_MANIFEST)
            if manifest_file is None:
                raise ValueError("not an edge store archive (no manifest)")
            manifest = json.loads(manifest_file.read())
            made_by = manifest.get("qdrant_edge")
            if manifest.get("format") != STORE_FORMAT or _minor(made_by) != _minor(_edge_version()):
                raise ValueError(
                    f"edge store archive of qdrant-edge {made_by} (format {manifest.get('format')}); this is "
                    f"{_edge_version()}: restore it with that version, or restore a JSON Lines archive"
                )
            names = [str(n) for n in manifest["collections"]]
            for name in names:
                self._dir(name)  # raises on a name that is not one folder under the store
            members = [m for m in tar.getmembers() if m.name != STORE_MANIFEST]
            if any(m.name.split("/", 1)[0] not in names for m in members):
                raise ValueError("edge store archive holds files outside its collections")
            with self.paused(), self._lock:
                for name in names:
                    shard = self._shards.pop(name, None)
                    if shard is not None:
                        shard.close()
                    if self._dir(name).exists():
                        shutil.rmtree(self._dir(name))
                tar.extractall(self.root, members=members, filter="data")
        for name in names:
            self._changed(name)
        return names

    def flush(self) -> None:
        for shard in list(self._shards.values()):
            shard.flush()

    def close(self) -> None:
        self._closed.set()
        with self._optimizing, self._lock:  # an optimization under way finishes first
            shards, self._shards = self._shards, {}
        for shard in shards.values():
            shard.flush()
            shard.close()
        if not self._held.closed:
            self._held.close()  # releases the store lock


def _edge_version() -> str:
    return package_version("qdrant-edge-py")


def _minor(version: object) -> str:
    """``major.minor`` of a version: segment files are read back by the same minor release."""
    return ".".join(str(version).split(".")[:2])


class StoreLockedError(RuntimeError):
    """Another process has the embedded store open."""


def _hold_store(root: Path) -> IO[bytes]:
    """Lock the store for this process. Each shard's write-ahead log is locked by the engine as
    well, but only once that shard is opened; one lock for the whole store makes a second
    process (a CLI, a second worker) fail at once, before it opens anything."""
    handle = (root / ".lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise StoreLockedError(
            f"embedded Qdrant store {root} is already accessed by another instance of the app or a CLI; "
            "stop it, or run against a Qdrant server (QDRANT_URL)"
        ) from None
    return handle


def _edge_point(point: qm.PointStruct) -> qe.Point:
    vector = point.vector
    if isinstance(vector, dict):
        edge_vector: Any = {k: _floats(v) for k, v in vector.items() if isinstance(v, list)}
    elif isinstance(vector, list):
        edge_vector = _floats(vector)
    else:
        raise NotImplementedError(f"edge engine: unsupported vector {type(vector).__name__}")
    return qe.Point(_id_in(point.id), edge_vector, point.payload)


def _floats(vector: list[Any]) -> list[float]:
    """A dense vector as plain floats (numpy scalars are not accepted by the edge API)."""
    return [float(x) for x in vector]


def _set_payload_op(payload: dict[str, Any], points: Selector) -> Any:
    ids = _ids_of(points)
    if ids is not None:
        return qe.UpdateOperation.set_payload([_id_in(i) for i in ids], payload)
    return qe.UpdateOperation.set_payload_by_filter(_edge_filter_of(points), payload)


def _record(record: Any, with_vectors: WithVectors) -> qm.Record:
    """A record in qdrant-client's type, unvalidated: the engine's own values (a scroll of 10k
    streams spent 0.2 s validating them)."""
    return qm.Record.model_construct(
        id=_id_out(record.id),
        payload=record.payload,
        vector=_vector_out(record.vector) if with_vectors else None,
    )


# ------------------------------------------------------------------ factory --
_engines: dict[Path, EdgeEngine] = {}
_engines_lock = threading.Lock()


def open_engine(settings: Settings) -> VectorEngine:
    """The engine the settings name: a client for the server at ``QDRANT_URL``, else the
    process-wide edge engine for ``QDRANT_PATH`` (upgrading a local-mode store first)."""
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=settings.qdrant_timeout_sec)
    path = settings.qdrant_path.resolve()
    with _engines_lock:
        engine = _engines.get(path)
        if engine is None:
            engine = EdgeEngine(path / EDGE_DIR)
            if legacy_local_collections(path):
                upgrade_local_mode(path, engine)
            _engines[path] = engine
        return engine


def engine_is_thread_safe(engine: object) -> bool:
    """False only for qdrant-client's local mode (pure Python, one caller at a time)."""
    from qdrant_client.local.qdrant_local import QdrantLocal

    return not isinstance(getattr(engine, "_client", None), QdrantLocal)


@atexit.register
def _close_all() -> None:
    """Flush and close the edge shards before interpreter shutdown. A store whose folder is
    already gone (a temporary one, removed by its owner) has nothing left to keep."""
    for path in list(_engines):
        if path.exists():
            close_local(path)


def close_local(path: Path) -> None:
    """Close the edge engine of ``path`` (restores and tests reopen the folder afterwards)."""
    with _engines_lock:
        engine = _engines.pop(path.resolve(), None)
    if engine is not None:
        engine.close()


# ------------------------------------------------------------------ upgrade --
def legacy_local_collections(path: Path) -> list[str]:
    """Collections a qdrant-client local mode store under ``path`` holds (none if upgraded)."""
    folder = path / LEGACY_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "storage.sqlite").exists())


def create_like(source: VectorEngine, target: VectorEngine, name: str) -> None:
    """Create collection ``name`` in ``target`` with the vectors and payload indexes it has in
    ``source`` (replacing what ``target`` held under that name)."""
    info = source.get_collection(name)
    vectors = info.config.params.vectors
    if target.collection_exists(name):
        target.delete_collection(name)
    target.create_collection(name, vectors_config=vectors if vectors is not None else {})
    with warnings.catch_warnings():  # qdrant-client's local mode keeps no indexes and says so
        warnings.simplefilter("ignore", UserWarning)
        for key, index in info.payload_schema.items():
            if index.data_type is not None:
                target.create_payload_index(name, key, qm.PayloadSchemaType(index.data_type))


def copy_points(
    source: VectorEngine,
    target: VectorEngine,
    name: str,
    *,
    page: int = 256,
    start: qm.ExtendedPointId | None = None,
    on_page: Callable[[int, qm.ExtendedPointId | None], None] | None = None,
) -> int:
    """Copy every point of ``name`` (id, vectors, payload) from ``source`` into ``target``, page by
    page in id order from ``start``; ``on_page(copied, next_offset)`` runs after each page is
    written, so a caller can record where to resume. Upserts are idempotent: repeating a page
    after a crash changes nothing. Returns points copied."""
    copied = 0
    offset = start
    while True:
        points, offset = source.scroll(name, limit=page, offset=offset, with_payload=True, with_vectors=True)
        if points:
            target.upsert(name, [qm.PointStruct(id=p.id, vector=p.vector or {}, payload=p.payload) for p in points])
            copied += len(points)
        if on_page is not None:
            on_page(len(points), offset)
        if offset is None:
            return copied


def copy_collection(source: VectorEngine, target: VectorEngine, name: str, *, page: int = 256) -> int:
    """A fresh copy of one collection (config, indexes, points) in ``target``; returns points copied."""
    create_like(source, target, name)
    return copy_points(source, target, name, page=page)


def upgrade_local_mode(path: Path, engine: EdgeEngine) -> dict[str, int]:
    """Move every collection of the local-mode store under ``path`` into ``engine``.

    Each collection is copied, then its point count compared; only when all match is
    the old folder renamed to ``collection.migrated`` (kept, not deleted: the way back).
    A failure leaves the old store untouched, so the next start tries again.
    """
    names = legacy_local_collections(path)
    legacy = QdrantClient(path=str(path))
    try:
        copied = {name: copy_collection(legacy, engine, name) for name in names}
        for name in names:
            want = legacy.count(name, exact=True).count
            got = engine.count(name, exact=True).count
            if want != got:
                raise RuntimeError(f"upgrade of {name!r}: {got} points copied of {want}")
    finally:
        legacy.close()
    engine.flush()
    target = path / f"{LEGACY_DIR}.migrated"
    if target.exists():
        target = path / f"{LEGACY_DIR}.migrated-{uuid.uuid4().hex[:8]}"
    (path / LEGACY_DIR).rename(target)
    log.info("upgraded qdrant local mode store to the edge engine", extra={"copied": copied, "kept": str(target)})
    return copied
