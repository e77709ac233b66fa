"""Infra checks: Bicep syntax (pycep), checkov policy, and Bicep/topology/trigger/settings consistency.

No Bicep compiler is available offline, so the checks read the Bicep through pycep-parser (the
parser checkov itself uses). Every check takes the directory or app it inspects and returns a
list of problems (empty = pass), so tests can run them on deliberately broken copies.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
INFRA_DIR = ROOT / "infra"
LOCAL_SETTINGS_EXAMPLE = ROOT / "local.settings.example.json"
FUNCTION_APP_MODULE = Path("modules/functionapp.bicep")
TOPIC_MODULE = Path("modules/servicebus-topic.bicep")
POLICIES_DIR = Path("policies")
KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("

# Settings the code reads that Azure deliberately does NOT get, with the reason (docs/deploy.md).
NOT_SET_IN_AZURE: dict[str, str] = {
    "ServiceBusConnection": "SAS connection string; Azure uses ServiceBusConnection__fullyQualifiedNamespace "
    "with the managed identity (local auth is disabled on the namespace)",
    "AzureWebJobsStorage": "connection string with an account key; Azure uses "
    "AzureWebJobsStorage__accountName "
    "with the managed identity (shared-key access is disabled on the account)",
    "AzureWebJobsStorage__tableServiceUri": "explicit table endpoint override; in Azure the code derives it "
    "from AzureWebJobsStorage__accountName",
    "LOCAL_BUS_PATH": "file of the sandbox's local bus; Azure runs with BUS_BACKEND=servicebus",
    "BRIGHTPEARL_BASE_URL": "points the client at the Brightpearl simulator; Azure derives the host from "
    "BRIGHTPEARL_DATACENTRE (and OAuth's api_domain)",
    "DATAVERSE_TOKEN_URL": "token endpoint of the Dataverse simulator; Azure gets tokens from Entra ID "
    "(DATAVERSE_AUTHORITY_HOST)",
    "BRIGHTPEARL_TOKEN_STORE_PATH": "file token store of the sandbox; Azure uses BRIGHTPEARL_TOKEN_STORE="
    "keyvault (oauth) or memory (private)",
}

# Settings Bicep sets that no settings class reads: the Functions host and the Azure SDKs read them.
PLATFORM_SETTINGS: dict[str, str] = {
    "AzureWebJobsStorage__credential": "Functions host: identity-based host storage",
    "ServiceBusConnection__credential": "Service Bus extension: identity-based trigger connection",
    "AZURE_CLIENT_ID": "azure-identity DefaultAzureCredential: which user-assigned identity to use",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "Functions host: Entra ID ingestion into App Insights",
    "PYTHON_ISOLATE_WORKER_DEPENDENCIES": "Python worker 3.11/3.12: load the app's packages before the "
    "worker's own (grpcio, protobuf); ignored from 3.13, which always does",
}

# A setting is a secret when its type is SecretStr or its name ends like one of these.
_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|_KEY)$")
_SETTING_REFERENCE = re.compile(r"%([A-Za-z0-9_.:-]+)%")
_SKIP_COMMENT = re.compile(r"checkov:skip=([A-Za-z0-9_,-]+)(:\s*(.*))?")


class InfraCheckError(RuntimeError):
    """A file the checks need is missing or unreadable; the message names it."""


# --------------------------------------------------------------------------------------------
# Bicep parsing
# --------------------------------------------------------------------------------------------


_PARSED: dict[str, dict[str, Any]] = {}


def parse_bicep(path: Path) -> dict[str, Any]:
    """pycep's tree of a .bicep file. Parsing takes about a second per file, so trees are cached
    by file content (copies of unchanged files in the negative tests cost nothing)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InfraCheckError(f"{path}: cannot read ({exc})") from exc
    return parse_bicep_text(text, str(path))


def parse_bicep_text(text: str, label: str) -> dict[str, Any]:
    """parse_bicep for text that is not in a file; `label` names it in errors."""
    path = label
    if text not in _PARSED:
        try:
            _PARSED[text] = BicepParser().parse(text=text)
        except Exception as exc:  # lark raises several unrelated exception classes
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InfraCheckError(f"{path}: not valid Bicep (pycep): {first_line}") from exc
    return copy.deepcopy(_PARSED[text])


def bicep_files(infra_dir: Path) -> list[Path]:
    return sorted(p for p in infra_dir.rglob("*.bicep") if "__pycache__" not in p.parts)


def check_bicep_syntax(infra_dir: Path) -> list[str]:
    """Every .bicep file under infra_dir parses with pycep-parser."""
    files = bicep_files(infra_dir)
    if not files:
        return [f"{infra_dir}: no .bicep files found"]
    problems = []
    for path in files:
        try:
            parse_bicep(path)
        except InfraCheckError as exc:
            problems.append(str(exc))
    return problems


