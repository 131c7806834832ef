"""One way to build an Azure OpenAI client: the vision reader and the suggestion writer share it.

A key (``AZURE_OPENAI_API_KEY``) is used when one is set, for local runs; otherwise the client
signs in with the managed identity, as the deployment is keyless. ``http_client`` reaches the
openai client so tests can hand it a recorded transport (no network) and operators a proxy.
"""

from __future__ import annotations

from typing import Any

import httpx

from rag_core.base.settings import Settings

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"


def azure_openai_client(
    settings: Settings,
    *,
    api_version: str,
    max_retries: int,
    timeout: float,
    http_client: httpx.Client | None = None,
) -> Any:
    """An ``openai.AzureOpenAI`` for ``settings.azure_openai_endpoint`` (imported lazily: only
    deployments that call Azure pay for the import)."""
    from openai import AzureOpenAI

    key = settings.azure_openai_api_key
    token_provider = None
    if key is None:
        from azure.identity import DefaultAzureCredential, get_bearer_token_provider

        token_provider = get_bearer_token_provider(DefaultAzureCredential(), COGNITIVE_SERVICES_SCOPE)
    return AzureOpenAI(
        azure_endpoint=str(settings.azure_openai_endpoint),
        api_key=key.get_secret_value() if key is not None else None,
        azure_ad_token_provider=token_provider,
        api_version=api_version,
        max_retries=max_retries,
        timeout=timeout,
        http_client=http_client,
    )
