"""Start-up of the local host: settings files, host.json, indexing, %Setting% values, bad configuration."""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from sandbox.host import HostConfigError, LocalHost
from sandbox.host.config import load_host_json, load_local_settings
from shared.bus.local import LocalBus
from shared.bus.port import BusError, OutgoingMessage
from shared.bus.topology import Topology
from tests.unit.host.conftest import TEST_TOPOLOGY, TOPIC, base_settings

TOPIC_APP = "tests.unit.host.apps.topic_app"
HTTP_APP = "tests.unit.host.apps.http_app"


def test_setting_placeholders_are_resolved(make_host, bus):
    host = make_host(TOPIC_APP, bus=bus)

    [auto] = [f for f in host.functions if f.name == "auto_fn"]
    assert auto.trigger.topic == TOPIC
    assert auto.bindings[0]["topicName"] == TOPIC
    assert "auto_fn: serviceBusTrigger topic=orders subscription=auto cardinality=one" in host.describe()


def test_missing_setting_is_a_start_up_error_naming_it(make_host, bus):
    settings = base_settings()
    del settings["ORDERS_TOPIC"]
    with pytest.raises(HostConfigError, match=r"'auto_fn'.*'ORDERS_TOPIC' is not set"):
        make_host(TOPIC_APP, bus=bus, settings=settings)


def test_real_environment_wins_over_settings_and_added_settings_are_removed(make_host, bus, monkeypatch):
    monkeypatch.setenv("ORDERS_TOPIC", TOPIC)
    host = make_host(TOPIC_APP, bus=bus, settings=base_settings(ORDERS_TOPIC="not-a-topic"))
    assert os.environ["LOCAL_MASTER_KEY"] == "test-master-key"

    host.start()
    host.stop()

    assert os.environ["ORDERS_TOPIC"] == TOPIC
    assert "LOCAL_MASTER_KEY" not in os.environ


def test_settings_file_falls_back_to_the_example(tmp_path):
    (tmp_path / "local.settings.example.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": {"A": "from-example", "FLAG": True, "N": 3}})
    )
    values, source = load_local_settings(tmp_path)
    assert source.name == "local.settings.example.json"
    assert values == {"A": "from-example", "FLAG": "true", "N": "3"}

    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": {"A": "from-local"}}))
    values, source = load_local_settings(tmp_path)
    assert (source.name, values) == ("local.settings.json", {"A": "from-local"})


def test_bad_settings_files_name_the_problem(tmp_path):
    with pytest.raises(HostConfigError, match="no settings file found"):
        load_local_settings(tmp_path)
    (tmp_path / "local.settings.json").write_text('{"Values": {"A": "x",}}')
    with pytest.raises(HostConfigError, match=r"local\.settings\.json: invalid JSON at line 1"):
        load_local_settings(tmp_path)
    (tmp_path / "local.settings.json").write_text('{"Values": {"A": {"nested": 1}}}')
    with pytest.raises(HostConfigError, match=r"Values\.A must be a string"):
        load_local_settings(tmp_path)


def test_host_json_values_defaults_and_app_setting_overrides(tmp_path):
    defaults = load_host_json(None, environ={})
    assert defaults.route_prefix == "api"
    assert defaults.service_bus.auto_complete_messages is True
    assert defaults.service_bus.max_auto_lock_renewal_duration == timedelta(minutes=5)

    path = tmp_path / "host.json"
    path.write_text(
        json.dumps(
            {
                "version": "2.0",
                "extensions": {
                    "http": {"routePrefix": ""},
                    "serviceBus": {
                        "maxConcurrentCalls": 4,
                        "maxMessageBatchSize": 50,
                        "maxBatchWaitTime": "00:00:05",
                        "maxAutoLockRenewalDuration": "-00:00:00.0010000",
                    },
                },
            }
        )
    )
    options = load_host_json(
        path, environ={"AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls": "9"}
    )
    assert options.route_prefix == ""
    assert options.service_bus.max_concurrent_calls == 9
    assert options.service_bus.max_message_batch_size == 50
    assert options.service_bus.max_batch_wait_time == timedelta(seconds=5)
    assert options.service_bus.max_auto_lock_renewal_duration is None  # infinite