def _literal(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def check_bicepparam(infra_dir: Path) -> list[str]:
    """Validate each .bicepparam without a compiler (pycep 0.5.1 cannot parse `using`).

    The file must start with `using '<file>.bicep'`; its `param x = value` statements are
    re-read as `var x = value` so pycep checks the value syntax; each name must be a param of
    the target file, every target param without a default must be set, and literal values must
    satisfy @allowed, @minValue/@maxValue and @minLength/@maxLength.
    """
    problems: list[str] = []
    files = sorted(infra_dir.rglob("*.bicepparam"))
    if not files:
        return [f"{infra_dir}: no .bicepparam file found"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        using = re.search(r"^\s*using\s+'([^']+)'\s*$", text, flags=re.M)
        if not using:
            problems.append(f"{path}: missing `using '<file>.bicep'`")
            continue
        target = (path.parent / using.group(1)).resolve()
        if not target.is_file():
            problems.append(f"{path}: `using` names {using.group(1)!r}, which does not exist")
            continue
        as_vars = re.sub(r"^\s*using\s+'[^']+'\s*$", "", text, flags=re.M)
        as_vars = re.sub(r"^param\s+", "var ", as_vars, flags=re.M)
        try:
            values = parse_bicep_text(as_vars, str(path)).get("variables", {})
        except InfraCheckError as exc:
            problems.append(f"{path}: parameter values are not valid Bicep expressions: "
                            f"{str(exc).split(': ', 1)[-1]}")
            continue
        try:
            declared = parse_bicep(target).get("parameters", {})
        except InfraCheckError as exc:
            problems.append(str(exc))
            continue
        for name, entry in values.items():
            if name not in declared:
                problems.append(f"{path}: sets param {name!r}, which {target.name} does not declare")
                continue
            problems.extend(_param_value_problems(path, name, entry["value"], declared[name]))
        for name, spec in declared.items():
            if spec.get("default") is None and name not in values:
                problems.append(f"{path}: required param {name!r} of {target.name} is not set")
    return problems


def _param_value_problems(path: Path, name: str, value: Any, spec: Mapping[str, Any]) -> list[str]:
    if not _literal(value):
        return []
    problems = []
    for deco in spec.get("decorators", []):
        kind, arg = deco.get("type"), deco.get("argument")
        if kind == "allowed" and value not in arg:
            problems.append(f"{path}: param {name!r} = {value!r} is not one of the allowed values {arg}")
        elif kind == "min_value" and isinstance(value, int) and value < int(arg):
            problems.append(f"{path}: param {name!r} = {value} is below @minValue({arg})")
        elif kind == "max_value" and isinstance(value, int) and value > int(arg):
            problems.append(f"{path}: param {name!r} = {value} is above @maxValue({arg})")
        elif kind == "min_length" and isinstance(value, str) and len(value) < int(arg):
            problems.append(f"{path}: param {name!r} is shorter than @minLength({arg})")
        elif kind == "max_length" and isinstance(value, str) and len(value) > int(arg):
            problems.append(f"{path}: param {name!r} is longer than @maxLength({arg})")
    return problems


def _unwrap(config: Any) -> dict[str, Any]:
    """pycep nests conditional and loop bodies one level deeper under 'config'."""
    while isinstance(config, dict) and isinstance(config.get("config"), dict) and (
        "condition" in config or "loop_type" in config
    ):
        config = config["config"]
    return config if isinstance(config, dict) else {}


def check_module_wiring(infra_dir: Path) -> list[str]:
    """What the Bicep compiler would reject between files: a module call passing a param the
    module does not declare, omitting a required one, or reading an output it does not have."""
    problems: list[str] = []
    for path in bicep_files(infra_dir):
        try:
            tree = parse_bicep(path)
        except InfraCheckError as exc:
            problems.append(str(exc))
            continue
        outputs_of: dict[str, set[str]] = {}
        for symbol, module in tree.get("modules", {}).items():
            target = path.parent / module["detail"]["path"]
            where = f"{path.relative_to(infra_dir)}: module {symbol} ({module['detail']['path']})"
            if not target.is_file():
                problems.append(f"{where}: file does not exist")
                continue
            try:
                target_tree = parse_bicep(target)
            except InfraCheckError as exc:
                problems.append(str(exc))
                continue
            declared = target_tree.get("parameters", {})
            passed = _unwrap(module["config"]).get("params", {})
            for name in sorted(set(passed) - set(declared)):
                problems.append(f"{where}: passes param {name!r}, which the module does not declare")
            for name, spec in sorted(declared.items()):
                if spec.get("default") is None and name not in passed:
                    problems.append(f"{where}: does not pass required param {name!r}")
            outputs_of[symbol] = set(target_tree.get("outputs", {}))
        text = path.read_text(encoding="utf-8")
        for symbol, output in sorted(set(re.findall(r"\b(\w+)\.outputs\.(\w+)", text))):
            if symbol in outputs_of and output not in outputs_of[symbol]:
                problems.append(
                    f"{path.relative_to(infra_dir)}: reads {symbol}.outputs.{output}, which the module "
                    f"does not output"
                )
    return problems


# --------------------------------------------------------------------------------------------
# Role assignments: least privilege
# --------------------------------------------------------------------------------------------

# The narrowest scope each data role of the app's identity is granted on (docs/deploy.md): the
# entities the app uses, never the namespace or the account.
ROLE_SCOPES: dict[str, str] = {
    "serviceBusDataSender": "Microsoft.ServiceBus/namespaces/topics",
    "serviceBusDataReceiver": "Microsoft.ServiceBus/namespaces/topics/subscriptions",
    "storageBlobDataOwner": "Microsoft.Storage/storageAccounts/blobServices/containers",
    "storageTableDataContributor": "Microsoft.Storage/storageAccounts/tableServices/tables",
}


@dataclass(frozen=True)
class RoleGrant:
    module: str
    role: str
    scope_type: str
    loop_over: str  # the array expression a looped module iterates (JSON), "" when not looped


def _symbol(node: Any) -> str:
    """The resource symbol of a `scope:` value: `topic` or `subscription[i]`."""
    if isinstance(node, str):
        return node
    operands = node.get("operator", {}).get("operands", {}) if isinstance(node, dict) else {}
    return str(operands.get("operand_1", ""))


def role_grants(infra_dir: Path) -> list[RoleGrant]:
    """Every role module call of main.bicep: which role, on which resource type, looped over what."""
    main = parse_bicep(infra_dir / "main.bicep")
    grants = []
    for symbol, module in main.get("modules", {}).items():
        config = module["config"]
        body = _unwrap(config)
        role_expr = body.get("params", {}).get("roleDefinitionId")
        if role_expr is None:
            continue
        operands = role_expr.get("operator", {}).get("operands", {}) if isinstance(role_expr, dict) else {}
        from_roles = operands.get("operand_1") == "roles"
        role = str(operands.get("operand_2")) if from_roles else json.dumps(role_expr)
        target = parse_bicep(infra_dir / module["detail"]["path"])
        resources = target.get("resources", {})
        scope_type = "(no role assignment)"
        for resource in resources.values():
            if resource["type"] == "Microsoft.Authorization/roleAssignments":
                scope = _symbol(_unwrap(resource["config"]).get("scope"))
                scope_type = resources.get(scope, {}).get("type", f"(unknown scope {scope!r})")
        loop = config.get("loop_type") if isinstance(config, dict) else None
        loop_over = json.dumps(loop["detail"]["array_name"]) if loop else ""
        grants.append(RoleGrant(module=symbol, role=role, scope_type=scope_type, loop_over=loop_over))
    return grants


def check_role_scopes(infra_dir: Path) -> list[str]:
    """Each data role is granted on the entities the app uses (ROLE_SCOPES), once per entity:
    every topology topic and subscription, every container and table storage.bicep creates."""
    try:
        grants = role_grants(infra_dir)
        main = parse_bicep(infra_dir / "main.bicep")
    except InfraCheckError as exc:
        return [str(exc)]
    storage = _unwrap(main.get("modules", {}).get("storage", {}).get("config", {})).get("params", {})
    topology_topics = {"operand_1": "topology", "operand_2": "topics"}  # `topology.topics`
    topics = json.dumps({"operator": {"type": "property_accessor", "operands": topology_topics}})
    covers = {
        "serviceBusDataSender": [topics],
        "serviceBusDataReceiver": [topics],
        "storageBlobDataOwner": [
            json.dumps(storage.get("deploymentContainerName")),
            json.dumps(storage.get("hostContainerNames")),
        ],
        "storageTableDataContributor": [json.dumps(storage.get("tableNames"))],
    }
    problems = []
    for role, wanted in ROLE_SCOPES.items():
        found = [g for g in grants if g.role == role]
        if not found:
            problems.append(f"role {role} is never granted (module with roleDefinitionId: roles.{role})")
        for grant in found:
            if grant.scope_type != wanted:
                problems.append(
                    f"role {role} is granted on {grant.scope_type} (main.bicep module {grant.module}); "
                    f"least privilege: grant it on each {wanted} the app uses"
                )
            missing = [expr for expr in covers[role] if expr == "null" or expr not in grant.loop_over]
            if missing and grant.scope_type == wanted:
                problems.append(
                    f"role {role} (main.bicep module {grant.module}) must loop over every entity the app "
                    f"uses ({', '.join(missing)}); it loops over {grant.loop_over or 'nothing'}"
                )
    return problems


# --------------------------------------------------------------------------------------------
# checkov
# --------------------------------------------------------------------------------------------


def run_checkov(directory: Path, external_checks_dir: Path | None = None) -> dict[str, Any]:
    """Run checkov on Bicep in `directory` (subprocess: checkov keeps global registries)."""
    checks_dir = external_checks_dir or directory / POLICIES_DIR
    command = [
        str(Path(sys.executable).with_name("checkov")),
        "--framework", "bicep", "--skip-download", "--compact", "-o", "json",
        "-d", str(directory), "--external-checks-dir", str(checks_dir),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise InfraCheckError(
            f"checkov produced no JSON report (exit {result.returncode}): {result.stderr[-2000:]}"
        ) from exc
    reports = report if isinstance(report, list) else [report]
    merged: dict[str, Any] = {"failed": [], "passed": [], "skipped": [], "parsing_errors": []}
    for item in reports:
        if "results" not in item:  # an empty scan yields a bare summary
            merged["parsing_errors"].extend(item.get("parsing_errors", []))
            continue
        merged["failed"].extend(item["results"].get("failed_checks", []))
        merged["passed"].extend(item["results"].get("passed_checks", []))
        merged["skipped"].extend(item["results"].get("skipped_checks", []))
        merged["parsing_errors"].extend(item["results"].get("parsing_errors", []))
    return merged


def checkov_problems(report: Mapping[str, Any]) -> list[str]:
    """Zero parsing errors and zero failed checks, each failure named with file and resource."""
    problems = [f"checkov could not parse {p}" for p in report["parsing_errors"]]
    for check in report["failed"]:
        problems.append(
            f"{check['check_id']} failed: {check['check_name']} "
            f"(resource {check['resource']} in {check['file_path']}, line {check['file_line_range'][0]})"
        )
    return problems


def check_skip_justifications(infra_dir: Path, min_reason: int = 20) -> list[str]:
    """A checkov skip is allowed only with a written reason in the .bicep file itself."""
    problems = []
    for path in bicep_files(infra_dir):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = _SKIP_COMMENT.search(line)
            if match and len((match.group(3) or "").strip()) < min_reason:
                problems.append(
                    f"{path}:{number}: checkov:skip={match.group(1)} has no justification; write "
                    f"`// checkov:skip={match.group(1)}: <why this does not apply>`"
                )
    return problems


# --------------------------------------------------------------------------------------------
# Settings: what the code reads, what Bicep sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeSetting:
    name: str
    section: str
    field: str
    required: bool
    secret: bool


def code_settings(sections: Mapping[str, type[BaseSettings]] | None = None) -> dict[str, CodeSetting]:
    """Every app setting a settings class reads (validation_alias), derived at test time."""
    if sections is None:
        from shared.settings import SECTIONS

        sections = SECTIONS
    found: dict[str, CodeSetting] = {}
    for section, cls in sections.items():
        for field_name, info in cls.model_fields.items():
            alias = info.validation_alias
            names: Iterable[str]
            if isinstance(alias, str):
                names = [alias]
            elif alias is not None and hasattr(alias, "choices"):
                names = [c for c in alias.choices if isinstance(c, str)]
            else:
                names = [field_name]
            secret = "SecretStr" in repr(info.annotation)
            for name in names:
                found[name] = CodeSetting(
                    name=name,
                    section=section,
                    field=field_name,
                    required=info.is_required(),
                    secret=secret or bool(_SECRET_NAME.search(name)),
                )
    return found


def load_local_settings(path: Path = LOCAL_SETTINGS_EXAMPLE) -> dict[str, str]:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))["Values"]
    except FileNotFoundError as exc:
        raise InfraCheckError(f"{path} does not exist") from exc
    except (json.JSONDecodeError, KeyError) as exc:
        raise InfraCheckError(f"{path}: not a local.settings JSON with a Values object ({exc})") from exc
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


@dataclass
class BicepAppSettings:
    """App settings of the function app module: name -> every expression Bicep may assign."""

    values: dict[str, list[Any]]
    module: Path

    def names(self) -> set[str]:
        return set(self.values)


def bicep_app_settings(infra_dir: Path) -> BicepAppSettings:
    """Collect the app settings names (and value expressions) of infra/modules/functionapp.bicep.

    Follows union(), conditional branches (both count), variables and loadJsonContent files;
    parameters such as additionalAppSettings (operator extras) contribute nothing.
    """
    module = infra_dir / FUNCTION_APP_MODULE
    if not module.is_file():
        raise InfraCheckError(f"{module} does not exist")
    tree = parse_bicep(module)
    config = None
    for resource in tree.get("resources", {}).values():
        body = resource.get("config", {})
        if resource.get("type") == "Microsoft.Web/sites/config" and body.get("name") == "appsettings":
            config = body
    if config is None:
        raise InfraCheckError(f"{module}: no Microsoft.Web/sites/config resource named 'appsettings'")
    variables = {name: entry["value"] for name, entry in tree.get("variables", {}).items()}
    values: dict[str, list[Any]] = {}

    def collect(node: Any, depth: int = 0) -> None:
        if depth > 20:
            return
        if isinstance(node, str):
            if node in variables:
                collect(variables[node], depth + 1)
            return
        if not isinstance(node, dict):
            return
        function = node.get("function")
        operator = node.get("operator")
        if function and function.get("type") == "union":
            for arg in function["parameters"].values():
                collect(arg, depth + 1)
        elif function and function.get("type") == "load_json_content":
            data_path = module.parent / function["parameters"]["file_path"]
            try:
                data = json.loads(data_path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise InfraCheckError(f"{data_path}: cannot load ({exc})") from exc
            for key, value in data.items():
                values.setdefault(key, []).append(value)
        elif operator and operator.get("type") == "conditional":
            collect(operator["operands"]["true_value"], depth + 1)
            collect(operator["operands"]["false_value"], depth + 1)
        elif operator and operator.get("type") == "equals":
            # pycep binds `a == b ? x : y` as `a == (b ? x : y)`; follow the conditional
            collect(operator["operands"]["operand_2"], depth + 1)
        elif not function and not operator:
            for key, value in node.items():
                values.setdefault(key, []).append(value)

    collect(config.get("properties"))
    return BicepAppSettings(values=values, module=module)


RESOLVED_SECRET = "resolved-key-vault-secret-0123456789"  # what a Key Vault reference turns into


class _Evaluator:
    """Evaluates the small Bicep subset the app settings use, over pycep's tree: identifiers,
    '${}' interpolation, property access, union, string, empty, ==, !, ?: and loadJsonContent.
    pycep gives identifiers and string literals alike as str: a declared param/var name is an
    identifier, anything else a literal."""

    def __init__(self, module: Path, tree: dict[str, Any], params: Mapping[str, Any]) -> None:
        self.module = module
        self.scope: dict[str, Any] = {}
        for name, spec in tree.get("parameters", {}).items():
            if name in params:
                self.scope[name] = params[name]
            elif spec.get("default") is not None:
                self.scope[name] = spec["default"]
        self.variables = {name: entry["value"] for name, entry in tree.get("variables", {}).items()}

    def identifier(self, name: str) -> Any:
        if name in self.scope:
            value = self.scope[name]
            if isinstance(value, dict) and ("function" in value or "operator" in value):
                return self.value(value)  # a param default that is an expression
            return value
        if name in self.variables:
            self.scope[name] = self.value(self.variables[name])
            return self.scope[name]
        raise InfraCheckError(f"{self.module}: cannot evaluate {name!r} (no value given for this param)")

    def value(self, node: Any) -> Any:
        if isinstance(node, (bool, int, float)) or node is None:
            return node
        if isinstance(node, str):
            if node in self.scope or node in self.variables:
                return self.identifier(node)
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self.path(m.group(1))), node)
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            raise InfraCheckError(f"{self.module}: cannot evaluate {node!r}")
        if "function" in node:
            return self.function(node["function"])
        if "operator" in node:
            return self.operator(node["operator"])
        return {key: self.value(item) for key, item in node.items()}

    def path(self, dotted: str) -> Any:
        head, *rest = dotted.split(".")
        current = self.identifier(head)
        for part in rest:
            current = current[part]
        return current

    def function(self, function: dict[str, Any]) -> Any:
        kind, args = function["type"], function.get("parameters", {})
        if kind == "union":
            merged: dict[str, Any] = {}
            for arg in args.values():
                merged.update(self.value(arg))
            return merged
        if kind == "string":
            value = self.value(args["value_to_convert"])
            return str(value).lower() if isinstance(value, bool) else str(value)
        if kind == "empty":
            return not self.value(args["item_to_test"])
        if kind == "load_json_content":
            return json.loads((self.module.parent / args["file_path"]).read_text(encoding="utf-8"))
        if kind == "environment":
            environment = {"authentication": {"loginEndpoint": "https://login.microsoftonline.com/"}}
            return environment[function["property_name"]] if function.get("property_name") else environment
        raise InfraCheckError(f"{self.module}: cannot evaluate function {kind}()")

    def operator(self, operator: dict[str, Any]) -> Any:
        kind, ops = operator["type"], operator["operands"]
        if kind == "conditional":
            branch = "true_value" if self.value(ops["condition"]) else "false_value"
            return self.value(ops[branch])
        if kind == "equals":
            second = ops["operand_2"]
            if isinstance(second, dict) and second.get("operator", {}).get("type") == "conditional":
                # pycep binds `a == b ? x : y` as `a == (b ? x : y)`: re-associate
                inner = second["operator"]["operands"]
                condition = self.value(ops["operand_1"]) == self.value(inner["condition"])
                return self.value(inner["true_value"] if condition else inner["false_value"])
            return self.value(ops["operand_1"]) == self.value(second)
        if kind == "not":
            return not self.value(ops["bool_value"])
        if kind == "property_accessor":
            target = self.value(ops["operand_1"])
            return target[ops["operand_2"]]
        raise InfraCheckError(f"{self.module}: cannot evaluate operator {kind}")


