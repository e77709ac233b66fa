"""Configuration of the local Functions host: local.settings.json, host.json and %Setting% values.

Mirrors what Azure Functions Core Tools does before it starts the worker:
- `Values` of local.settings.json become environment variables, but a variable that is
  already set in the real environment wins;
- host.json is read with its documented defaults, and any value can be overridden by an
  app setting named `AzureFunctionsJobHost__<path>` (`__` separates the levels);
- binding values written as `%Name%` are replaced by the app setting `Name`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

LOCAL_SETTINGS_FILE = "local.settings.json"
LOCAL_SETTINGS_EXAMPLE_FILE = "local.settings.example.json"
HOST_JSON_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"

_TIMESPAN = re.compile(
    r"^(?P<neg>-)?(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d+)?)$"
)
_PLACEHOLDER = re.compile(r"%([^%]+)%")


class HostConfigError(RuntimeError):
    """The host cannot start: a settings file, host.json value or app setting is wrong or missing."""


def load_local_settings(project_root: Path, path: Path | None = None) -> tuple[dict[str, str], Path]:
    """Read `Values` from local.settings.json, falling back to local.settings.example.json.

    Returns the values (all as strings) and the file they came from.
    """
    candidates = (
        [path]
        if path is not None
        else [
            project_root / LOCAL_SETTINGS_FILE,
            project_root / LOCAL_SETTINGS_EXAMPLE_FILE,
        ]
    )
    for candidate in candidates:
        if candidate is not None and candidate.is_file():
            return _read_values(candidate), candidate
    names = " or ".join(str(c) for c in candidates if c is not None)
    raise HostConfigError(f"no settings file found: expected {names}")


def _read_values(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise HostConfigError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(raw, dict):
        raise HostConfigError(f"{path}: expected a JSON object with a 'Values' object")
    values = raw.get("Values", {})
    if not isinstance(values, dict):
        raise HostConfigError(f"{path}: 'Values' must be an object of setting names to values")
    result: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, dict | list):
            raise HostConfigError(f"{path}: Values.{key} must be a string, number or boolean")
        if value is None:
            continue
        result[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return result


def local_http_port(path: Path) -> int | None:
    """`Host.LocalHttpPort` of a local.settings file (Core Tools' default port), if set."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    value = raw.get("Host", {}).get("LocalHttpPort") if isinstance(raw.get("Host"), dict) else None
    if value is None:
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not 0 <= port <= 65535:
        raise HostConfigError(f"{path}: Host.LocalHttpPort {value!r} is not a port number")
    return port


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy settings into the environment without overwriting variables already set there.

    Returns the names that were added, so a caller can remove them again.
    """
    env = os.environ if environ is None else environ
    added = []
    for key, value in values.items():
        if key not in env:
            env[key] = value
            added.append(key)
    return added


def parse_timespan(value: str | int | float, field: str) -> timedelta | None:
    """Parse a .NET TimeSpan as host.json writes it ("00:05:00", "1.00:00:00").

    A negative value (the documented "-00:00:00.0010000") means infinite and returns None.
    """
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    match = _TIMESPAN.match(str(value).strip())
    if not match:
        raise HostConfigError(f"host.json {field}: {value!r} is not a timespan such as 00:05:00")
    if match["neg"]:
        return None
    return timedelta(
        days=int(match["days"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=float(match["s"]),
    )


@dataclass(frozen=True)
class ServiceBusOptions:
    """host.json extensions.serviceBus, with the extension's defaults."""

    auto_complete_messages: bool = True
    max_concurrent_calls: int = 16 * (os.cpu_count() or 1)
    max_message_batch_size: int = 1000
    min_message_batch_size: int = 1
    max_batch_wait_time: timedelta = timedelta(seconds=30)
    # None = renew for as long as the function runs.
    max_auto_lock_renewal_duration: timedelta | None = timedelta(minutes=5)


@dataclass(frozen=True)
class HostOptions:
    """The parts of host.json the local host acts on."""

    route_prefix: str = "api"
    service_bus: ServiceBusOptions = ServiceBusOptions()
    function_timeout: timedelta | None = None
    raw: Mapping[str, Any] | None = None


def load_host_json(
    source: Path | Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> HostOptions:
    """Build HostOptions from a host.json path or dict (None = defaults), then apply overrides."""
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = json.loads(json.dumps(source))
    else:
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise HostConfigError(f"host.json not found: {source}") from exc
        except json.JSONDecodeError as exc:
            raise HostConfigError(f"{source}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(data, dict):
        raise HostConfigError("host.json must be a JSON object")
    _apply_overrides(data, os.environ if environ is None else environ)

    extensions = _section(data, "extensions")
    http = _section(extensions, "http")
    sb = _section(extensions, "serviceBus")
    defaults = ServiceBusOptions()

    def positive_int(key: str, default: int) -> int:
        value = _get(sb, key, default)
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            raise HostConfigError(
                f"host.json extensions.serviceBus.{key}: {value!r} must be a whole number >= 1"
            )
        return number

    auto_complete = _get(sb, "autoCompleteMessages", True)
    if isinstance(auto_complete, str):
        auto_complete = auto_complete.strip().lower() == "true"
    batch_wait = parse_timespan(
        _get(sb, "maxBatchWaitTime", "00:00:30"), "extensions.serviceBus.maxBatchWaitTime"
    )
    service_bus = ServiceBusOptions(
        auto_complete_messages=bool(auto_complete),
        max_concurrent_calls=positive_int("maxConcurrentCalls", defaults.max_concurrent_calls),
        max_message_batch_size=positive_int("maxMessageBatchSize", defaults.max_message_batch_size),
        min_message_batch_size=positive_int("minMessageBatchSize", defaults.min_message_batch_size),
        max_batch_wait_time=batch_wait if batch_wait is not None else defaults.max_batch_wait_time,
        max_auto_lock_renewal_duration=parse_timespan(
            _get(sb, "maxAutoLockRenewalDuration", "00:05:00"),
            "extensions.serviceBus.maxAutoLockRenewalDuration",
        ),
    )
    if service_bus.min_message_batch_size > service_bus.max_message_batch_size:
        raise HostConfigError(
            "host.json extensions.serviceBus.minMessageBatchSize must not exceed maxMessageBatchSize"
        )
    prefix = str(_get(http, "routePrefix", "api")).strip("/")
    timeout = data.get("functionTimeout")
    return HostOptions(
        route_prefix=prefix,
        service_bus=service_bus,
        function_timeout=parse_timespan(timeout, "functionTimeout") if timeout is not None else None,
        raw=data,
    )


def _section(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = _get(data, key, {})
    if not isinstance(value, dict):
        raise HostConfigError(f"host.json {key} must be an object")
    return value


def _get(data: Mapping[str, Any], key: str, default: Any) -> Any:
    # host.json keys are case-insensitive in the Functions host.
    for candidate, value in data.items():
        if candidate.lower() == key.lower():
            return value
    return default


def _apply_overrides(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(HOST_JSON_OVERRIDE_PREFIX):
            continue
        path = [p for p in name[len(HOST_JSON_OVERRIDE_PREFIX) :].split("__") if p]
        node = data
        for part in path[:-1]:
            existing = next((k for k in node if k.lower() == part.lower()), part)
            child = node.get(existing)
            if not isinstance(child, dict):
                child = {}
                node[existing] = child
            node = child
        if path:
            existing = next((k for k in node if k.lower() == path[-1].lower()), path[-1])
            node[existing] = _coerce(value)


def _coerce(value: str) -> Any:
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(value)
    except ValueError:
        return value


def resolve_placeholders(value: Any, environ: Mapping[str, str], where: str) -> Any:
    """Replace every %Name% in a binding value by the app setting Name (missing -> error)."""
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise HostConfigError(f"{where}: app setting {name!r} is not set (referenced as %{name}%)")
        return environ[name]

    return _PLACEHOLDER.sub(replace, value)
