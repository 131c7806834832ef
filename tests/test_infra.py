"""Static checks of the deployment templates (infra/, azure.yaml, .funcignore).

No Bicep compiler is installable from PyPI or npm (the official CLI is a .NET binary
downloaded from GitHub), so the templates are checked in two layers:

1. Syntax: every ``infra/**/*.bicep`` file must parse with ``pycep-parser`` (an offline
   Bicep grammar). This catches unbalanced braces, bad decorators, broken loops...
2. Semantics, on the parsed trees: module parameters match the modules' declarations,
   symbols used in expressions are declared, parameter files only name real parameters,
   the resources the app needs exist with the right shape, and - the main point - every
   setting ``rag_core/base/settings.py`` reads is either set in the Function App's app settings
   or listed in ``SAFE_DEFAULTS`` below with the reason it may stay at its default.

What these tests cannot see (needs ``az bicep build`` / a what-if against Azure): resource
property names and API versions against the provider schemas, and deploy-time rules such as
deploy-time-constant checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser
from pydantic import AliasChoices

from rag_core.base.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
PARAM_FILES = sorted(INFRA.glob("main*.parameters.json"))

# Settings the Function App may leave at the code's default in Azure, and why. A setting
# that is neither here nor in the app settings of infra/modules/functionapp.bicep fails
# test_every_setting_is_deployed_or_safe_by_default: decide which one it is.
SAFE_DEFAULTS: dict[str, str] = {
    # Local-only or other-provider knobs: unused when QDRANT_URL / EMBEDDING_PROVIDER=azure are set.
    "QDRANT_PATH": "embedded engine folder, only used when QDRANT_URL is unset (local runs)",
    "OPENAI_BASE_URL": "only for EMBEDDING_PROVIDER=openai; Azure uses AZURE_OPENAI_ENDPOINT",
    "OPENAI_API_KEY": "only for EMBEDDING_PROVIDER=openai",
    "OCR_LANGUAGES": "Tesseract languages of the local OCR provider; Azure uses SALES_OCR_PROVIDER=azure",
    "TESSDATA_DIR": "local Tesseract OCR only (Flex Consumption has no tesseract binary); Azure uses the vision model",
    # Identity instead of keys.
    "AZURE_OPENAI_API_KEY": "the Function identity has Cognitive Services OpenAI User; no key in settings",
    "AzureWebJobsStorage": (
        "must stay unset in Azure: the host and the code use AzureWebJobsStorage__accountName + identity "
        "(STORAGE_CONNECTION_STRING='' switches off the Azurite default, see functionapp.bicep)"
    ),
    # Tuning knobs whose defaults are the intended production values.
    "QDRANT_TIMEOUT_SEC": "30 s suits the VNet round trip to Container Apps",
    "UPSERT_BATCH_SIZE": "tuning; default sized for the Consumption-profile Qdrant",
    "EMBEDDING_BATCH_SIZE": "tuning; within Azure OpenAI request limits",
    "EMBEDDING_MAX_RETRIES": "tuning; the SDK backs off on 429",
    "EMBEDDING_DIMENSIONS": "unset = the model's native size; changing it needs a re-index (docs/operations.md)",
    "EMBEDDING_THREADS": "local model only (Azure embeds with Azure OpenAI): one OpenMP thread per call",
    "EMBEDDING_WORKERS": "local model only: unset = one model instance per CPU",
    "VISION_DETAIL": "tuning; 'high' is needed to read small sales figures",
    "OCR_MIN_CONFIDENCE": "tuning of the OCR warning threshold",
    "SCREEN_SAMPLE_INTERVAL_SEC": "tuning of screen-recording sampling",
    "SCREEN_LAYOUT": "only one layout is supported",
    "RANK_WEIGHT_SIMILARITY": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_WEIGHT_SALES": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_WEIGHT_QUALITY": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_WEIGHT_TYPE": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_WEIGHT_LEXICAL": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_TYPE_TEMPERATURE": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_WEIGHT_DIVERSITY": "ranking weights are product decisions in code (docs/retrieval.md)",
    "RANK_DUPLICATE_COSINE": "ranking weights are product decisions in code (docs/retrieval.md)",
    "PROMPT_CHAR_BUDGET": "tuning of the prompt context size",
    "MAX_JSON_BYTES": "documented limit (docs/operations.md Limits); the default fits a 10,000-phase analysis",
    "MAX_DISCARD_BYTES": "documented limit: how much of an over-limit body is drained before the 413",
    "MAX_JSON_DEPTH": "documented limit; no legitimate analysis nests deeper",
    "JOB_TIME_BUDGET_SEC": "documented limit; the default stays below host.json functionTimeout (10 min)",
    "QUEUE_VISIBILITY_SEC": "local runner only; the Functions host leases and renews queue messages itself",
    "LOG_AZURE_HTTP": "off in production: the SDK would log every storage call",
    # Read by operator CLIs, not by the Function App.
    "BACKFILL_API_TOKEN": "python -m rag_core.operations.backfill --source api only; given in the operator's shell",
    "BACKFILL_RATE_PER_SEC": "python -m rag_core.operations.backfill only",
}

# main.bicep parameter -> Settings field whose default it must equal (one source of truth).
PARAM_DEFAULTS_FROM_CODE = {
    "qdrantCollection": "qdrant_collection",
    "embeddingDeployment": "embedding_model",
    "embeddingApiVersion": "embedding_api_version",
    "visionDeployment": "vision_model",
    "visionApiVersion": "vision_api_version",
    "snapshotSchedule": "snapshot_schedule",
    "snapshotRetention": "snapshot_retention",
    "maxDequeueCount": "max_dequeue_count",
    "maxUploadBytes": "max_upload_bytes",
    "logLevel": "log_level",
}

# main.bicep storageLayout key -> Settings field naming that container / queue / table.
STORAGE_LAYOUT_FROM_CODE = {
    "uploadsContainer": "uploads_container",
    "inboxContainer": "inbox_container",
    "rejectedContainer": "rejected_container",
    "snapshotsContainer": "snapshots_container",
    "ingestQueue": "ingest_queue",
    "jobsTable": "jobs_table",
}

ROLE_IDS = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",
}

# App settings that Flex Consumption rejects (runtime and package come from functionAppConfig).
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "AzureWebJobsStorage",
}


# --------------------------------------------------------------------------------------
# Parsing helpers
# --------------------------------------------------------------------------------------
@cache
def _parser() -> BicepParser:
    return BicepParser()


@cache
def parse(path: Path) -> dict[str, Any]:
    tree: dict[str, Any] = dict(_parser().parse(file_path=path))
    return tree


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def body(decl: dict[str, Any]) -> dict[str, Any]:
    """The object body of a resource/module, unwrapping `if (...)` and `[for ...]` forms."""
    config = decl["config"]
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def unquote(key: str) -> str:
    return key[1:-1] if len(key) >= 2 and key[0] == key[-1] == "'" else key


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def all_resources() -> list[tuple[Path, str, dict[str, Any]]]:
    return [(f, name, decl) for f in bicep_files() for name, decl in parse(f).get("resources", {}).items()]


def resources_of(rtype: str, *, existing: bool = False) -> list[dict[str, Any]]:
    found = [body(d) for _, _, d in all_resources() if d["type"] == rtype and d["existing"] == existing]
    assert found, f"no {'existing ' if existing else ''}{rtype} resource in infra/"
    return found


def the_resource(rtype: str) -> dict[str, Any]:
    found = resources_of(rtype)
    assert len(found) == 1, f"expected one {rtype}, found {len(found)}"
    return found[0]


def param_default(path: Path, name: str) -> Any:
    return parse(path)["parameters"][name]["default"]


def canonical_env_name(name: str, field: Any) -> str:
    """The environment variable the code reads first for a Settings field."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return name.upper()