def azure_app_settings(infra_dir: Path, params: Mapping[str, Any]) -> dict[str, str]:
    """The app settings the function app module would produce for `params` (the module's
    parameters), with every Key Vault reference replaced by a resolved secret value."""
    module = infra_dir / FUNCTION_APP_MODULE
    tree = parse_bicep(module)
    for resource in tree.get("resources", {}).values():
        body = resource.get("config", {})
        if resource.get("type") == "Microsoft.Web/sites/config" and body.get("name") == "appsettings":
            settings = _Evaluator(module, tree, params).value(body["properties"])
            return {
                key: RESOLVED_SECRET if str(value).startswith(KEY_VAULT_REFERENCE) else str(value)
                for key, value in settings.items()
            }
    raise InfraCheckError(f"{module}: no Microsoft.Web/sites/config resource named 'appsettings'")


def _secret_name_keys(infra_dir: Path) -> set[str]:
    main = parse_bicep(infra_dir / "main.bicep")
    secret_names = main.get("variables", {}).get("secretNames", {}).get("value", {})
    return set(secret_names) if isinstance(secret_names, dict) else set()


def check_settings_in_bicep(
    infra_dir: Path,
    settings: Mapping[str, CodeSetting],
    trigger_settings: Iterable[str] = (),
) -> list[str]:
    """Every setting the code reads is set by Bicep (secrets as Key Vault references) and
    Bicep sets nothing that nobody reads."""
    try:
        bicep = bicep_app_settings(infra_dir)
        secret_keys = _secret_name_keys(infra_dir)
    except InfraCheckError as exc:
        return [str(exc)]
    problems = []
    module = bicep.module.relative_to(infra_dir.parent)
    for name, setting in sorted(settings.items()):
        if name in NOT_SET_IN_AZURE:
            continue
        if name not in bicep.values:
            problems.append(
                f"{name} ({setting.section}.{setting.field}) is read by the code but not set by {module}: "
                f"add it to the appsettings there (or infra/app-settings.json for a tunable), or to "
                f"NOT_SET_IN_AZURE in tests/infra/infra_checks.py with the reason"
            )
            continue
        if setting.secret:
            for value in bicep.values[name]:
                if not (isinstance(value, str) and value.startswith(KEY_VAULT_REFERENCE)):
                    problems.append(
                        f"{name} is a secret but {module} sets it to {_show(value)}; use "
                        f"'@Microsoft.KeyVault(VaultName=${{keyVaultName}};SecretName=...)'"
                    )
                    continue
                used = re.search(r"SecretName=\$\{secretNames\.([A-Za-z0-9_]+)\}", value)
                if not used or used.group(1) not in secret_keys:
                    problems.append(
                        f"{name}: Key Vault reference {value!r} must name a secret from secretNames in "
                        f"infra/main.bicep (known: {sorted(secret_keys)})"
                    )
    readers = set(settings) | set(PLATFORM_SETTINGS) | set(trigger_settings)
    for name in sorted(bicep.names() - readers):
        problems.append(
            f"{name} is set by {module} but read by nothing: no settings class, trigger binding or "
            f"platform component (PLATFORM_SETTINGS) uses it; remove it or fix its name"
        )
    return problems


