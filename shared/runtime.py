"""Process-wide adapters built once from settings (the composition root of the function app).

Functions get the settings, the bus publisher and the state store from here; tests and the
sandbox replace them with `override(...)`. Everything is built lazily on first use, so a
missing setting fails the first invocation with a SettingsError that names it, and
`function_app.py` validates all settings at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from shared.bus.port import BusPublisher
from shared.events import now_utc
from shared.settings import AppSettings, get_settings

_lock = threading.Lock()
_instances: dict[str, Any] = {}


def settings() -> AppSettings:
    if "settings" in _instances:
        return _instances["settings"]
    return get_settings()


def clock() -> datetime:
    """Now (UTC); the sandbox's tests replace it to move time without sleeping."""
    if "clock" in _instances:
        return _instances["clock"]()
    return now_utc()


def publisher() -> BusPublisher:
    with _lock:
        if "publisher" not in _instances:
            from shared.bus.factory import build_publisher

            _instances["publisher"] = build_publisher(settings().bus)
        return _instances["publisher"]


def state_store() -> Any:
    with _lock:
        if "state_store" not in _instances:
            from shared.store import StateStore

            # ensure_tables: a fresh account (or Azurite) gets its four tables on first use
            _instances["state_store"] = StateStore.from_settings(settings().store, ensure_tables=True)
        return _instances["state_store"]


def brightpearl() -> Any:
    """The Brightpearl client of this process (one rate budget per account), built on first use."""
    with _lock:
        if "brightpearl" not in _instances:
            from shared.brightpearl.client import BrightpearlClient

            _instances["brightpearl"] = BrightpearlClient.from_settings(settings().brightpearl)
        return _instances["brightpearl"]


def dataverse() -> Any:
    """The Dataverse client of this process, built on first use."""
    with _lock:
        if "dataverse" not in _instances:
            from shared.dataverse.client import DataverseClient

            _instances["dataverse"] = DataverseClient.from_settings(settings().dataverse)
        return _instances["dataverse"]


def customer_mapping() -> Any:
    """The validated customer mapping (CUSTOMER_MAPPING_PATH), cached per file version.

    A relative path is resolved against the app root (the folder of function_app.py), so the
    same setting works in Azure and in the sandbox.
    """
    if "customer_mapping" in _instances:
        return _instances["customer_mapping"]
    from pathlib import Path

    from shared.mapping import load_customer_mapping

    path = Path(settings().customers.mapping_path)
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[1] / path
    return load_customer_mapping(path)


@contextmanager
def override(**instances: Any) -> Iterator[None]:
    """Temporarily replace adapters: override(settings=..., publisher=..., state_store=..., clock=...,
    brightpearl=..., dataverse=..., customer_mapping=...)."""
    with _lock:
        saved = dict(_instances)
        _instances.update(instances)
    try:
        yield
    finally:
        with _lock:
            _instances.clear()
            _instances.update(saved)


def reset() -> None:
    """Forget built adapters (closing the publisher)."""
    with _lock:
        pub = _instances.pop("publisher", None)
        _instances.clear()
    if pub is not None:
        pub.close()