def app_settings() -> dict[str, Any]:
    settings = parse(FUNCTION_APP)["variables"]["appSettings"]["value"]
    return {unquote(k): v for k, v in settings.items()}


def field_default(name: str) -> Any:
    return Settings.model_fields[name].get_default(call_default_factory=True)


# --------------------------------------------------------------------------------------
# Layer 1: syntax
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_bicep_parses(path: Path) -> None:
    tree = parse(path)
    assert tree.get("resources") or tree.get("modules"), f"{path} declares nothing"


def test_expected_files_exist() -> None:
    for rel in ("infra/main.bicep", "azure.yaml", ".funcignore", "docs/operations.md"):
        assert (ROOT / rel).is_file(), rel
    assert {p.name for p in PARAM_FILES} >= {
        "main.parameters.json",
        "main.dev.parameters.json",
        "main.prod.parameters.json",
    }


# --------------------------------------------------------------------------------------
# Layer 2: cross-file and symbol checks
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_params_match_declarations(path: Path) -> None:
    for name, module in parse(path).get("modules", {}).items():
        target = (path.parent / module["detail"]["path"]).resolve()
        assert target.is_file(), f"{path.name}: module {name} -> missing {target}"
        declared = parse(target).get("parameters", {})
        passed = set(body(module).get("params", {}) or {})
        unknown = passed - set(declared)
        assert not unknown, f"{path.name}: module {name} passes undeclared params {sorted(unknown)}"
        required = {p for p, d in declared.items() if d["default"] is None}
        missing = required - passed
        assert not missing, f"{path.name}: module {name} lacks required params {sorted(missing)}"