def _show(value: Any) -> str:
    return repr(value) if _literal(value) else "an expression"


def check_settings_in_local_example(
    settings: Mapping[str, CodeSetting], local_values: Mapping[str, str], trigger_settings: Iterable[str] = ()
) -> list[str]:
    """Every setting the code reads has a key in local.settings.example.json."""
    problems = []
    for name in sorted(set(settings) | set(trigger_settings)):
        if name not in local_values:
            known = settings.get(name)
            where = f" ({known.section}.{known.field})" if known else " (trigger binding)"
            problems.append(f"{name}{where} is read by the code but missing from local.settings.example.json")
    return problems


def check_tunables_valid(infra_dir: Path, local_values: Mapping[str, str]) -> list[str]:
    """Values in infra/app-settings.json pass the code's own validation."""
    from shared.settings import SettingsError, load_settings

    path = infra_dir / "app-settings.json"
    try:
        tunables = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{path}: cannot load ({exc})"]
    not_strings = [k for k, v in tunables.items() if not isinstance(v, str)]
    problems = [f"{path}: {k} must be a string (app settings are strings)" for k in not_strings]
    environ = {**local_values, **{k: str(v) for k, v in tunables.items()}}
    try:
        load_settings(environ)
    except SettingsError as exc:
        problems.extend(f"{path}: {p}" for p in exc.problems if p.split(":", 1)[0] in tunables)
    return problems


