"""One typed settings object for the whole app.

Every knob is read here, from the process environment first and then from the
``Values`` of ``local.settings.json`` (the file ``func start`` reads), so the
Functions host, the local runner, the CLIs and the tests all agree. Nothing
else in the code base reads ``os.environ``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

LOCAL_SETTINGS_FILE = Path("local.settings.json")
DEV_STORAGE = "UseDevelopmentStorage=true"


class SettingsError(RuntimeError):
    """Raised at start-up when a setting is missing or malformed; names the variable."""


class ApiKey(BaseModel):
    """An API key given to one caller (e.g. LCJ), optionally scoped to one brand (tenant)."""

    name: str
    key: SecretStr
    brand_id: int | None = None


class _LocalSettingsJson(PydanticBaseSettingsSource):
    """Reads the ``Values`` object of ``local.settings.json`` like environment variables."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        values: dict[str, Any] = {}
        if path.is_file():
            values = json.loads(path.read_text(encoding="utf-8")).get("Values", {}) or {}
        self._values = {k.lower(): v for k, v in values.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        names = [field_name]
        if isinstance(field.validation_alias, AliasChoices):
            names = [str(c) for c in field.validation_alias.choices]
        elif isinstance(field.validation_alias, str):
            names = [field.validation_alias]
        for name in names:
            if name.lower() in self._values:
                return self._values[name.lower()], field_name, False
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:  # JSON-decode list/object settings (API_KEYS…) as the env source does
                out[key] = self.prepare_field_value(name, field, value, self.field_is_complex(field))
        return out


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """All configuration. Environment variable names are the upper-case field names
    unless an alias is given (aliases keep the names the old deployment used)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", populate_by_name=True)

    # --- Qdrant -------------------------------------------------------------------------
    qdrant_url: str | None = Field(None, description="Qdrant server URL; unset = embedded engine (qdrant-edge)")
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path = Path(".data/qdrant")
    qdrant_collection: str = Field(
        "video_analysis_knowledge", validation_alias=_env("QDRANT_COLLECTION", "COLLECTION_NAME")
    )
    qdrant_timeout_sec: int = 30
    upsert_batch_size: int = Field(64, ge=1, le=1024)

    # --- Embeddings ---------------------------------------------------------------------
    embedding_provider: Literal["azure", "openai", "local"] | None = None
    embedding_model: str = "text-embedding-3-small"
    embedding_api_version: str = "2024-02-01"
    embedding_batch_size: int = Field(64, ge=1, le=2048)
    embedding_max_retries: int = Field(5, ge=0, le=20)
    embedding_dimensions: int | None = Field(None, description="Optional dimension reduction (text-embedding-3-*)")
    embedding_threads: int = Field(1, ge=1, le=64, description="OpenMP threads per local-model call")
    embedding_workers: int | None = Field(
        None, ge=1, le=64, description="Local-model calls run side by side (default: one per CPU)"
    )
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    azure_openai_endpoint: str | None = None
    azure_openai_api_key: SecretStr | None = None
    azure_openai_chat_deployment: str | None = Field(
        None,
        description=(
            "Chat deployment (e.g. gpt-4o) that writes the liver page's improvement suggestions in Japanese "
            "from the rule-derived contrasts (API version VISION_API_VERSION); unset = the rule text only"
        ),
    )

    # --- Vision / OCR (Pattern A) and screen recordings (Pattern B) ---------------------
    sales_ocr_provider: Literal["azure", "local"] | None = None
    vision_model: str = "gpt-4o"
    vision_api_version: str = "2024-10-21"
    vision_detail: Literal["low", "high", "auto"] = "high"
    ocr_languages: str = "jpn+eng"
    ocr_min_confidence: float = Field(0.6, ge=0, le=1)
    screen_sample_interval_sec: float = Field(2.0, gt=0)
    screen_layout: str = "tiktok_live_portrait"
    tessdata_dir: Path | None = Field(None, description="tesseract language data; unset = the system tessdata")

    # --- Retrieval ranking (documented in docs/retrieval.md) ----------------------------
    rank_weight_similarity: float = Field(0.7, ge=0)
    rank_weight_sales: float = Field(0.2, ge=0)
    rank_weight_quality: float = Field(0.1, ge=0)
    rank_weight_type: float = Field(0.5, ge=0, description="phase-type fit, relative to dense similarity 1")
    rank_weight_lexical: float = Field(0.2, ge=0, description="Sudachi BM25, relative to dense similarity 1")
    rank_type_temperature: float = Field(0.005, gt=0, description="softmax temperature of the inferred type")
    rank_weight_diversity: float = Field(2.0, ge=0, description="MMR penalty of a near-duplicate; 0 = off")
    rank_duplicate_cosine: float = Field(0.95, ge=0, lt=1, description="cosine above which phases count as alike")
    prompt_char_budget: int = Field(6000, ge=500)

    # --- Storage ------------------------------------------------------------------------
    storage_connection_string: str | None = Field(
        None,
        description="Unset with no account name either = the local emulator (UseDevelopmentStorage=true)",
        validation_alias=_env("AzureWebJobsStorage", "STORAGE_CONNECTION_STRING"),
    )
    storage_account_name: str | None = Field(
        None, validation_alias=_env("AzureWebJobsStorage__accountName", "STORAGE_ACCOUNT_NAME")
    )
    uploads_container: str = "uploads"
    inbox_container: str = "analyses-inbox"
    rejected_container: str = "analyses-inbox-rejected"
    snapshots_container: str = "qdrant-snapshots"
    ingest_queue: str = "ingest-jobs"
    jobs_table: str = "ingestjobs"
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_dequeue_count: int = Field(5, ge=1, description="Keep equal to host.json queues.maxDequeueCount")

    # --- Limits on what callers send and on the work it causes (docs/operations.md "Limits") --
    max_json_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest JSON or urlencoded request body (a 10,000-phase analysis fits)"
    )
    max_discard_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="How much of an over-limit body is read and thrown away so the client receives its 413",
    )
    max_json_depth: int = Field(32, ge=4, le=500, description="Deepest nesting of arrays/objects in any JSON input")
    job_time_budget_sec: int = Field(
        540, ge=10, description="Wall time one job attempt may take (below host.json functionTimeout, 10 min)"
    )
    queue_visibility_sec: int = Field(
        30, ge=5, le=600, description="Local worker: lease of a message it runs, renewed while the job runs"
    )
    log_azure_http: bool = Field(False, description="Log every Azure SDK HTTP request and response (noisy)")

    # --- Backups ------------------------------------------------------------------------
    snapshot_schedule: str = "0 0 18 * * *"  # daily 03:00 JST
    snapshot_retention: int = Field(7, ge=1)

    # --- Backfill from an HTTP API (python -m rag_core.operations.backfill --source api) ----------
    backfill_api_token: SecretStr | None = Field(None, description="Bearer token; keeps it off the command line")
    backfill_rate_per_sec: float = Field(5.0, gt=0, description="Request rate limit towards the source API")

    # --- HTTP API security --------------------------------------------------------------
    api_keys: list[ApiKey] = Field(default_factory=list, description="JSON list of {name, key, brand_id?}")
    video_url_allowed_hosts: list[str] = Field(default_factory=list)

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _resolve_providers(self) -> Settings:
        """Default to the offline providers unless Azure OpenAI is configured."""
        if self.embedding_provider is None:
            self.embedding_provider = "azure" if self.azure_openai_endpoint else "local"
        if self.sales_ocr_provider is None:
            self.sales_ocr_provider = "azure" if self.azure_openai_endpoint else "local"
        for provider, what in (
            (self.embedding_provider, "EMBEDDING_PROVIDER"),
            (self.sales_ocr_provider, "SALES_OCR_PROVIDER"),
        ):
            if provider == "azure" and not self.azure_openai_endpoint:
                raise ValueError(f"{what}=azure needs AZURE_OPENAI_ENDPOINT")
        if self.azure_openai_chat_deployment and not self.azure_openai_endpoint:
            raise ValueError("AZURE_OPENAI_CHAT_DEPLOYMENT needs AZURE_OPENAI_ENDPOINT")
        if self.embedding_provider == "openai" and not self.openai_base_url:
            raise ValueError("EMBEDDING_PROVIDER=openai needs OPENAI_BASE_URL")
        if not self.storage_connection_string:  # "" counts as unset (as app settings write it)
            self.storage_connection_string = None if self.storage_account_name else DEV_STORAGE
        return self

    @property
    def streams_collection(self) -> str:
        """The stream-level collection (one point per video) kept beside the phase collection."""
        return f"{self.qdrant_collection}_streams"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _LocalSettingsJson(settings_cls, LOCAL_SETTINGS_FILE))


def load_settings(**overrides: Any) -> Settings:
    """Build and validate the settings; a bad value raises SettingsError naming the variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{loc.upper()}: {err['msg']}")
        raise SettingsError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests build their own with load_settings)."""
    return load_settings()