_INTERPOLATION = re.compile(r"\$\{\s*([A-Za-z_]\w*)(\s*\()?")


def _head(reference: str) -> str:
    """`a::b` (nested-resource accessor) and pycep's flattened `a__b` both start at `a`."""
    return reference.split("::")[0].split("__")[0]


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_referenced_symbols_are_declared(path: Path) -> None:
    tree = parse(path)
    symbols: set[str] = set()
    for section in ("parameters", "variables", "resources", "modules", "outputs"):
        for key in tree.get(section, {}):
            symbols.add(key.split("__")[-1])  # nested resources are flattened as parent__child
    for node in walk(tree):
        if isinstance(node, dict) and "loop_type" in node:
            detail = node["loop_type"]["detail"]
            symbols.update(v for k, v in detail.items() if k.endswith("_name") and k != "array_name" and v)
    problems: list[str] = []

    def check(node: Any, chained: bool = False) -> None:
        # pycep nests a.b.c as accessor(a, accessor(b, c)): only the head of a chain is a symbol.
        if isinstance(node, str):
            for ident, call in _INTERPOLATION.findall(node):
                if not call and ident not in symbols:
                    problems.append(f"${{{ident}...}} in {node!r}")
        elif isinstance(node, dict):
            if set(node) == {"operator"}:
                check(node["operator"], chained)
                return
            if node.get("type") == "property_accessor" and "operands" in node:
                first, rest = node["operands"].get("operand_1"), node["operands"].get("operand_2")
                if isinstance(first, str):
                    if not chained and _head(first) not in symbols:
                        problems.append(f"{first}.{rest}")
                else:
                    check(first)
                check(rest, chained=True)
                return
            for value in node.values():
                check(value)
        elif isinstance(node, list):
            for value in node:
                check(value)

    check(tree)
    for _, _, decl in [(path, n, d) for n, d in tree.get("resources", {}).items()]:
        b = body(decl)
        refs = [b.get("parent"), b.get("scope"), *(b.get("depends_on") or []), *(b.get("dependsOn") or [])]
        problems += [f"reference {r!r}" for r in refs if isinstance(r, str) and _head(r) not in symbols]
    assert not problems, f"{path.name}: undeclared symbols: {problems}"


def test_role_ids_are_known_built_in_roles() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in bicep_files())
    guids = set(re.findall(r"'([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'", text))
    assert guids, "no role definition ids found"
    unknown = guids - set(ROLE_IDS)
    assert not unknown, f"role ids not in ROLE_IDS (typo?): {unknown}"
    assert set(ROLE_IDS) <= guids, f"roles never assigned: {[ROLE_IDS[g] for g in set(ROLE_IDS) - guids]}"