def tunable_defaults(settings: Mapping[str, CodeSetting] | None = None) -> dict[str, str]:
    """The code defaults of optional settings that are plain tunables (for infra/app-settings.json)."""
    from shared.settings import SECTIONS

    settings = settings if settings is not None else code_settings()
    explicit = bicep_app_settings(INFRA_DIR).values if (INFRA_DIR / FUNCTION_APP_MODULE).exists() else {}
    tunables: dict[str, str] = {}
    for name, setting in sorted(settings.items()):
        info = SECTIONS[setting.section].model_fields[setting.field]
        if setting.required or setting.secret or name in NOT_SET_IN_AZURE or info.default is None:
            continue
        if name in explicit and not _only_from_tunables(name):
            continue
        default = info.default
        tunables[name] = str(default).lower() if isinstance(default, bool) else str(default)
    return tunables


def _only_from_tunables(name: str) -> bool:
    path = INFRA_DIR / "app-settings.json"
    return path.is_file() and name in json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# Topology <-> Bicep <-> Service Bus triggers
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceBusTrigger:
    function: str
    topic: str
    subscription: str
    connection: str


_FUNCTIONS: dict[int, tuple[Any, list[Any]]] = {}


def _functions_of(app: Any) -> list[Any]:
    # FunctionApp.get_functions() builds blueprint functions again on every call and then
    # rejects the duplicates, so list them once per app.
    if id(app) not in _FUNCTIONS or _FUNCTIONS[id(app)][0] is not app:
        _FUNCTIONS[id(app)] = (app, app.get_functions())
    return _FUNCTIONS[id(app)][1]


