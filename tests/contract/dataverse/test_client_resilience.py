"""Contract: service protection (429 storms, concurrency cap, dop hint), faults, token expiry."""

from __future__ import annotations

import threading

import pytest

from shared.dataverse import odata
from shared.dataverse.errors import DataverseThrottled, DataverseUnavailable
from tests.contract.dataverse.simfixtures import make_client


def _seed(client, n: int) -> list[str]:
    return [client.create("contacts", {"lastname": f"S{i}"}) for i in range(n)]


def test_429_storm_is_absorbed_without_failures(sim):
    with make_client(sim) as client:
        ids = _seed(client, 10)
        sim.admin.fault(kind="429", count=40, retry_after=0.02)
        records = client.map_concurrent(lambda cid: client.get("contacts", cid, select=["lastname"]), ids * 8)
    assert len(records) == 80
    counters = sim.admin.counters()
    assert counters["faults"]["fired"]["429"] == 40
    assert counters["service_protection"]["throttled"]["0x80072322"] == 40


def test_never_more_than_the_concurrency_cap_in_flight(sim):
    sim.admin.config(concurrency_limit=6, dop_hint=52, latency_ms=30)
    with make_client(sim, max_concurrency=6) as client:
        ids = _seed(client, 5)
        sim.admin.call("POST", "counters/reset")
        client.map_concurrent(lambda cid: client.get("contacts", cid), ids * 12)
        assert client.gate.max_in_flight <= 6
    protection = sim.admin.counters()["service_protection"]
    assert "0x80072326" not in protection["throttled"]
    assert max(u["max_in_flight"] for u in protection["users"].values()) <= 6


def test_client_adapts_to_dop_hint(sim):
    sim.admin.config(dop_hint=3, latency_ms=20)
    with make_client(sim) as client:
        client.who_am_i()
        assert client.gate.limit == 3
        ids = _seed(client, 4)
        sim.admin.call("POST", "counters/reset")
        client.map_concurrent(lambda cid: client.get("contacts", cid), ids * 6)
    users = sim.admin.counters()["service_protection"]["users"]
    assert max(u["max_in_flight"] for u in users.values()) <= 3


def test_request_limit_window_throttles_then_recovers(sim):
    sim.admin.config(request_limit=3, window_seconds=1.0)
    with make_client(sim) as client:
        ids = _seed(client, 3)
        for cid in ids * 4:  # 12 more requests through a 3-per-second budget
            client.get("contacts", cid)
    throttled = sim.admin.counters()["service_protection"]["throttled"]
    assert throttled.get("0x80072322", 0) >= 1


def test_long_retry_after_surfaces_as_throttled(sim):
    with make_client(sim, max_retry_after=0.5) as client:
        cid = client.create("contacts", {"lastname": "T"})
        sim.admin.fault(kind="429", count=1, retry_after=30)
        with pytest.raises(DataverseThrottled) as exc:
            client.get("contacts", cid)
    assert exc.value.retry_after == 30 and exc.value.code == "0x80072322"


@pytest.mark.parametrize("kind", ["502", "503", "504", "drop"])
def test_transient_faults_on_reads_are_retried(sim, client, kind):
    cid = client.create("contacts", {"lastname": "R"})
    sim.admin.fault(kind=kind, count=2, method="GET")
    assert client.get("contacts", cid)["lastname"] == "R"
    assert sim.admin.counters()["faults"]["fired"][kind] == 2


def test_creates_are_not_blindly_repeated_after_a_dropped_response(sim, client):
    sim.admin.fault(kind="drop", count=1, method="POST")
    with pytest.raises(DataverseUnavailable):
        client.create("contacts", {"lastname": "Maybe"})


def test_client_timeout_then_retry(sim):
    with make_client(sim, timeout=0.3) as client:
        cid = client.create("contacts", {"lastname": "Slow"})
        sim.admin.fault(kind="slow", count=1, delay_seconds=1.0, method="GET")
        assert client.get("contacts", cid)["lastname"] == "Slow"


def test_token_expiry_mid_run_is_refreshed_once(sim):
    with make_client(sim) as client:
        ids = _seed(client, 5)
        issued_before = sim.admin.counters()["tokens_issued"]
        results = []
        for i, cid in enumerate(ids * 4):
            if i == 7:
                sim.admin.call("POST", "tokens/expire")
            results.append(client.get("contacts", cid))
        assert len(results) == 20
        assert sim.admin.counters()["tokens_issued"] == issued_before + 1
        assert sim.admin.counters()["statuses"].get("401") is None  # 401s are answered before dispatch


def test_token_expiry_under_concurrency(sim):
    with make_client(sim) as client:
        ids = _seed(client, 8)
        expired = threading.Event()
        lock = threading.Lock()

        def read(cid: str):
            with lock:
                first = cid == ids[3] and not expired.is_set()
                if first:
                    expired.set()
            if first:  # the token dies once while other requests are in flight
                sim.admin.call("POST", "tokens/expire")
            return client.get("contacts", cid)

        results = client.map_concurrent(read, ids * 5)
        assert len(results) == 40 and expired.is_set()


def test_count_and_filter_helpers(client):
    _seed(client, 3)
    assert client.count("contacts", odata.startswith("lastname", "S")) == 3


def test_client_never_sends_the_affinity_cookie_back(sim, client):
    ids = _seed(client, 3)
    for cid in ids * 3:
        client.get("contacts", cid)
    counters = sim.admin.counters()
    assert counters["api_calls"] >= 12
    assert counters["affinity_cookie_requests"] == 0


def test_default_cap_of_52_holds_under_load(sim):
    sim.admin.config(latency_ms=25)
    with make_client(sim) as client:
        ids = _seed(client, 10)
        sim.admin.call("POST", "counters/reset")
        client.map_concurrent(lambda cid: client.get("contacts", cid), ids * 20)
        assert client.gate.limit == 52 and 1 < client.gate.max_in_flight <= 52
    protection = sim.admin.counters()["service_protection"]
    assert "0x80072326" not in protection["throttled"]
    assert max(u["max_in_flight"] for u in protection["users"].values()) <= 52


def test_execution_time_limit_is_absorbed(sim):
    sim.admin.config(execution_limit_ms=40, latency_ms=25, window_seconds=1.0)
    with make_client(sim) as client:
        ids = _seed(client, 2)
        records = [client.get("contacts", cid) for cid in ids * 3]
    assert len(records) == 6
    assert sim.admin.counters()["service_protection"]["throttled"].get("0x80072321", 0) >= 1


def test_server_concurrency_rejections_are_retried(sim):
    sim.admin.config(concurrency_limit=3, latency_ms=30, window_seconds=1.0)
    with make_client(sim, max_concurrency=10) as client:  # a client configured above the server's cap
        ids = _seed(client, 5)
        records = client.map_concurrent(lambda cid: client.get("contacts", cid), ids * 4)
    assert len(records) == 20
    assert sim.admin.counters()["service_protection"]["throttled"].get("0x80072326", 0) >= 1


def test_oversized_bulk_request_falls_back_to_smaller_batches(sim, client):
    sim.admin.fault(kind="413", count=1, path_contains="UpsertMultiple")
    rows = [{"bpi_brightpearlid": f"L{i}", "lastname": f"Large {i}"} for i in range(30)]
    result = client.upsert_multiple("contacts", rows, key_columns=["bpi_brightpearlid"])
    assert len(result.succeeded) == 30 and result.fallbacks == 1 and result.batch_requests == 1
