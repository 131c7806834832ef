"""The vector-engine contract: every operation the knowledge base uses behaves the same on the
embedded edge engine and on qdrant-client (its local mode stands in for a server here).

Each test runs once per engine on the same data and asserts the answer itself, so an engine
that differs from the other fails on its own.
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient
from qdrant_client import models as qm

from rag_core.base.settings import load_settings
from rag_core.context import AppContext
from rag_core.knowledge.engine import EdgeEngine, VectorEngine, copy_collection
from rag_core.knowledge.knowledge_base import KnowledgeBase

PHASES = "phases"
STREAMS = "streams"
DIM = 8
LIVERS = ("aoi", "kenta", "mio")


def _vector(rng: random.Random) -> list[float]:
    return [rng.uniform(-1, 1) for _ in range(DIM)]


def _points() -> list[qm.PointStruct]:
    rng = random.Random(7)
    return [
        qm.PointStruct(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"p{i}")),
            vector={"dense": _vector(rng)},
            payload={
                "video_id": f"v{i // 3}",
                "phase_index": i % 3,
                "liver_id": LIVERS[i % 3],
                "phase_type": "idle" if i % 4 == 0 else "demo",
                "gmv": float(i * 100),
                "brand_id": 1 if i < 20 else 2,
                "tags": ["a", "b"] if i % 2 else ["c"],
                "nested": {"k": [1, 2]},
            },
        )
        for i in range(30)
    ]


@pytest.fixture(params=["edge", "client-local"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorEngine]:
    impl: VectorEngine = EdgeEngine(tmp_path / "edge") if request.param == "edge" else QdrantClient(":memory:")
    impl.create_collection(PHASES, vectors_config={"dense": qm.VectorParams(size=DIM, distance=qm.Distance.COSINE)})
    impl.create_collection(STREAMS, vectors_config={})
    for field, schema in {
        "liver_id": qm.PayloadSchemaType.KEYWORD,
        "phase_type": qm.PayloadSchemaType.KEYWORD,
        "video_id": qm.PayloadSchemaType.KEYWORD,
        "gmv": qm.PayloadSchemaType.FLOAT,
        "brand_id": qm.PayloadSchemaType.INTEGER,
    }.items():
        impl.create_payload_index(PHASES, field, schema)
    impl.upsert(PHASES, _points(), wait=True)
    yield impl
    impl.close()


def _by_id() -> dict[str, qm.PointStruct]:
    return {str(p.id): p for p in _points()}


def _dense(point: qm.PointStruct | qm.Record) -> list[float]:
    vector = point.vector
    assert isinstance(vector, dict)
    dense = vector["dense"]
    assert isinstance(dense, list)
    return [float(x) for x in dense]  # type: ignore[arg-type]


def _ids(records: list[qm.Record] | list[qm.ScoredPoint]) -> set[str]:
    return {str(r.id) for r in records}


def _expected(pred: object) -> set[str]:
    return {pid for pid, p in _by_id().items() if pred(p.payload)}  # type: ignore[operator]


def test_collections(engine: VectorEngine) -> None:
    assert engine.collection_exists(PHASES) and engine.collection_exists(STREAMS)
    assert not engine.collection_exists("nope")
    assert {c.name for c in engine.get_collections().collections} >= {PHASES, STREAMS}
    vectors = engine.get_collection(PHASES).config.params.vectors
    assert isinstance(vectors, dict) and vectors["dense"].size == DIM
    assert vectors["dense"].distance == qm.Distance.COSINE
    assert engine.get_collection(STREAMS).config.params.vectors in ({}, None)
    assert engine.delete_collection(STREAMS)
    assert not engine.collection_exists(STREAMS)


def test_retrieve_returns_vectors_and_payloads_exactly(engine: VectorEngine) -> None:
    want = _by_id()
    some = list(want)[:5]
    missing = str(uuid.uuid4())
    found = engine.retrieve(PHASES, [*some, missing], with_payload=True, with_vectors=True)
    assert _ids(found) == set(some)
    for r in found:
        assert r.payload == want[str(r.id)].payload
        assert _dense(r) == pytest.approx(_unit(_dense(want[str(r.id)])), abs=1e-6)
    only = engine.retrieve(PHASES, some[:1], with_payload=["gmv"])
    assert only[0].payload == {"gmv": want[some[0]].payload["gmv"]}  # type: ignore[index]
    assert only[0].vector is None


def _unit(v: list[float]) -> list[float]:
    """Cosine collections store vectors normalised (both engines do)."""
    norm = sum(x * x for x in v) ** 0.5
    return [x / norm for x in v]


FILTERS: list[tuple[str, qm.Filter, object]] = [
    (
        "match value",
        qm.Filter(must=[qm.FieldCondition(key="liver_id", match=qm.MatchValue(value="aoi"))]),
        lambda p: p["liver_id"] == "aoi",
    ),
    (
        "match any",
        qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchAny(any=["v1", "v4"]))]),
        lambda p: p["video_id"] in ("v1", "v4"),
    ),
    (
        "match except",
        qm.Filter(must=[qm.FieldCondition(key="phase_type", match=qm.MatchExcept(**{"except": ["idle"]}))]),
        lambda p: p["phase_type"] != "idle",
    ),
    (
        "range and integer match",
        qm.Filter(
            must=[
                qm.FieldCondition(key="gmv", range=qm.Range(gte=500, lt=2500)),
                qm.FieldCondition(key="brand_id", match=qm.MatchValue(value=1)),
            ]
        ),
        lambda p: 500 <= p["gmv"] < 2500 and p["brand_id"] == 1,
    ),
    (
        "must_not",
        qm.Filter(must_not=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value="v2"))]),
        lambda p: p["video_id"] != "v2",
    ),
    (
        "array field",
        qm.Filter(must=[qm.FieldCondition(key="tags", match=qm.MatchValue(value="b"))]),
        lambda p: "b" in p["tags"],
    ),
    (
        "nested filter and should",
        qm.Filter(
            should=[
                qm.Filter(must=[qm.FieldCondition(key="liver_id", match=qm.MatchValue(value="mio"))]),
                qm.FieldCondition(key="gmv", range=qm.Range(lte=200)),
            ]
        ),
        lambda p: p["liver_id"] == "mio" or p["gmv"] <= 200,
    ),
]


@pytest.mark.parametrize(("name", "flt", "pred"), FILTERS, ids=[f[0] for f in FILTERS])
def test_filters_scroll_count_and_query_agree(engine: VectorEngine, name: str, flt: qm.Filter, pred: object) -> None:
    expected = _expected(pred)
    assert engine.count(PHASES, count_filter=flt, exact=True).count == len(expected)
    scrolled: list[qm.Record] = []
    offset = None
    while True:  # small pages: the offset hand-over is part of the contract
        page, offset = engine.scroll(PHASES, scroll_filter=flt, limit=4, offset=offset, with_payload=True)
        scrolled += page
        if offset is None:
            break
    assert _ids(scrolled) == expected and len(scrolled) == len(expected)
    hits = engine.query_points(PHASES, query=[0.1] * DIM, using="dense", query_filter=flt, limit=100).points
    assert _ids(hits) == expected


def test_query_ranks_by_cosine_like_brute_force(engine: VectorEngine) -> None:
    query = _vector(random.Random(99))
    want = _by_id()

    def cosine(v: list[float]) -> float:
        a, b = _unit(v), _unit(query)
        return sum(x * y for x, y in zip(a, b, strict=True))

    ranked = sorted(want, key=lambda pid: -cosine(_dense(want[pid])))
    hits = engine.query_points(PHASES, query=query, using="dense", limit=5, with_payload=True).points
    assert [str(h.id) for h in hits] == ranked[:5]
    for h in hits:
        assert h.score == pytest.approx(cosine(_dense(want[str(h.id)])), abs=1e-5)
        assert h.payload == want[str(h.id)].payload


def test_formula_rescores_the_prefetched_candidates(engine: VectorEngine) -> None:
    """The outcome formula's shape (search.outcome_formula): similarity plus log GMV plus a
    payload number with a default, over a dense prefetch; checked against brute force."""
    query = _vector(random.Random(5))
    want = _by_id()
    formula = qm.FormulaQuery(
        formula=qm.SumExpression(
            sum=[
                qm.MultExpression(mult=[0.7, "$score"]),
                qm.MultExpression(
                    mult=[
                        qm.DivExpression(div=qm.DivParams(left=0.2, right=math.log1p(2900.0))),
                        qm.LnExpression(ln=qm.SumExpression(sum=[1.0, "gmv"])),
                    ]
                ),
                qm.MultExpression(mult=[0.1, "quality_score"]),
            ]
        ),
        defaults={"quality_score": 0.5},
    )
    prefetch = qm.Prefetch(query=query, using="dense", limit=12)
    hits = engine.query_points(PHASES, query=formula, prefetch=prefetch, limit=5, with_payload=True).points

    def cosine(v: list[float]) -> float:
        a, b = _unit(v), _unit(query)
        return sum(x * y for x, y in zip(a, b, strict=True))

    pool = sorted(want, key=lambda pid: -cosine(_dense(want[pid])))[:12]
    payloads = {pid: want[pid].payload or {} for pid in pool}
    expected = {
        pid: 0.7 * cosine(_dense(want[pid])) + 0.2 * math.log1p(payloads[pid]["gmv"]) / math.log1p(2900.0) + 0.05
        for pid in pool
    }
    ranked = sorted(pool, key=lambda pid: -expected[pid])
    assert [str(h.id) for h in hits] == ranked[:5]
    for h in hits:
        assert h.score == pytest.approx(expected[str(h.id)], abs=1e-5)


def test_writes(engine: VectorEngine) -> None:
    ids: list[qm.ExtendedPointId] = list(_by_id())
    engine.set_payload(PHASES, {"gmv": 1.5, "extra": "x"}, points=ids[:2], wait=True)
    engine.batch_update_points(
        PHASES,
        [qm.SetPayloadOperation(set_payload=qm.SetPayload(payload={"quality_score": 0.9}, points=[ids[2]]))],
        wait=True,
    )
    got = [r.payload or {} for r in sorted(engine.retrieve(PHASES, ids[:3]), key=lambda r: ids.index(str(r.id)))]
    assert got[0]["gmv"] == 1.5 and got[1]["extra"] == "x" and got[0]["liver_id"] == "aoi"
    assert got[2]["quality_score"] == 0.9 and got[2]["gmv"] == 200.0  # merged, not replaced
    engine.delete(PHASES, qm.PointIdsList(points=ids[:2]), wait=True)
    by_video = qm.Filter(must=[qm.FieldCondition(key="video_id", match=qm.MatchValue(value="v3"))])
    engine.delete(PHASES, qm.FilterSelector(filter=by_video), wait=True)
    assert engine.count(PHASES, exact=True).count == 30 - 2 - 3
    assert engine.count(PHASES, count_filter=by_video, exact=True).count == 0
    stream = str(uuid.uuid4())
    engine.upsert(STREAMS, [qm.PointStruct(id=stream, vector={}, payload={"kind": "stream", "gmv": 3})])
    engine.set_payload(STREAMS, {"gmv": 4}, points=[stream])
    assert engine.retrieve(STREAMS, [stream])[0].payload == {"kind": "stream", "gmv": 4}


def test_facet_counts_values(engine: VectorEngine) -> None:
    brand = qm.Filter(must=[qm.FieldCondition(key="brand_id", match=qm.MatchValue(value=1))])
    hits = engine.facet(PHASES, "liver_id", facet_filter=brand, limit=10, exact=True).hits
    want: dict[str, int] = {}
    for p in _by_id().values():
        if p.payload and p.payload["brand_id"] == 1:
            want[p.payload["liver_id"]] = want.get(p.payload["liver_id"], 0) + 1
    assert {str(h.value): h.count for h in hits} == want


def test_payload_indexes_are_reported(engine: VectorEngine) -> None:
    schema = engine.get_collection(PHASES).payload_schema
    if isinstance(engine, QdrantClient):
        pytest.skip("qdrant-client's local mode keeps no payload indexes (a server does)")
    assert schema["liver_id"].data_type == qm.PayloadSchemaType.KEYWORD
    assert schema["gmv"].data_type == qm.PayloadSchemaType.FLOAT


def test_copy_collection_between_engines(engine: VectorEngine, tmp_path: Path) -> None:
    """What migrate and the local-mode upgrade rely on: ids and payloads exact, vectors equal to
    float32 precision (a cosine collection re-normalises what it stores: the last bit may move)."""
    other: VectorEngine = QdrantClient(":memory:") if isinstance(engine, EdgeEngine) else EdgeEngine(tmp_path / "o")
    assert copy_collection(engine, other, PHASES, page=7) == 30
    a = {str(r.id): r for r in engine.retrieve(PHASES, list(_by_id()), with_payload=True, with_vectors=True)}
    b = {str(r.id): r for r in other.retrieve(PHASES, list(_by_id()), with_payload=True, with_vectors=True)}
    assert a.keys() == b.keys() and len(a) == 30
    for pid, record in a.items():
        assert record.payload == b[pid].payload
        assert _dense(record) == pytest.approx(_dense(b[pid]), abs=1e-6)
    assert other.get_collection(PHASES).config.params.vectors == engine.get_collection(PHASES).config.params.vectors
    other.close()


def test_edge_engine_serves_threads_at_once(tmp_path: Path) -> None:
    """Readers and writers from several threads on one shard: no errors, nothing lost."""
    engine = EdgeEngine(tmp_path / "threads")
    engine.create_collection(PHASES, vectors_config={"dense": qm.VectorParams(size=DIM, distance=qm.Distance.COSINE)})
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rng = random.Random(worker)
        for batch in range(10):
            points = [
                qm.PointStruct(id=worker * 1000 + batch * 10 + i, vector={"dense": _vector(rng)}, payload={"w": worker})
                for i in range(10)
            ]
            engine.upsert(PHASES, points)
            engine.query_points(PHASES, query=_vector(rng), using="dense", limit=5)

    def run(worker: int) -> None:
        try:
            write(worker)
        except BaseException as exc:  # collected: a thread's failure must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert engine.count(PHASES, exact=True).count == 400
    one = qm.Filter(must=[qm.FieldCondition(key="w", match=qm.MatchValue(value=2))])
    assert engine.count(PHASES, count_filter=one, exact=True).count == 100
    engine.close()


@pytest.mark.parametrize(("kind", "concurrent"), [("edge", True), ("client-local", False)])
def test_context_locks_only_an_engine_that_is_not_thread_safe(tmp_path: Path, kind: str, concurrent: bool) -> None:
    """Two requests inside ``ctx.knowledge()`` at the same time: allowed on the edge engine,
    serialised on qdrant-client's local mode."""
    settings = load_settings(qdrant_path=tmp_path / "q", embedding_provider="local", azure_openai_endpoint=None)
    engine: VectorEngine = EdgeEngine(tmp_path / "q" / "edge") if kind == "edge" else QdrantClient(":memory:")
    ctx = AppContext(settings, kb=KnowledgeBase(settings, client=engine))
    both_inside = threading.Barrier(2, timeout=2)
    met: list[bool] = []

    def request() -> None:
        with ctx.knowledge():
            try:
                both_inside.wait()
                met.append(True)
            except threading.BrokenBarrierError:
                met.append(False)

    threads = [threading.Thread(target=request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(met) is concurrent
    engine.close()


def _indexable_engine(folder: Path, **options: object) -> EdgeEngine:
    """An edge engine whose segments are indexed from a few kilobytes, holding 3,000 points."""
    engine = EdgeEngine(folder, indexing_threshold_kb=10, **options)  # type: ignore[arg-type]
    engine.create_collection(PHASES, vectors_config={"dense": qm.VectorParams(size=DIM, distance=qm.Distance.COSINE)})
    engine.create_collection(STREAMS, vectors_config={})
    rng = random.Random(3)
    for start in range(0, 3000, 500):
        points = [
            qm.PointStruct(id=i, vector={"dense": _vector(rng)}, payload={"i": i}) for i in range(start, start + 500)
        ]
        engine.upsert(PHASES, points)
    return engine


def test_optimize_indexes_new_points_without_changing_answers(tmp_path: Path) -> None:
    engine = _indexable_engine(tmp_path / "opt", optimize_when_idle=None)
    probes = [_vector(random.Random(seed)) for seed in range(5)]

    def answers() -> list[list[str]]:
        return [
            [str(p.id) for p in engine.query_points(PHASES, query=v, using="dense", limit=3).points] for v in probes
        ]

    before = answers()
    assert engine.unindexed(PHASES) == 3000 and engine.unindexed(STREAMS) == 0
    assert engine.optimize(PHASES, min_unindexed=5000) is False  # under the threshold: left alone
    assert engine.optimize_all(min_unindexed=1000) == [PHASES]
    assert engine.unindexed(PHASES) == 0
    assert answers() == before
    assert engine.count(PHASES, exact=True).count == 3000
    engine.close()


def test_idle_engine_optimizes_in_the_background(tmp_path: Path) -> None:
    engine = _indexable_engine(tmp_path / "idle", optimize_when_idle=0.2, optimize_min_unindexed=1000)
    deadline = time.monotonic() + 60
    while engine.unindexed(PHASES) and time.monotonic() < deadline:
        time.sleep(0.5)  # longer than the idle time: each check is a call that restarts the idle clock
    assert engine.unindexed(PHASES) == 0
    engine.close()


def test_store_export_is_consistent_while_writes_go_on(tmp_path: Path) -> None:
    """Batches written while the store is archived: the archive holds whole batches, in
    order (writes wait for the copy), and restores into another store as a working shard."""
    engine = EdgeEngine(tmp_path / "live", optimize_when_idle=None)
    engine.create_collection(PHASES, vectors_config={"dense": qm.VectorParams(size=DIM, distance=qm.Distance.COSINE)})
    rng = random.Random(11)
    stop = threading.Event()
    written: list[int] = []

    def write() -> None:
        batch = 0
        while not stop.is_set() and batch < 400:
            points = [qm.PointStruct(id=batch * 10 + i, vector={"dense": _vector(rng)}) for i in range(10)]
            engine.upsert(PHASES, points)
            batch += 1
            written.append(batch)

    writer = threading.Thread(target=write)
    writer.start()
    while len(written) < 20:
        time.sleep(0.01)
    archive = tmp_path / "store.tar.gz"
    with archive.open("wb") as out:
        engine.export_store([PHASES], out)
    stop.set()
    writer.join()
    copy = EdgeEngine(tmp_path / "copy", optimize_when_idle=None)
    with archive.open("rb") as src:
        assert copy.import_store(src) == [PHASES]
    count = copy.count(PHASES, exact=True).count
    assert count % 10 == 0 and 200 <= count <= 10 * len(written)
    ids = set()
    offset: qm.ExtendedPointId | None = 0
    while offset is not None:
        page, offset = copy.scroll(PHASES, limit=1000, offset=offset, with_payload=False)
        ids |= {int(p.id) for p in page}  # type: ignore[arg-type]
    assert ids == set(range(count))  # the first batches, none missing
    copy.close()
    engine.close()
