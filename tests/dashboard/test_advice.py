"""The suggestion writer: the recorded request contract of the chat deployment, and the fallback
to the rule text on every failure (an ``httpx.MockTransport`` answers like Azure; no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rag_core.base.settings import Settings, load_settings
from rag_core.dashboard import advice
from rag_core.dashboard.advice import Suggestion, response_schema, write_suggestions
from rag_core.knowledge.schemas import PhaseMixContrast

ENDPOINT = "https://lcj-aoai.openai.azure.com"
RULES = [
    Suggestion(
        text="「商品デモ」の割合を増やしましょう。",
        evidence=["上位 40% / あなた 20%", "v-top-1 #3（商品デモ、GMV ¥120,000）"],
    ),
    Suggestion(
        text="最も成果の出たフェーズ v-me-2 #1 の進め方を再現しましょう。", evidence=["v-me-2 #1（GMV ¥80,000）"]
    ),
]
CONTRASTS = [PhaseMixContrast(phase_type="product_demo", top_share=0.4, target_share=0.2, top_avg_duration_sec=600)]
WRITTEN = [
    "上位ライバーは配信の40%を商品デモに使っています（あなたは20%）。v-top-1 #3 のように実演を増やしましょう。",
    "GMV ¥80,000 を上げた v-me-2 #1 の流れを、次の配信の冒頭でも再現しましょう。",
]


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    advice._cache.clear()


def _settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "azure_openai_endpoint": ENDPOINT,
        "azure_openai_api_key": "test-key",
        "azure_openai_chat_deployment": "gpt-4o-advice",
        "vision_api_version": "2024-10-21",
        "embedding_provider": "local",
        "sales_ocr_provider": "local",
    }
    return load_settings(**{**values, **overrides})


def _completion(content: str | None, *, finish: str = "stop", refusal: str | None = None) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": refusal}
    return {
        "id": "chatcmpl-advice",
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "finish_reason": finish, "message": message}],
        "usage": {"prompt_tokens": 600, "completion_tokens": 200, "total_tokens": 800},
    }


def _answer(texts: list[str]) -> str:
    return json.dumps({"suggestions": [{"index": i, "text": t} for i, t in enumerate(texts)]}, ensure_ascii=False)


def _client(handle: Callable[[httpx.Request], httpx.Response], seen: list[httpx.Request]) -> httpx.Client:
    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handle(request)

    return httpx.Client(transport=httpx.MockTransport(record))


def test_request_contract_and_the_rewritten_texts_keep_the_rules_evidence() -> None:
    seen: list[httpx.Request] = []
    client = _client(lambda _: httpx.Response(200, json=_completion(_answer(WRITTEN))), seen)
    written = write_suggestions(_settings(), "ライバーA", RULES, CONTRASTS, http_client=client)

    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/openai/deployments/gpt-4o-advice/chat/completions"
    assert request.url.params["api-version"] == "2024-10-21"
    assert request.headers["api-key"] == "test-key"
    body = json.loads(request.content)
    assert body["model"] == "gpt-4o-advice"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["response_format"]["json_schema"]["schema"] == response_schema()
    system, user = body["messages"]
    assert system["role"] == "system" and "日本語" in system["content"]
    facts = json.loads(user["content"])
    assert facts["liver"] == "ライバーA" and facts["contrasts"][0]["top_share"] == 0.4
    assert facts["suggestions"][0] == {"index": 0, "text": RULES[0].text, "evidence": RULES[0].evidence}

    assert written.note is None
    assert [s.text for s in written.items] == WRITTEN
    assert [s.evidence for s in written.items] == [s.evidence for s in RULES]  # citations are the rules' own
    assert {s.written_by for s in written.items} == {"azure_openai"}

    again = write_suggestions(_settings(), "ライバーA", RULES, CONTRASTS, http_client=client)
    assert again == written and len(seen) == 1  # a reload is served from the cache


def test_the_schema_is_strict_everywhere() -> None:
    schema = response_schema()
    for node in (schema, schema["properties"]["suggestions"]["items"]):
        assert node["additionalProperties"] is False and sorted(node["required"]) == sorted(node["properties"])


def _raise_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


@pytest.mark.parametrize(
    ("handle", "reason"),
    [
        (_raise_timeout, "APITimeoutError"),
        (lambda _: httpx.Response(500, json={"error": {"message": "boom"}}), "InternalServerError"),
        (lambda _: httpx.Response(429, json={"error": {"message": "slow down"}}), "RateLimitError"),
        (lambda _: httpx.Response(200, json=_completion('{"suggestions": ')), "AdviceResponseError"),
        (lambda _: httpx.Response(200, json=_completion(_answer(WRITTEN[:1]))), "AdviceResponseError"),
        (lambda _: httpx.Response(200, json=_completion(_answer(["Do more demos.", WRITTEN[1]]))), "AdviceResponse"),
        (lambda _: httpx.Response(200, json=_completion(_answer(WRITTEN), finish="length")), "AdviceResponseError"),
        (lambda _: httpx.Response(200, json=_completion(None, refusal="no")), "AdviceResponseError"),
    ],
    ids=["timeout", "500", "429", "malformed", "missing-index", "not-japanese", "cut-off", "refusal"],
)
def test_any_failure_falls_back_to_the_rule_text_with_a_note(
    handle: Callable[[httpx.Request], httpx.Response], reason: str
) -> None:
    seen: list[httpx.Request] = []
    written = write_suggestions(_settings(), "ライバーA", RULES, CONTRASTS, http_client=_client(handle, seen))
    assert written.items == RULES and len(seen) == 1  # no retry: the page does not wait twice
    assert written.note is not None and "ルールに基づく提案" in written.note and reason in written.note


def test_unset_deployment_asks_nobody() -> None:
    seen: list[httpx.Request] = []
    settings = _settings(azure_openai_chat_deployment=None)
    written = write_suggestions(settings, "ライバーA", RULES, CONTRASTS, http_client=_client(_raise_timeout, seen))
    assert written.items == RULES and written.note is None and seen == []