@pytest.mark.parametrize("path", PARAM_FILES, ids=lambda p: p.name)
def test_parameter_files_match_main(path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    given = data["parameters"]
    declared = parse(MAIN)["parameters"]
    unknown = set(given) - set(declared)
    assert not unknown, f"{path.name} sets parameters main.bicep does not declare: {sorted(unknown)}"
    required = {p for p, d in declared.items() if d["default"] is None}
    assert required <= set(given), f"{path.name} lacks required {sorted(required - set(given))}"
    for name, entry in given.items():
        value = entry["value"]
        allowed = [d["argument"] for d in declared[name]["decorators"] if d["type"] == "allowed"]
        if allowed and not (isinstance(value, str) and value.startswith(("${", "$("))):
            assert value in allowed[0], f"{path.name}: {name}={value!r} not in @allowed {allowed[0]}"
        secure = any(d["type"] == "secure" for d in declared[name]["decorators"])
        if secure:  # secrets never live in a parameter file; azd fills them from its env/Key Vault
            assert isinstance(value, str) and value.startswith(("${", "$(")), f"{path.name}: literal secret {name}"
    openai = {k: given.get(k, {}).get("value", "") for k in ("azureOpenAiResourceName", "azureOpenAiEndpoint")}
    assert any(openai.values()), f"{path.name}: set azureOpenAiResourceName or azureOpenAiEndpoint"


def test_main_param_defaults_follow_the_code() -> None:
    for param, field in PARAM_DEFAULTS_FROM_CODE.items():
        assert param_default(MAIN, param) == field_default(field), (
            f"main.bicep param {param} default {param_default(MAIN, param)!r} != "
            f"Settings.{field} default {field_default(field)!r}"
        )


def test_storage_layout_follows_the_code() -> None:
    layout = parse(MAIN)["variables"]["storageLayout"]["value"]
    for key, field in STORAGE_LAYOUT_FROM_CODE.items():
        assert layout[key] == field_default(field), f"storageLayout.{key} != Settings.{field} default"
    storage_module = body(parse(MAIN)["modules"]["storage"])["params"]
    flat = json.dumps(storage_module)
    for key in STORAGE_LAYOUT_FROM_CODE:
        assert f"storageLayout.{key}" in flat or key in flat, f"storage module does not create {key}"
    assert "${storageLayout.ingestQueue}-poison" in storage_module["queues"], "poison queue not created"
    assert "deploymentContainer" in flat, "Flex deployment container not created"


# --------------------------------------------------------------------------------------
# Resources the app needs
# --------------------------------------------------------------------------------------
def test_function_app_is_flex_consumption_python_311_with_identity() -> None:
    plan = the_resource("Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    site = the_resource("Microsoft.Web/sites")
    assert site["identity"]["type"] == "SystemAssigned"
    assert "linux" in site["kind"] and "functionapp" in site["kind"]
    config = site["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"]["type"] == "SystemAssignedIdentity"
    assert {"instanceMemoryMB", "maximumInstanceCount"} <= set(config["scaleAndConcurrency"])
    assert site["properties"]["virtualNetworkSubnetId"], "Function App must be VNet-integrated to reach Qdrant"
    settings_resource = [r for r in resources_of("Microsoft.Web/sites/config") if r["name"] == "appsettings"]
    assert settings_resource and settings_resource[0]["properties"] == "appSettings"


def test_storage_account_identity_only() -> None:
    accounts = resources_of("Microsoft.Storage/storageAccounts")
    app_account = [a for a in accounts if a["properties"].get("allowSharedKeyAccess") is False]
    assert len(app_account) == 1, "the app's storage account must have shared-key access disabled"
    for rtype in (
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.Storage/storageAccounts/queueServices/queues",
        "Microsoft.Storage/storageAccounts/tableServices/tables",
    ):
        resources_of(rtype)


def _role_assignments() -> list[dict[str, Any]]:
    return resources_of("Microsoft.Authorization/roleAssignments")


def _role_of(assignment: dict[str, Any]) -> str:
    """The built-in role of an assignment: a GUID literal, a `someRoleId` var or a `roles.key` entry."""
    expr = assignment["properties"]["roleDefinitionId"]
    variables: dict[str, Any] = {}
    for path in bicep_files():
        variables.update({k: v["value"] for k, v in parse(path).get("variables", {}).items()})
    for node in walk(expr):
        if isinstance(node, str):
            for guid, role in ROLE_IDS.items():
                if guid in node:
                    return role
            if isinstance(variables.get(node), str) and variables[node] in ROLE_IDS:
                return ROLE_IDS[variables[node]]
        if isinstance(node, dict) and node.get("type") == "property_accessor":
            table, key = node["operands"]["operand_1"], node["operands"]["operand_2"]
            value = variables.get(table) if isinstance(table, str) else None
            if isinstance(value, dict) and isinstance(key, str) and value.get(key) in ROLE_IDS:
                return ROLE_IDS[value[key]]
    raise AssertionError(f"cannot resolve the role of {json.dumps(expr)}")


def test_function_identity_roles() -> None:
    function_roles = set()
    for assignment in _role_assignments():
        principal = json.dumps(assignment["properties"]["principalId"])
        if "functionApp" in principal and "identity" in principal:
            function_roles.add(_role_of(assignment))
    assert function_roles >= {
        "Storage Blob Data Owner",
        "Storage Queue Data Contributor",
        "Storage Table Data Contributor",
        "Key Vault Secrets User",
        "Monitoring Metrics Publisher",
    }, function_roles
    # Azure OpenAI: separate module, principal handed over from the functionapp module.
    openai_roles = {_role_of(a) for a in _role_assignments() if a["properties"]["principalId"] == "principalId"}
    assert "Cognitive Services OpenAI User" in openai_roles
    module = parse(MAIN)["modules"]["openAiRole"]
    assert "functionApp" in json.dumps(body(module)["params"]["principalId"])
    assert module["config"].get("condition"), "the OpenAI role must be conditional on a given resource"


def test_monitoring() -> None:
    the_resource("Microsoft.OperationalInsights/workspaces")
    insights = the_resource("Microsoft.Insights/components")
    assert "WorkspaceResourceId" in insights["properties"]


def test_key_vault_rbac_and_secrets() -> None:
    vault = the_resource("Microsoft.KeyVault/vaults")
    assert vault["properties"]["enableRbacAuthorization"] is True
    secrets = {s["name"] for s in resources_of("Microsoft.KeyVault/vaults/secrets")}
    assert secrets == {"qdrantApiKeySecretName", "apiKeysSecretName"}


def test_qdrant_container_app() -> None:
    env = the_resource("Microsoft.App/managedEnvironments")
    assert env["properties"]["vnetConfiguration"]["internal"] is True, "Qdrant must not be public"
    volume_storage = the_resource("Microsoft.App/managedEnvironments/storages")
    assert volume_storage["properties"]["azureFile"]["accessMode"] == "ReadWrite"

    image = param_default(MAIN, "qdrantImage")
    assert re.fullmatch(r"qdrant/qdrant:v\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?", image), f"unpinned {image!r}"
    app = the_resource("Microsoft.App/containerApps")
    template = app["properties"]["template"]
    (container,) = template["containers"]
    assert container["image"] == "image"  # the module parameter fed from main.qdrantImage
    assert body(parse(MAIN)["modules"]["qdrant"])["params"]["image"] == "qdrantImage"
    assert "latest" not in json.dumps(template)

    mounts = {m["volumeName"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in template["volumes"]}
    (volume_name,) = [n for n, p in mounts.items() if p == "/qdrant/storage"]
    assert volumes[volume_name]["storageType"] == "AzureFile"
    assert template["scale"]["maxReplicas"] == 1, "one writer per Qdrant storage directory"

    ingress = app["properties"]["configuration"]["ingress"]
    assert ingress["targetPort"] == 6333
    assert ingress["allowInsecure"] is False
    (secret,) = app["properties"]["configuration"]["secrets"]
    assert "vaultUri" in secret["keyVaultUrl"] and secret["identity"]
    env_vars = {e["name"]: e for e in container["env"]}
    assert env_vars["QDRANT__SERVICE__API_KEY"]["secretRef"] == secret["name"]


def test_private_dns_for_internal_environment() -> None:
    the_resource("Microsoft.Network/privateDnsZones")
    assert the_resource("Microsoft.Network/privateDnsZones/A")["name"] == "*"
    the_resource("Microsoft.Network/privateDnsZones/virtualNetworkLinks")


# --------------------------------------------------------------------------------------
# App settings
# --------------------------------------------------------------------------------------
def test_every_setting_is_deployed_or_safe_by_default() -> None:
    deployed = {k.lower() for k in app_settings()}
    missing, contradictory = [], []
    for name, field in Settings.model_fields.items():
        env = canonical_env_name(name, field)
        in_settings = env.lower() in deployed
        in_allow_list = env.lower() in {k.lower() for k in SAFE_DEFAULTS}
        if not in_settings and not in_allow_list:
            missing.append(env)
        if in_settings and in_allow_list:
            contradictory.append(env)
    assert not missing, (
        f"settings read by rag_core/base/settings.py but not deployed: {missing}. Add them to appSettings in "
        "infra/modules/functionapp.bicep (and a parameter if they vary), or to SAFE_DEFAULTS in "
        "tests/test_infra.py with the reason the default is right in Azure."
    )
    assert not contradictory, f"both deployed and listed in SAFE_DEFAULTS: {contradictory}"


def test_allow_list_has_no_stale_entries() -> None:
    known = {canonical_env_name(n, f).lower() for n, f in Settings.model_fields.items()}
    stale = [k for k in SAFE_DEFAULTS if k.lower() not in known]
    assert not stale, f"SAFE_DEFAULTS names settings the code no longer reads: {stale}"


def test_app_settings_use_identity_and_key_vault() -> None:
    settings = app_settings()
    assert settings["AzureWebJobsStorage__accountName"], "identity-based host storage"
    assert settings["STORAGE_CONNECTION_STRING"] == "", "must switch off the UseDevelopmentStorage default"
    forbidden = FLEX_FORBIDDEN_SETTINGS & set(settings)
    assert not forbidden, f"not allowed on Flex Consumption / not identity-based: {forbidden}"
    for name in ("QDRANT_API_KEY", "API_KEYS"):
        assert str(settings[name]).startswith("@Microsoft.KeyVault(SecretUri="), name
    text = json.dumps(settings)
    assert "AccountKey=" not in text and "listKeys" not in text, "no storage keys in app settings"
    assert settings["EMBEDDING_PROVIDER"] == "azure" and settings["SALES_OCR_PROVIDER"] == "azure"


def test_max_dequeue_count_is_one_value() -> None:
    settings = app_settings()
    code_value = settings["MAX_DEQUEUE_COUNT"]
    host_value = settings["AzureFunctionsJobHost__extensions__queues__maxDequeueCount"]
    assert code_value == host_value, "MAX_DEQUEUE_COUNT and the host override must come from one parameter"
    default = field_default("max_dequeue_count")
    assert param_default(MAIN, "maxDequeueCount") == default
    host_json = ROOT / "host.json"
    if not host_json.is_file():
        pytest.skip("host.json not written yet")
    host = json.loads(host_json.read_text(encoding="utf-8"))
    assert host["extensions"]["queues"]["maxDequeueCount"] == default, "host.json vs Settings.max_dequeue_count"


# --------------------------------------------------------------------------------------
# azd, .funcignore, docs
# --------------------------------------------------------------------------------------
def test_azure_yaml() -> None:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with schemathesis (requirements-dev.txt)
    data = yaml.safe_load((ROOT / "azure.yaml").read_text(encoding="utf-8"))
    api = data["services"]["api"]
    assert (api["language"], api["host"]) == ("python", "function")
    assert (ROOT / api["project"] / "requirements.txt").is_file()
    assert data["infra"]["path"] == "infra" and (INFRA / f"{data['infra'].get('module', 'main')}.bicep").is_file()
    assert "'azd-service-name': 'api'" in FUNCTION_APP.read_text(encoding="utf-8"), "azd finds the app by tag"


def test_funcignore_keeps_dev_material_out() -> None:
    entries = {
        line.strip().rstrip("/")
        for line in (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    required = {".venv", "node_modules", "tests", "benchmarks", ".data", "samples", "scripts", "docs", "infra"}
    assert required <= entries, f".funcignore lacks {sorted(required - entries)}"
    assert not entries & {"rag_core", "function_app.py", "host.json", "requirements.txt"}, "runtime files ignored"


def test_operations_doc_lists_every_setting() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    undocumented = [
        canonical_env_name(n, f) for n, f in Settings.model_fields.items() if f"`{canonical_env_name(n, f)}`" not in doc
    ]
    assert not undocumented, (
        f"docs/operations.md lacks {undocumented}: regenerate its settings table with "
        "`.venv/bin/python scripts/settings_table.py --write`"
    )
