"""Process-wide adapters built once from settings (the composition root of the function app).

Functions get the settings, the bus publisher, the state store and the two API clients from
here, and build flows and pollers from their specs (`build_flow`, `build_poller`); tests and
the sandbox replace adapters with `override(...)`. Everything is built lazily on first use, so a
missing setting fails the first invocation with a SettingsError that names it, and
`function_app.py` validates all settings at start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from shared.bus.port import BusPublisher
from shared.events import Envelope, now_utc
from shared.settings import AppSettings, get_settings
from shared.telemetry import get_logger

if TYPE_CHECKING:
    from shared.brightpearl.client import BrightpearlClient
    from shared.dataverse.client import DataverseClient
    from shared.mapping import CustomerMapping
    from shared.outcomes import Outcome
    from shared.store import StateStore
    from shared.sync.spec import FlowSpec, PollerSpec

log = get_logger("runtime")

_lock = threading.Lock()
_instances: dict[str, Any] = {}


def settings() -> AppSettings:
    if "settings" in _instances:
        return cast(AppSettings, _instances["settings"])
    return get_settings()


def clock() -> datetime:
    """Now (UTC); the sandbox's tests replace it to move time without sleeping."""
    if "clock" in _instances:
        return cast(datetime, _instances["clock"]())
    return now_utc()


def publisher() -> BusPublisher:
    with _lock:
        if "publisher" not in _instances:
            from shared.bus.factory import build_publisher

            _instances["publisher"] = build_publisher(settings().bus)
        return cast(BusPublisher, _instances["publisher"])


def state_store() -> StateStore:
    with _lock:
        if "state_store" not in _instances:
            from shared.store import StateStore

            # ensure_tables: a fresh account (or Azurite) gets its four tables on first use
            _instances["state_store"] = StateStore.from_settings(settings().store, ensure_tables=True)
        return cast("StateStore", _instances["state_store"])


def brightpearl() -> BrightpearlClient:
    """The Brightpearl client of this process, built on first use. Its rate budget is shared by
    every instance through the state store's cursors table (BRIGHTPEARL_SHARED_BUDGET, default
    on), else one per account in this process."""
    with _lock:
        if "brightpearl" in _instances:
            return cast("BrightpearlClient", _instances["brightpearl"])
    bp_settings = settings().brightpearl
    # state_store() takes _lock; a stand-in store without a cursors table (tests) gets none.
    table = _budget_table() if bp_settings.shared_budget else None
    with _lock:
        if "brightpearl" not in _instances:
            from shared.brightpearl.client import BrightpearlClient

            _instances["brightpearl"] = BrightpearlClient.from_settings(bp_settings, budget_table=table)
        return cast("BrightpearlClient", _instances["brightpearl"])


def _budget_table() -> Any:
    """The cursors table the shared Brightpearl budget lives in; None when the state store cannot
    be reached (an operator's command that needs only Brightpearl, e.g. `syncctl mapping
    preview`, still runs, keeping a budget of its own, and says so)."""
    from shared.store.errors import StoreError

    try:
        cursors = getattr(state_store(), "cursors", None)
    except StoreError as exc:
        log.warning("Brightpearl budget not shared: the state store is unreachable (%s)", exc)
        return None
    return getattr(cursors, "table", None)


def dataverse() -> DataverseClient:
    """The Dataverse client of this process, built on first use."""
    with _lock:
        if "dataverse" not in _instances:
            from shared.dataverse.client import DataverseClient

            _instances["dataverse"] = DataverseClient.from_settings(settings().dataverse)
        return cast("DataverseClient", _instances["dataverse"])


def customer_mapping() -> CustomerMapping:
    """The validated customer mapping (CUSTOMER_MAPPING_PATH), cached per file version.

    A relative path is resolved against the app root (the folder of function_app.py), so the
    same setting works in Azure and in the sandbox.
    """
    if "customer_mapping" in _instances:
        return cast("CustomerMapping", _instances["customer_mapping"])
    from shared.mapping import load_customer_mapping

    return load_customer_mapping(app_file(settings().customers.mapping_path))


def app_file(setting_value: str) -> Path:
    """A file a setting names: a relative path is resolved against the app root (the folder of
    function_app.py), so one value works in Azure and in the sandbox."""
    path = Path(setting_value)
    return path if path.is_absolute() else Path(__file__).resolve().parents[1] / path


def topic(setting: str) -> str:
    """The topic name an app setting (BRIGHTPEARL_CHANGES_TOPIC, DATAVERSE_CHANGES_TOPIC) holds."""
    bus = settings().bus
    topics = {
        "BRIGHTPEARL_CHANGES_TOPIC": bus.brightpearl_changes_topic,
        "DATAVERSE_CHANGES_TOPIC": bus.dataverse_changes_topic,
    }
    if setting not in topics:
        raise KeyError(f"{setting} is not a topic setting; known: {', '.join(topics)}")
    return topics[setting]


def publisher_to(topic_setting: str) -> Callable[[list[Envelope]], None]:
    """Publish envelopes to the topic `topic_setting` names (resolved at each call)."""

    def publish(envelopes: list[Envelope]) -> None:
        if envelopes:
            publisher().publish(topic(topic_setting), [e.to_message() for e in envelopes])

    return publish


def dataverse_source() -> str:
    """The `source` of Dataverse change notices: /dataverse/<organization id or host>."""
    s = settings().dataverse
    return f"/dataverse/{s.organization_id or s.url.split('//')[-1].split('/')[0]}"


class _Handles(Protocol):
    name: str

    def handle(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]: ...


class _FlowClass(Protocol):
    def from_runtime(self) -> _Handles: ...


class _Poller(Protocol):
    def poll(self) -> object: ...


class _PollerClass(Protocol):
    def from_runtime(self) -> _Poller: ...


class FreshFlow:
    """Builds the flow from the current runtime adapters for every batch (construction is cheap),
    so settings, clients and the mapping file can change without a restart."""

    def __init__(self, spec: FlowSpec) -> None:
        self.name = spec.name
        self.spec = spec

    def handle(self, envelopes: Sequence[Envelope]) -> Sequence[Outcome]:
        return build_flow(self.spec).handle(envelopes)


def build_flow(spec: FlowSpec) -> _Handles:
    """The flow a spec names, built from this process's adapters (its class's from_runtime)."""
    from shared.sync.spec import load

    return cast("_FlowClass", load(spec.flow)).from_runtime()


def run_poller(spec: PollerSpec) -> None:
    """Build the poller a spec names and run it once; a transient failure (throttling, 5xx,
    network) is logged and left to the next run (cursors only move after a publish, so
    nothing is skipped). Anything else is raised."""
    from shared.resilience import classify
    from shared.sync.spec import load

    try:
        cast("_PollerClass", load(spec.poller)).from_runtime().poll()
    except Exception as exc:
        verdict = classify(exc)
        if verdict is None or not verdict.transient:
            raise
        log.warning("%s failed (%s); the next run picks it up", spec.what, verdict.reason)


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
