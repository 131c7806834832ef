"""The liver page's improvement suggestions, worded by an Azure OpenAI chat deployment when one is set.

The rules in :func:`rag_core.dashboard.views.suggestions` decide *what* to suggest and which figures
and phases it rests on; with ``AZURE_OPENAI_CHAT_DEPLOYMENT`` set, the chat model only rewrites each
suggestion's text in natural Japanese from the same contrasts. Its answer must fit a strict JSON
schema (one text per rule suggestion, by index); the evidence is always the rules' own, so every
suggestion still cites the phases and figures it rests on whatever the model writes.

Anything that goes wrong (no answer within ``CHAT_TIMEOUT_SEC``, an HTTP error, a refusal, an
answer off the schema) falls back to the rule text with a note saying so: the page never fails
and never waits on the model longer than the timeout. Answers are cached per input in-process,
so a page reload costs no second call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field, ValidationError

from rag_core.base.azure_openai import azure_openai_client
from rag_core.base.settings import Settings
from rag_core.knowledge.schemas import PhaseMixContrast

log = logging.getLogger(__name__)

CHAT_TIMEOUT_SEC = 12.0  # the page waits this long at most: no retry after it
MAX_TEXT_CHARS = 400
CACHE_SIZE = 256
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
_INSTRUCTIONS = """あなたはライブコマース配信のコンサルタントです。
ライバーの配信を上位ライバーと比べたルールベースの改善提案と、その根拠の数値が与えられます。
各提案を、ライバー本人に向けた具体的で自然な日本語（です・ます調、1〜3文）に書き直してください。
- 提案の内容・方向（増やす／減らす／時間をかける／再現する）は変えないこと。
- 根拠にある数値（割合・分数・GMV）とフェーズ（動画ID #番号）を本文でも示すこと。与えられていない数値は書かないこと。
- 提案は与えられた index ごとに1つずつ、全件返すこと。"""


class Suggestion(BaseModel):
    """An improvement suggestion and the figures and phases it rests on."""

    text: str
    evidence: list[str]
    written_by: Literal["rules", "azure_openai"] = "rules"


class WrittenSuggestions(BaseModel):
    """The suggestions the page shows, and why they are the rule text when a model was configured."""

    items: list[Suggestion]
    note: str | None = Field(None, description="set when the chat model was asked but its answer was not used")


class _Item(BaseModel):
    index: int
    text: str


class _Answer(BaseModel):
    suggestions: list[_Item]


def response_schema() -> dict[str, Any]:
    """The strict JSON schema of the answer: one rewritten text per rule suggestion, by index."""
    item = {
        "type": "object",
        "properties": {"index": {"type": "integer"}, "text": {"type": "string"}},
        "required": ["index", "text"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"suggestions": {"type": "array", "items": item}},
        "required": ["suggestions"],
        "additionalProperties": False,
    }


def request_messages(liver: str, rules: list[Suggestion], contrasts: list[PhaseMixContrast]) -> list[dict[str, str]]:
    """The chat messages: instructions, then the liver, the contrasts and the rule suggestions as JSON."""
    facts = {
        "liver": liver,
        "contrasts": [c.model_dump(exclude_none=True) for c in contrasts],
        "suggestions": [{"index": i, "text": s.text, "evidence": s.evidence} for i, s in enumerate(rules)],
    }
    return [
        {"role": "system", "content": _INSTRUCTIONS},
        {"role": "user", "content": json.dumps(facts, ensure_ascii=False)},
    ]


class AdviceResponseError(Exception):
    """The chat model answered, but not with what the schema and the rules ask for."""


def parse_answer(completion: Any, count: int) -> list[str]:
    """The rewritten texts in rule order, or AdviceResponseError."""
    if not completion.choices:
        raise AdviceResponseError("no choices")
    choice = completion.choices[0]
    if getattr(choice.message, "refusal", None):
        raise AdviceResponseError(f"refused: {choice.message.refusal}")
    if choice.finish_reason != "stop":
        raise AdviceResponseError(f"cut off (finish_reason={choice.finish_reason!r})")
    try:
        answer = _Answer.model_validate(json.loads(choice.message.content or ""))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise AdviceResponseError(f"not the JSON the schema asks for: {exc}") from None
    texts = {item.index: item.text.strip() for item in answer.suggestions}
    if sorted(texts) != list(range(count)) or len(answer.suggestions) != count:
        raise AdviceResponseError(f"answered indexes {sorted(texts)}, not one text for each of {count}")
    for index, text in texts.items():
        if not text or len(text) > MAX_TEXT_CHARS or not _JAPANESE.search(text):
            raise AdviceResponseError(f"suggestion {index} is empty, over {MAX_TEXT_CHARS} characters or not Japanese")
    return [texts[i] for i in range(count)]


_cache: OrderedDict[str, list[str]] = OrderedDict()
_cache_lock = threading.Lock()  # pages are served from a thread pool


def write_suggestions(
    settings: Settings,
    liver: str,
    rules: list[Suggestion],
    contrasts: list[PhaseMixContrast],
    *,
    http_client: httpx.Client | None = None,
) -> WrittenSuggestions:
    """The rule suggestions, worded by the chat deployment when one is configured (module docstring)."""
    deployment = settings.azure_openai_chat_deployment
    if not deployment or not rules:
        return WrittenSuggestions(items=rules)
    messages = request_messages(liver, rules, contrasts)
    key = hashlib.sha256(json.dumps([deployment, messages], ensure_ascii=False).encode()).hexdigest()
    with _cache_lock:
        texts = _cache.get(key)
    if texts is None:
        try:
            completion = azure_openai_client(
                settings,
                api_version=settings.vision_api_version,
                max_retries=0,
                timeout=CHAT_TIMEOUT_SEC,
                http_client=http_client,
            ).chat.completions.create(
                model=deployment,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "improvement_suggestions", "strict": True, "schema": response_schema()},
                },
                temperature=0.2,
            )
            texts = parse_answer(completion, len(rules))
        except Exception as exc:  # the optional writer must never break the page: any failure falls back
            log.warning(
                "suggestion writer %r failed, showing the rule text: %s: %s", deployment, type(exc).__name__, exc
            )
            note = "AIによる文章化に失敗したため、ルールに基づく提案をそのまま表示しています。"
            return WrittenSuggestions(items=rules, note=f"{note}（{type(exc).__name__}）")
        with _cache_lock:
            _cache[key] = texts
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    items = [s.model_copy(update={"text": t, "written_by": "azure_openai"}) for s, t in zip(rules, texts, strict=True)]
    return WrittenSuggestions(items=items)