@pytest.mark.parametrize(
    ("service_bus", "message"),
    [
        ({"maxConcurrentCalls": 0}, "maxConcurrentCalls: 0 must be a whole number >= 1"),
        ({"maxBatchWaitTime": "30s"}, "maxBatchWaitTime: '30s' is not a timespan"),
        ({"minMessageBatchSize": 5, "maxMessageBatchSize": 2}, "minMessageBatchSize must not exceed"),
    ],
)
def test_bad_host_json_values_are_named(service_bus, message):
    with pytest.raises(HostConfigError, match=message):
        load_host_json({"extensions": {"serviceBus": service_bus}}, environ={})


@pytest.mark.parametrize(
    ("module", "message"),
    [
        ("tests.unit.host.apps.no_app", "Could not find top level function app instances"),
        ("tests.unit.host.apps.two_apps", "More than one top level function app instances"),
        ("tests.unit.host.apps.does_not_exist", "not found"),
        (
            "tests.unit.host.apps.unbound_param_app",
            r"the handler function: the following parameters are declared in Python but not in the "
            r"function definition .*\{'extra'\}",
        ),
        ("tests.unit.host.apps.wrong_annotation_app", "not azure.servicebus.ServiceBusReceivedMessage"),
        ("tests.unit.host.apps.unresolvable_app", "'handler': cannot resolve its type annotations"),
    ],
)
def test_apps_the_worker_would_refuse_are_refused(make_host, bus, module, message):
    with pytest.raises(HostConfigError, match=message):
        make_host(module, bus=bus)


@pytest.mark.parametrize("address", ["0.0.0.0", "10.1.2.3", "example.com"])
def test_non_loopback_host_is_refused(make_host, address):
    with pytest.raises(HostConfigError, match=r"loopback|not an IP address"):
        make_host(HTTP_APP, host=address)


def test_function_level_http_needs_the_key_setting(make_host):
    settings = base_settings()
    del settings["LOCAL_FUNCTION_KEY"], settings["LOCAL_MASTER_KEY"]
    with pytest.raises(HostConfigError, match="'LOCAL_FUNCTION_KEY' is not set"):
        make_host(HTTP_APP, settings=settings)


def test_subscription_missing_from_the_topology_is_refused(make_host, tmp_path):
    raw = TEST_TOPOLOGY.model_dump(by_alias=True)
    raw["topics"][0]["subscriptions"] = [
        s for s in raw["topics"][0]["subscriptions"] if s["name"] != "limited"
    ]
    with (
        LocalBus(tmp_path / "small.sqlite3", Topology.model_validate(raw)) as small_bus,
        pytest.raises(HostConfigError, match="'limited' is not in the bus topology"),
    ):
        make_host(TOPIC_APP, bus=small_bus)


def test_host_opens_and_closes_its_own_bus_at_local_bus_path(tmp_path):
    settings = base_settings(LOCAL_BUS_PATH="state/bus.sqlite3")
    host = LocalHost(
        TOPIC_APP,
        settings=settings,
        port=0,
        project_root=tmp_path,
        topology=TEST_TOPOLOGY,
        host_json={},
        poll_interval=0.02,
    )
    with host:
        host.bus.publish(
            TOPIC,
            [OutgoingMessage(body=b"{}", message_id="own-1", application_properties={"target": "auto"})],
        )
        host.wait_idle()
    assert (tmp_path / "state" / "bus.sqlite3").is_file()
    assert [m.message_id for _, m in host.module.RECEIVED] == ["own-1"]
    with pytest.raises(BusError):
        host.bus.check()  # closed by stop()


def test_classic_functions_message_type_is_supported(make_host, bus):
    bus.publish(
        TOPIC,
        [
            OutgoingMessage(
                body=b"hi",
                message_id="classic-1",
                subject="s",
                application_properties={"target": "auto", "n": 1},
            )
        ],
    )
    with make_host("tests.unit.host.apps.classic_app", bus=bus) as host:
        host.wait_idle()
    [msg] = host.module.RECEIVED
    assert (msg.get_body(), msg.message_id, msg.delivery_count) == (b"hi", "classic-1", 1)
    assert msg.application_properties == {"target": "auto", "n": 1}
    assert bus.counts(TOPIC, "auto").active == 0
