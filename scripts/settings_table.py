# ruff: noqa: E501  (the MEANINGS table reads better unwrapped)
"""Print the settings table of docs/operations.md ("Configure") from rag_core.base.settings.Settings.

    .venv/bin/python scripts/settings_table.py            # print the table
    .venv/bin/python scripts/settings_table.py --write    # replace it in docs/operations.md

One row per Settings field: the environment variable the code reads first (later aliases in
brackets), its default, whether infra/modules/functionapp.bicep sets it in Azure, and what it
means (the field's ``description`` when it has one, else the text in MEANINGS below).
tests/test_infra.py fails when a setting is missing from docs/operations.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag_core.base.settings import Settings  # noqa: E402

FUNCTION_APP_BICEP = ROOT / "infra" / "modules" / "functionapp.bicep"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"

MEANINGS = {
    "qdrant_url": "Qdrant server URL (Azure: the Container App's internal HTTPS endpoint, with `:443`); unset = the embedded engine (qdrant-edge) in QDRANT_PATH",
    "qdrant_api_key": "Qdrant API key (Azure: Key Vault reference to `qdrant-api-key`)",
    "qdrant_path": "Folder of the embedded engine (qdrant-edge; a local-mode store found there is upgraded on first start)",
    "qdrant_collection": "Phase-level collection; the stream-level one is `<name>_streams`",
    "qdrant_timeout_sec": "Timeout of Qdrant requests, seconds",
    "upsert_batch_size": "Points per Qdrant upsert request",
    "embedding_provider": "`azure`, `openai` or `local` (offline multilingual-e5-small); unset = `azure` when AZURE_OPENAI_ENDPOINT is set, else `local`",
    "embedding_model": "Embedding model; for Azure the *deployment name*",
    "embedding_api_version": "Azure OpenAI API version for embeddings",
    "embedding_batch_size": "Texts per embedding request",
    "embedding_max_retries": "Retries of a failed/throttled embedding request",
    "embedding_dimensions": "Reduced vector size for text-embedding-3-*; changing it requires a re-index",
    "openai_base_url": "Base URL of an OpenAI-compatible server (EMBEDDING_PROVIDER=openai)",
    "openai_api_key": "API key for that server",
    "azure_openai_endpoint": "Azure OpenAI endpoint, e.g. `https://<resource>.openai.azure.com/`",
    "azure_openai_api_key": "Azure OpenAI key; unset = managed identity / `az login` (Entra ID)",
    "sales_ocr_provider": "Sales-screenshot OCR: `azure` (vision model) or `local` (Tesseract); unset = like EMBEDDING_PROVIDER",
    "vision_model": "Vision model for OCR; for Azure the *deployment name*",
    "vision_api_version": "Azure OpenAI API version for the vision model",
    "vision_detail": "Image detail sent to the vision model (`low`, `high`, `auto`)",
    "ocr_languages": "Tesseract languages of the local OCR provider",
    "ocr_min_confidence": "Below this confidence an OCR value is dropped (null) with a warning",
    "screen_sample_interval_sec": "Seconds between sampled frames of a screen recording",
    "screen_layout": "Screen layout preset used to crop the sales panel",
    "rank_weight_similarity": "Ranking weight of vector similarity (docs/retrieval.md)",
    "rank_weight_sales": "Ranking weight of sales performance",
    "rank_weight_quality": "Ranking weight of the analysis quality score",
    "prompt_char_budget": "Characters of retrieved context put into a prompt",
    "storage_connection_string": "Storage connection string (Azurite locally); must be empty/unset in Azure, where the identity is used",
    "storage_account_name": "Storage account used with the managed identity (also the Functions host's identity-based connection)",
    "uploads_container": "Blob container of uploaded files (screenshots, recordings)",
    "inbox_container": "Blob container where analysis JSON files are dropped for ingest",
    "rejected_container": "Blob container receiving inbox files that failed validation",
    "snapshots_container": "Blob container of Qdrant snapshots",
    "ingest_queue": "Queue of ingest jobs (failed messages go to `<name>-poison`)",
    "jobs_table": "Table of job status records",
    "max_upload_bytes": "Largest accepted upload; larger requests get 413",
    "max_dequeue_count": "Deliveries before a queue message goes to the poison queue; must equal host.json `queues.maxDequeueCount`",
    "snapshot_schedule": "NCRONTAB (UTC) of the snapshot timer; default 18:00 UTC = 03:00 JST",
    "snapshot_retention": "Snapshots kept in the snapshots container",
    "api_keys": 'JSON list of API keys `[{"name", "key", "brand_id"?}]`; Azure: Key Vault reference to `api-keys`',
    "video_url_allowed_hosts": "JSON list of hosts a `video_url` may point to",
    "log_level": "Python log level",
}


def env_names(name: str, field: Any) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(c) for c in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [name.upper()]


def default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, Path):
        value = value.as_posix()
    return f"`{value}`".replace("|", "\\|")


def deployed_names() -> set[str]:
    if not FUNCTION_APP_BICEP.is_file():
        return set()
    text = FUNCTION_APP_BICEP.read_text(encoding="utf-8")
    block = text[text.find("var appSettings = {") :]
    block = block[: block.find("\n}\n")]
    return {m.lower() for m in re.findall(r"^\s*'?([A-Za-z_][\w]*)'?\s*:", block, flags=re.M)}


def table() -> str:
    deployed = deployed_names()
    lines = ["| Setting | Default | Azure (infra) | Meaning |", "| --- | --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        names = env_names(name, field)
        label = f"`{names[0]}`" + (f" ({', '.join(f'`{n}`' for n in names[1:])})" if names[1:] else "")
        azure = "set" if names[0].lower() in deployed else "default"
        meaning = field.description or MEANINGS.get(
            name, "(undocumented: add a description in rag_core/base/settings.py)"
        )
        lines.append(f"| {label} | {default_text(field)} | {azure} | {meaning.replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if sys.argv[1:] == ["--write"]:
        doc = OPERATIONS_DOC.read_text(encoding="utf-8")
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        OPERATIONS_DOC.write_text(f"{head}{START}\n{table()}{END}{tail}", encoding="utf-8")
        print(f"updated {OPERATIONS_DOC.relative_to(ROOT)}")
    else:
        sys.stdout.write(table())


if __name__ == "__main__":
    main()
