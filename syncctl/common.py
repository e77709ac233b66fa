"""What the operator-loop commands share: the app settings, the state store and the bus reader,
each failing as one line naming the problem (syncctl.errors)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from syncctl.base import _environment, _fail, resolve

if TYPE_CHECKING:
    from shared.ops.busview import BusMessage
    from shared.settings import AppSettings


def app_settings(settings_file: Path | None) -> AppSettings:
    """The app settings: the settings file's values, then the environment (which wins)."""
    from shared.settings import SettingsError, load_settings

    env, _ = _environment(settings_file)
    try:
        return load_settings(env)
    except SettingsError as exc:
        raise _fail("settings are not valid: " + "; ".join(exc.problems)) from None


def bus_reader(
    settings_file: Path | None, topology_file: Path | None, subscriptions: Iterable[str] | None = None
) -> Callable[[set[str]], Sequence[BusMessage]]:
    """Reads the bus messages naming some ids on `subscriptions` (default: every one)."""
    from shared.ops.busview import bus_messages

    settings, topology, targets = resolve(settings_file, topology_file, None, None)
    if subscriptions is not None:
        names = set(subscriptions)
        targets = [(t, s) for t, s in targets if s in names]

    def read(ids: set[str]) -> Sequence[BusMessage]:
        return bus_messages(settings, topology, targets, ids=ids)

    return read


def output(as_json: bool = False) -> Console:
    """A console that does not fold ids when piped or captured."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=max(console.width, 160))
    return console


def echo_json(value: Any) -> None:
    import json

    typer.echo(json.dumps(value, indent=2, default=str))
