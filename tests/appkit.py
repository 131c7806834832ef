"""Helpers for the app tests: an isolated AppContext on the session's Azurite, the function map,
real azure.functions trigger objects, and storage inspection."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from azure.functions.blob import InputStream
from azure.functions.queue import QueueMessage as TriggerMessage
from azure.storage.queue import QueueMessage
from PIL import Image

from functions.app import create_function_app
from rag_core.analysis.record import AnalysisRecord, parse_analysis
from rag_core.base.settings import Settings, load_settings
from rag_core.context import AppContext
from rag_core.embeddings import Embedder
from rag_core.embeddings.local import LocalE5Embedder
from rag_core.knowledge.knowledge_base import KnowledgeBase
from tests.azurite import Azurite

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def storage_names() -> dict[str, str]:
    """Container, queue and table names no other test uses."""
    tag = uuid.uuid4().hex[:10]
    return {
        "uploads_container": f"uploads-{tag}",
        "inbox_container": f"inbox-{tag}",
        "rejected_container": f"rejected-{tag}",
        "snapshots_container": f"snapshots-{tag}",
        "ingest_queue": f"jobs-{tag}",
        "jobs_table": f"jobs{tag}",
    }


def app_settings(azurite: Azurite, qdrant_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "qdrant_path": qdrant_path,
        "embedding_provider": "local",
        "sales_ocr_provider": "local",
        "azure_openai_endpoint": None,
        "storage_connection_string": azurite.connection_string,
        **storage_names(),
    }
    values.update(overrides)
    return load_settings(**values)


def app_context(settings: Settings, embedder: Embedder, kb: KnowledgeBase | None = None) -> AppContext:
    return AppContext(settings, kb=kb or KnowledgeBase(settings, embedder=embedder))


def function_map(ctx: AppContext) -> dict[str, Callable[..., Any]]:
    """The user functions of a Functions app bound to ``ctx``, by function name."""
    app = create_function_app(lambda: ctx)
    return {str(f.get_function_name()): f.get_user_function() for f in app.get_functions()}


def sample_records(count: int) -> list[AnalysisRecord]:
    paths = sorted(SAMPLES.glob("*.json"))[:count]
    return [parse_analysis(json.loads(p.read_text(encoding="utf-8"))) for p in paths]


def analysis(video_id: str, **overrides: Any) -> dict[str, Any]:
    """A small valid analysis in the new format."""
    data: dict[str, Any] = {
        "video_id": video_id,
        "liver_id": "liver_test",
        "liver_name": "テスト",
        "stream_date": "2026-05-01",
        "sales": {"gmv": 321000, "orders": 80, "cvr": 2.5, "viewers": 4000},
        "phases": [
            {
                "phase_index": 0,
                "phase_type": "opening",
                "start_sec": 0,
                "end_sec": 90,
                "speech_text": "こんばんは、今日は保湿クリームの特別セットを紹介します",
            },
            {
                "phase_index": 1,
                "phase_type": "price_explanation",
                "start_sec": 90,
                "end_sec": 300,
                "speech_text": "この保湿クリーム、今夜だけ二個で四千九百八十円、送料無料です",
            },
        ],
    }
    data.update(overrides)
    return data


def png(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(out, format="PNG")
    return out.getvalue()


def queue_message(msg: QueueMessage) -> TriggerMessage:
    """What the host hands the queue trigger for a message read from Azurite."""
    return TriggerMessage(id=msg.id, body=msg.content, dequeue_count=msg.dequeue_count)


def receive_all(ctx: AppContext, *, visibility_timeout: int = 1) -> list[QueueMessage]:
    queue = ctx.storage.queue(ctx.settings.ingest_queue)
    return list(queue.receive_messages(max_messages=32, visibility_timeout=visibility_timeout))


def run_queue(ctx: AppContext, functions: dict[str, Callable[..., Any]]) -> int:
    """Deliver every queued message to the queue trigger, deleting it on success (as the host does)."""
    queue = ctx.storage.queue(ctx.settings.ingest_queue)
    done = 0
    for msg in queue.receive_messages(max_messages=32, visibility_timeout=60):
        functions["ingest_job"](queue_message(msg))
        queue.delete_message(msg)
        done += 1
    return done


def input_stream(container: str, name: str, data: bytes, metadata: dict[str, str] | None = None) -> InputStream:
    return InputStream(data=data, name=f"{container}/{name}", length=len(data), metadata=metadata or {})


def storage_snapshot(ctx: AppContext) -> dict[str, Any]:
    """Everything the app may have written: blob names, queued message count, job ids."""
    s = ctx.settings
    props = ctx.storage.queue(s.ingest_queue).get_queue_properties()
    return {
        "blobs": sorted(b.name for b in ctx.storage.container(s.uploads_container).list_blobs()),
        "messages": props.approximate_message_count,
        "jobs": sorted(e["RowKey"] for e in ctx.storage.table(s.jobs_table).list_entities()),
    }


def error_of(response: Any) -> dict[str, Any]:
    """The ``error`` object of a JSON error response, checking the body has that shape only."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return dict(body["error"])


class RememberingEmbedder(Embedder):
    """The offline model with a memory: a text embedded once is not embedded again.

    Several test packages load the same 72 sample analyses (639 phase texts, about a minute
    of model time on 2 cores each); through this embedder only the first load pays. Tests
    that count embedding calls use ``local_embedder`` itself, never this one.
    """

    def __init__(self, model: LocalE5Embedder) -> None:
        super().__init__()
        self.model = model
        self.model_id, self.dimension = model.model_id, model.dimension
        self._seen: dict[tuple[str, bool], list[float]] = {}

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if (t, is_query) not in self._seen]
        if missing:
            fresh = self.model._embed(missing, is_query=is_query)
            self._seen.update({(t, is_query): v for t, v in zip(missing, fresh, strict=True)})
            self.usage.calls += 1
        return [self._seen[(t, is_query)] for t in texts]
