"""function_app.py as the real Azure Functions Python worker indexes it, against the local host.

The worker (azure-functions-runtime, in a cached Python 3.13 venv) gets the host's WorkerInitRequest
and FunctionsMetadataRequest; what it answers is what Azure registers. The local host must index
the same functions with the same bindings, or "green here" says nothing about Azure.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

from sandbox.host.config import resolve_placeholders
from sandbox.host.index import (
    FunctionInfo,
    HttpTriggerInfo,
    ServiceBusTriggerInfo,
    TimerTriggerInfo,
    import_app_module,
    index_functions,
)
from shared import settings as settings_module
from tests.platform.worker_env import PROJECT_ROOT, WorkerEnv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the first run builds the worker venv

DEFERRED = "SupportsDeferredBinding"


def _local_functions(settings: Mapping[str, str]) -> dict[str, FunctionInfo]:
    """function_app.py indexed by the local host (a fresh import with the example settings)."""
    os.environ.update(settings)  # the autouse fixture of tests/conftest.py restores the environment
    settings_module.get_settings.cache_clear()
    try:
        return {f.name: f for f in index_functions(import_app_module("function_app"), settings)}
    finally:
        settings_module.get_settings.cache_clear()


def _worker_bindings(fn: Mapping[str, Any], settings: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The raw bindings the worker sends, %Setting% resolved as the host does, with the
    SDK-type (deferred) binding flag the host reads from their properties."""
    bindings = {}
    for raw in fn["raw_bindings"]:
        where = f"worker binding {raw['name']!r} of {fn['name']}"
        binding = {k: resolve_placeholders(v, settings, where) for k, v in raw.items() if k != "properties"}
        binding["deferred"] = bool(raw.get("properties", {}).get(DEFERRED, False))
        bindings[raw["name"]] = binding
    return bindings


def _local_bindings(info: FunctionInfo) -> dict[str, dict[str, Any]]:
    bindings = {}
    for b in info.bindings:
        is_sdk_trigger = b["name"] == info.trigger_parameter and getattr(info.trigger, "sdk_type", False)
        bindings[b["name"]] = {**b, "deferred": is_sdk_trigger}
    return bindings


def _trigger_as_host_reads_it(binding: Mapping[str, Any], name: str) -> Any:
    """The trigger settings the host takes from a worker binding, in the local host's types."""
    if binding["type"] == "httpTrigger":
        methods = binding.get("methods")
        return HttpTriggerInfo(
            route=str(binding.get("route") or name).strip("/"),
            methods=frozenset(m.upper() for m in methods) if methods else None,
            auth_level=str(binding["authLevel"]).upper(),
        )
    if binding["type"] == "timerTrigger":
        return TimerTriggerInfo(
            schedule=binding["schedule"], run_on_startup=binding.get("runOnStartup", False)
        )
    return {
        "topic": binding["topicName"],
        "subscription": binding["subscriptionName"],
        "connection": binding["connection"],
        "many": binding.get("cardinality", "ONE").upper() == "MANY",
        "auto_complete": binding.get("autoCompleteMessages"),
        "sdk_type": binding["deferred"],
    }


def _local_trigger(info: FunctionInfo) -> Any:
    t = info.trigger
    if isinstance(t, ServiceBusTriggerInfo):
        return {
            "topic": t.topic,
            "subscription": t.subscription,
            "connection": t.connection,
            "many": t.many,
            "auto_complete": t.auto_complete,
            "sdk_type": t.sdk_type,
        }
    return t


@pytest.fixture(scope="module")
def indexed(worker: WorkerEnv, app_settings: dict[str, str]) -> dict[str, Any]:
    return worker.index(PROJECT_ROOT, app_settings)


def test_the_real_worker_loads_function_app(indexed: dict[str, Any]):
    assert indexed["init"]["status"] == "Success", (
        f"the real Python worker (azure-functions-runtime {indexed['worker_version']}) refuses "
        f"function_app.py, so the app would not start in Azure: {indexed['init']['message']}"
    )
    assert indexed["metadata"] == {"status": "Success", "message": ""}
    assert indexed["use_default_metadata_indexing"] is False  # the host takes the worker's index


def test_the_worker_indexes_every_function_the_local_host_serves(
    indexed: dict[str, Any], app_settings: dict[str, str]
):
    assert indexed["init"]["status"] == "Success", indexed["init"]["message"]
    local = _local_functions(app_settings)
    worker_names = sorted(fn["name"] for fn in indexed["functions"])
    assert worker_names == sorted(local)
    # the app's flows and pollers really are there (not an empty index on both sides)
    assert {"customers_to_dataverse", "customers_to_brightpearl", "brightpearl_webhook"} <= set(local)


def test_each_binding_the_worker_sends_equals_the_local_hosts(
    indexed: dict[str, Any], app_settings: dict[str, str]
):
    """type, direction, name, route, auth level, methods, connection, topic, subscription,
    cardinality, autoCompleteMessages, SDK-type flag and schedule: binding by binding."""
    assert indexed["init"]["status"] == "Success", indexed["init"]["message"]
    local = _local_functions(app_settings)
    for fn in indexed["functions"]:
        info = local[fn["name"]]
        worker_bindings = _worker_bindings(fn, app_settings)
        assert worker_bindings == _local_bindings(info), fn["name"]
        # the BindingInfo map (what the host loads each binding as)
        assert {n: (b["type"], b["direction"]) for n, b in fn["binding_info"].items()} == {
            b["name"]: (b["type"], b["direction"].lower()) for b in info.bindings
        }, fn["name"]
        trigger = worker_bindings[info.trigger_parameter]
        assert _trigger_as_host_reads_it(trigger, fn["name"]) == _local_trigger(info), fn["name"]


def test_the_flows_get_sdk_type_batches_with_manual_settlement(indexed: dict[str, Any]):
    """What the flows rely on, as the worker declares it to the host."""
    assert indexed["init"]["status"] == "Success", indexed["init"]["message"]
    flows = [fn for fn in indexed["functions"] if fn["name"].startswith("customers_to_")]
    assert len(flows) == 2
    for fn in flows:
        [trigger] = fn["raw_bindings"]
        assert trigger["type"] == "serviceBusTrigger"
        assert trigger["cardinality"] == "MANY"
        assert trigger["autoCompleteMessages"] is False
        assert trigger["properties"] == {DEFERRED: True}