def function_bindings(app: Any) -> list[tuple[str, dict[str, Any]]]:
    """(function name, binding dict) for every binding of an azure.functions FunctionApp."""
    found = []
    for function in _functions_of(app):
        for binding in json.loads(function.get_function_json())["bindings"]:
            found.append((function.get_function_name(), binding))
    return found


def service_bus_triggers(app: Any) -> list[ServiceBusTrigger]:
    return [
        ServiceBusTrigger(
            function=name,
            topic=str(binding.get("topicName") or binding.get("queueName") or ""),
            subscription=str(binding.get("subscriptionName") or ""),
            connection=str(binding.get("connection") or ""),
        )
        for name, binding in function_bindings(app)
        if binding.get("type") == "serviceBusTrigger"
    ]


def binding_setting_references(app: Any) -> set[str]:
    """Names of app settings referenced as %NAME% by any binding (topics, schedules, ...)."""
    names: set[str] = set()
    for _, binding in function_bindings(app):
        for value in binding.values():
            if isinstance(value, str):
                names.update(_SETTING_REFERENCE.findall(value))
    return names


def check_triggers_match_topology(
    app: Any, topology: Any, local_values: Mapping[str, str], bicep_setting_names: set[str]
) -> list[str]:
    """Every Service Bus trigger reads a topic/subscription of the topology, and every topology
    subscription is read by exactly one trigger. %Setting% names resolve through
    local.settings.example.json; in Azure the same settings must be set by Bicep."""
    problems: list[str] = []
    topic_by_setting = {t.setting: t.name for t in topology.topics}
    expected = topology.subscription_names()
    seen: dict[tuple[str, str], list[str]] = {}

    def resolve(function: str, what: str, raw: str) -> str | None:
        match = re.fullmatch(r"%([^%]+)%", raw)
        if not match:
            return raw
        setting = match.group(1)
        if setting not in bicep_setting_names:
            problems.append(
                f"function {function}: {what} setting {setting} is not set by the Bicep app settings"
            )
        if what == "topic" and setting in topic_by_setting:
            local = local_values.get(setting)
            if local is not None and local != topic_by_setting[setting]:
                problems.append(
                    f"function {function}: local.settings.example.json sets {setting}={local!r} but "
                    f"infra/topology.json names that topic {topic_by_setting[setting]!r}"
                )
            return topic_by_setting[setting]
        if setting not in local_values:
            problems.append(
                f"function {function}: {what} setting {setting} is not in local.settings.example.json"
            )
            return None
        return local_values[setting]

    for trigger in service_bus_triggers(app):
        topic = resolve(trigger.function, "topic", trigger.topic)
        subscription = resolve(trigger.function, "subscription", trigger.subscription)
        if f"{trigger.connection}__fullyQualifiedNamespace" not in bicep_setting_names:
            problems.append(
                f"function {trigger.function}: connection {trigger.connection!r} has no "
                f"{trigger.connection}__fullyQualifiedNamespace app setting in Bicep"
            )
        if topic is None or subscription is None:
            continue
        known_topics = {t.name for t in topology.topics}
        if topic not in known_topics:
            problems.append(
                f"function {trigger.function} triggers on topic {topic!r}, which infra/topology.json "
                f"does not define (topics: {sorted(known_topics)})"
            )
            continue
        if (topic, subscription) not in expected:
            subs = sorted(s for t, s in expected if t == topic)
            problems.append(
                f"function {trigger.function} triggers on subscription {topic}/{subscription}, which "
                f"infra/topology.json does not define (subscriptions of {topic}: {subs}); add it to "
                f"the topology so Bicep and the local bus create it"
            )
            continue
        seen.setdefault((topic, subscription), []).append(trigger.function)
    for topic, subscription in sorted(expected - set(seen)):
        problems.append(
            f"subscription {topic}/{subscription} in infra/topology.json has no Service Bus trigger in "
            f"function_app: its messages would pile up and dead-letter; add the flow or remove it"
        )
    for (topic, subscription), functions in sorted(seen.items()):
        if len(functions) > 1:
            problems.append(
                f"subscription {topic}/{subscription} is read by several functions {sorted(functions)}: "
                f"one subscription per flow, or they compete for the same messages"
            )
    return problems


