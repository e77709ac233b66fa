"""What every syncctl command shares and nothing above it: the --settings option, one-line
errors (exit 2), the settings file and environment, the bus settings and the subscriptions a
command works on, and who the operator is. Imported by dlq, common, review and the rest;
imports no other syncctl command module (no import cycles: tests/unit/test_imports.py)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, Topology, TopologyError, load_topology
from shared.settings import BusSettings

ROOT = Path(__file__).resolve().parents[1]

SettingsOpt = typer.Option(
    None,
    "--settings",
    help="local.settings.json-style file (default: local.settings.json, else the example); "
    "environment variables win over its Values",
)


def _console() -> Console:
    # Created per command so COLUMNS / terminal width are read at run time.
    return Console(highlight=False, soft_wrap=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(2)


def _environment(settings_file: Path | None) -> tuple[dict[str, str], Path | None]:
    from syncctl.settings_file import load_settings_file

    path = settings_file
    if path is None:
        for candidate in (ROOT / "local.settings.json", ROOT / "local.settings.example.json"):
            if candidate.exists():
                path = candidate
                break
    try:
        values = load_settings_file(path) if path is not None else {}
    except typer.BadParameter as exc:
        raise _fail(str(exc)) from None
    return {**values, **os.environ}, path


def _bus_settings(env: dict[str, str], source: Path | None) -> BusSettings:
    try:
        settings = BusSettings.model_validate(env)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            field = BusSettings.model_fields.get(name)
            alias = field.validation_alias if field is not None else None
            problems.append(f"{alias if isinstance(alias, str) else name or 'bus settings'}: {err['msg']}")
        raise _fail("invalid bus settings: " + "; ".join(problems)) from None
    if settings.backend == "local" and not Path(settings.local_path).is_absolute():
        # Relative paths are relative to the settings file, like the local host's project root.
        base = source.parent if source is not None else Path.cwd()
        settings = settings.model_copy(update={"local_path": str(base / settings.local_path)})
    return settings


def _targets(
    topology: Topology, env: dict[str, str], backend: str, topic: str | None, subscription: str | None
) -> list[tuple[str, str]]:
    topics = topology.topics
    if topic is not None:
        topics = [t for t in topics if t.name == topic or env.get(t.setting) == topic]
        if not topics:
            known = ", ".join(t.name for t in topology.topics)
            raise _fail(f"unknown topic {topic!r} (topology has: {known})")
    targets = []
    for t in topics:
        # In Azure the topic's real name comes from its app setting (e.g. BRIGHTPEARL_CHANGES_TOPIC).
        name = env.get(t.setting) or t.name if backend == "servicebus" else t.name
        for sub in t.subscriptions:
            if subscription is None or sub.name == subscription:
                targets.append((name, sub.name))
    if not targets:
        raise _fail(f"no subscription {subscription!r} in {'topic ' + topic if topic else 'the topology'}")
    return targets


def resolve(
    settings_file: Path | None, topology_file: Path | None, topic: str | None, subscription: str | None
) -> tuple[BusSettings, Topology, list[tuple[str, str]]]:
    """Bus settings, topology and the (topic, subscription) pairs a command works on
    (shared by `syncctl dlq` and `syncctl bus`)."""
    env, source = _environment(settings_file)
    settings = _bus_settings(env, source)
    try:
        topology = load_topology(topology_file or DEFAULT_TOPOLOGY_PATH)
    except TopologyError as exc:
        raise _fail(str(exc)) from None
    return settings, topology, _targets(topology, env, settings.backend, topic, subscription)


def actor() -> str:
    """Who acts, for the audit of an operator's action."""
    try:
        return f"syncctl ({getpass.getuser()})"
    except (KeyError, OSError):
        return "syncctl"
