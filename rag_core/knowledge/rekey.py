"""Re-key a store written before video ids were scoped by brand, without re-embedding.

Before brand-scoped keys, every point's id came from the video id alone
(``uuid5(video_id:phase_index)``, ``uuid5(stream:video_id)``), so two brands could
not hold the same video id. Now a brand's points are keyed by (brand, video id)
(:func:`rag_core.knowledge.store.point_id`); unscoped points keep their ids. This
moves every brand-owned point still at its old id to its new one: vectors and
payload copied as they are, then the old point deleted.

It is idempotent and resumable without a checkpoint: what is left to do is
exactly the brand-owned points whose id is not the one their payload calls for,
so a repeated run (after a crash, or on a store already done) moves only those.
A point whose new id already holds a point (a copy written just before a crash)
is not copied again; only its old id is removed. Afterwards the number of
brand-owned points is compared with the number before (less those pairs), and no
point may be left at an old id; only then is the store marked current (the meta record's
``id_scheme``), which is what :class:`~rag_core.knowledge.knowledge_base.KnowledgeBase`
checks on open to run this by itself once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from qdrant_client import models as qm

from rag_core.knowledge.store import KnowledgeStore, point_id, stream_id

log = logging.getLogger(__name__)

PAGE = 256
_BRANDED = qm.Filter(must_not=[qm.IsEmptyCondition(is_empty=qm.PayloadField(key="brand_id"))])

_KEY_FIELDS = ["kind", "video_id", "phase_index", "brand_id"]  # what a point's key is made of
KeyOf = Callable[[dict[str, Any]], str | None]


def _phase_key(payload: dict[str, Any]) -> str | None:
    if payload.get("kind") != "phase" or payload.get("phase_index") is None:
        return None
    return point_id(str(payload["video_id"]), int(payload["phase_index"]), int(payload["brand_id"]))


def _stream_key(payload: dict[str, Any]) -> str | None:
    if payload.get("kind") != "stream":
        return None
    return stream_id(str(payload["video_id"]), int(payload["brand_id"]))


@dataclass
class RekeyReport:
    """What one run did, per collection."""

    moved: dict[str, int] = field(default_factory=dict)  # old points moved to their new id in this run
    # of those, how many had their copy already (written by a run that crashed before deleting them)
    copied_before: dict[str, int] = field(default_factory=dict)
    branded: dict[str, tuple[int, int]] = field(default_factory=dict)  # brand-owned points before, after
    left: dict[str, int] = field(default_factory=dict)  # brand-owned points still at an old id

    @property
    def ok(self) -> bool:
        """Nothing left at an old id, and no point lost: after = before less the old points whose
        copy already existed (the one pair counted twice before)."""
        counts = all(after == before - self.copied_before[name] for name, (before, after) in self.branded.items())
        return counts and not any(self.left.values())


def _branded_count(store: KnowledgeStore, collection: str) -> int:
    return store.client.count(collection, count_filter=_BRANDED, exact=True).count


def _move(store: KnowledgeStore, collection: str, key_of: KeyOf, page: int) -> tuple[int, int]:
    """Move every brand-owned point of ``collection`` that is not at its key; returns the points
    moved and how many of them already had their copy."""
    client = store.client
    moved = copied_before = 0
    offset: qm.ExtendedPointId | None = None
    while True:
        points, offset = client.scroll(
            collection, scroll_filter=_BRANDED, limit=page, offset=offset, with_payload=_KEY_FIELDS, with_vectors=False
        )
        wrong = [(p, key) for p in points if (key := key_of(p.payload or {})) is not None and key != str(p.id)]
        if wrong:  # only these are read whole (vectors, full payload)
            present = {str(r.id) for r in client.retrieve(collection, [k for _, k in wrong], with_payload=False)}
            moving = [(p.id, key) for p, key in wrong if key not in present]
            whole = {str(r.id): r for r in client.retrieve(collection, [i for i, _ in moving], with_vectors=True)}
            copies = [
                qm.PointStruct(id=key, vector=whole[str(old)].vector or {}, payload=whole[str(old)].payload)
                for old, key in moving
            ]
            if copies:
                client.upsert(collection, copies, wait=True)
            client.delete(collection, qm.PointIdsList(points=[p.id for p, _ in wrong]), wait=True)
            moved += len(wrong)
            copied_before += len(wrong) - len(copies)
        if offset is None:
            return moved, copied_before


def _left_behind(store: KnowledgeStore, collection: str, key_of: KeyOf) -> int:
    """Brand-owned points not at their key (payloads only, no vectors)."""
    return sum(
        1
        for p in store.scroll(collection, _BRANDED, _KEY_FIELDS)
        if (key := key_of(p.payload or {})) is not None and key != str(p.id)
    )


def rekey_brand_points(store: KnowledgeStore, *, page: int = PAGE) -> RekeyReport:
    """Move brand-owned points to their brand-scoped ids, verify, and mark the store current."""
    report = RekeyReport()
    for collection, key_of in ((store.phases, _phase_key), (store.streams, _stream_key)):
        before = _branded_count(store, collection)
        report.moved[collection], report.copied_before[collection] = _move(store, collection, key_of, page)
        report.branded[collection] = (before, _branded_count(store, collection))
        report.left[collection] = _left_behind(store, collection, key_of)
    if report.ok:
        store.mark_keys_current()
    details = {"moved": report.moved, "branded": report.branded, "left": report.left, "copied": report.copied_before}
    if not report.ok:
        log.error("re-keying brand-owned points did not verify; the next open tries again", extra=details)
    elif any(report.moved.values()):
        log.info("re-keyed brand-owned points to brand-scoped ids", extra=details)
    return report