def check_topology_rules(topology: Any) -> list[str]:
    """Design rules the topology must keep (DESIGN §5-6): dead-lettering, duplicate detection,
    and a rule that lets a resubmitted copy with replay_to target exactly this subscription."""
    problems = []
    for topic in topology.topics:
        if not topic.requires_duplicate_detection:
            problems.append(f"topic {topic.name}: requiresDuplicateDetection must be true")
        for sub in topic.subscriptions:
            where = f"subscription {topic.name}/{sub.name}"
            if not sub.dead_lettering_on_message_expiration:
                problems.append(f"{where}: deadLetteringOnMessageExpiration must be true")
            if not sub.dead_lettering_on_filter_evaluation_exceptions:
                problems.append(f"{where}: deadLetteringOnFilterEvaluationExceptions must be true")
            if f"replay_to = '{sub.name}'" not in sub.rule.sql_filter:
                problems.append(
                    f"{where}: rule must accept copies with replay_to = '{sub.name}' "
                    f"(and replay_to IS NULL); got {sub.rule.sql_filter!r}"
                )
    return problems


def check_bicep_uses_topology(infra_dir: Path, topology: Any) -> list[str]:
    """main.bicep loads topology.json and passes its topics on; the topic module takes every
    entity property from the topology; each topic's setting reaches the app settings."""
    problems: list[str] = []
    try:
        main = parse_bicep(infra_dir / "main.bicep")
        topic_module = parse_bicep(infra_dir / TOPIC_MODULE)
        app_settings = bicep_app_settings(infra_dir)
    except InfraCheckError as exc:
        return [str(exc)]
    loads = [
        name for name, entry in main.get("variables", {}).items()
        if isinstance(entry["value"], dict)
        and entry["value"].get("function", {}).get("type") == "load_json_content"
        and entry["value"]["function"]["parameters"]["file_path"] == "topology.json"
    ] if isinstance(main.get("variables"), dict) else []
    if not loads:
        problems.append("infra/main.bicep: no `var ... = loadJsonContent('topology.json')`")
    dumped = json.dumps(topic_module.get("resources", {}))
    wiring = {
        "sub.lockDuration": '"operand_1": "sub", "operand_2": "lockDuration"',
        "sub.maxDeliveryCount": '"operand_1": "sub", "operand_2": "maxDeliveryCount"',
        "sub.deadLetteringOnMessageExpiration": '"operand_2": "deadLetteringOnMessageExpiration"',
        "sub.deadLetteringOnFilterEvaluationExceptions":
            '"operand_2": "deadLetteringOnFilterEvaluationExceptions"',
        "topic.requiresDuplicateDetection": '"operand_2": "requiresDuplicateDetection"',
        "sub.rule.sqlFilter": '"operand_2": "sqlFilter"',
    }
    for expression, needle in wiring.items():
        if needle not in dumped:
            problems.append(f"{TOPIC_MODULE}: must take {expression} from the topology")
    module_params = main.get("modules", {}).get("functionApp", {}).get("config", {}).get("params", {})
    for topic in topology.topics:
        carrying = [p for p, v in module_params.items() if f'"{topic.setting}"' in json.dumps(v)]
        if topic.setting not in app_settings.values:
            problems.append(
                f"topic setting {topic.setting} (topic {topic.name}) is not an app setting in Bicep"
            )
        elif not carrying or not any(v == carrying[0] for v in app_settings.values[topic.setting]):
            problems.append(
                f"app setting {topic.setting} must take the topic name from topology.json "
                f"(first(filter(topology.topics, t => t.setting == '{topic.setting}')).name in main.bicep)"
            )
    return problems


if __name__ == "__main__":
    # `python -m tests.infra.infra_checks app-settings` prints the code defaults of every tunable,
    # the content infra/app-settings.json should start from when settings are added.
    if sys.argv[1:] == ["app-settings"]:
        print(json.dumps(tunable_defaults(), indent=2))
    else:
        print("usage: python -m tests.infra.infra_checks app-settings", file=sys.stderr)
        sys.exit(2)
