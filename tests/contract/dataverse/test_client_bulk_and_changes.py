"""Contract: UpsertMultiple, the $batch fallback that isolates bad rows, change tracking."""

from __future__ import annotations

from shared.dataverse import odata
from shared.dataverse.change_tracking import ChangeTrackingReader
from tests.contract.dataverse.simfixtures import MemoryCursorStore


def test_upsert_multiple_of_1000_rows_is_one_request(sim, client):
    rows = [
        {"bpi_brightpearlid": str(5000 + i), "firstname": "Bulk", "lastname": f"Row {i}"} for i in range(1000)
    ]
    before = sim.admin.counters()["calls"].get("POST contacts/UpsertMultiple", 0)
    result = client.upsert_multiple("contacts", rows, key_columns=["bpi_brightpearlid"])
    assert len(result.succeeded) == 1000 and not result.failed
    assert result.bulk_requests == 1 and result.batch_requests == 0
    assert sim.admin.counters()["calls"]["POST contacts/UpsertMultiple"] == before + 1
    assert client.count("contacts", odata.eq("firstname", "Bulk")) == 1000

    # the same rows again update in place: still 1000 contacts, new values
    again = client.upsert_multiple(
        "contacts", [dict(r, lastname="Updated") for r in rows], key_columns=["bpi_brightpearlid"]
    )
    assert len(again.succeeded) == 1000
    assert client.count("contacts", odata.eq("lastname", "Updated")) == 1000


def test_fallback_isolates_three_bad_rows_out_of_500(sim, client):
    bad = {7, 250, 499}
    rows = [
        {
            "bpi_brightpearlid": str(9000 + i),
            "firstname": "Fallback",
            "lastname": ("x" * 60) if i in bad else f"Row {i}",
        }
        for i in range(500)
    ]
    result = client.upsert_multiple("contacts", rows, key_columns=["bpi_brightpearlid"], batch_size=500)
    assert sorted(o.index for o in result.failed) == sorted(bad)
    for outcome in result.failed:
        assert outcome.error is not None and outcome.error.code == "0x80044331"
        assert outcome.key == {"bpi_brightpearlid": str(9000 + outcome.index)}
        assert outcome.via == "batch"
    assert len(result.succeeded) == 497
    assert result.fallbacks == 1 and result.bulk_requests == 1
    assert result.batch_requests == 5  # 500 rows in $batch requests of 100
    assert client.count("contacts", odata.eq("firstname", "Fallback")) == 497


def test_create_multiple_returns_ids_and_falls_back_when_unsupported(sim, client):
    result = client.create_multiple("accounts", [{"name": f"Acc {i}"} for i in range(20)])
    assert len({o.id for o in result.succeeded}) == 20 and result.bulk_requests == 1
    sim.admin.call("POST", "schema", {"table": "account", "bulk": []})
    probe = odata.eq("sdkmessageid/name", "CreateMultiple") & odata.eq("primaryobjecttypecode", "account")
    assert client.count("sdkmessagefilters", probe) == 0  # the documented probe agrees
    fallback = client.create_multiple("accounts", [{"name": f"Other {i}"} for i in range(5)])
    assert len(fallback.succeeded) == 5 and fallback.fallbacks == 1 and fallback.batch_requests == 1
    assert all(o.id for o in fallback.succeeded)


def test_change_tracking_across_creates_updates_and_deletes(sim, client):
    cursors = MemoryCursorStore()
    reader = ChangeTrackingReader(client, cursors, "contacts", select=["lastname"], page_size=3)
    a = client.create("contacts", {"lastname": "A"})
    b = client.create("contacts", {"lastname": "B"})

    first = reader.read()
    assert first.full_sync is True
    assert {r.id for r in first.upserts} == {a, b}
    reader.advance(first)
    assert cursors.get("dataverse-delta-contacts").value == first.delta_link

    c = client.create("contacts", {"lastname": "C"})
    client.update("contacts", a, {"lastname": "A2"})
    client.delete("contacts", b)
    delta = reader.read()
    assert delta.full_sync is False
    assert {r.id: r["lastname"] for r in delta.upserts} == {a: "A2", c: "C"}
    assert delta.deleted_ids == [b]

    # not advanced yet: reading again returns the same changes (cursor moves only after publish)
    assert {r.id for r in reader.read().upserts} == {a, c}
    reader.advance(delta)
    empty = reader.read()
    assert empty.upserts == [] and empty.deleted_ids == []


def test_change_tracking_pages_large_deltas(sim, client):
    cursors = MemoryCursorStore()
    reader = ChangeTrackingReader(client, cursors, "accounts", select=["name"], page_size=4)
    reader.advance(reader.read())
    for i in range(10):
        client.create("accounts", {"name": f"N{i}"})
    delta = reader.read()
    assert sorted(r["name"] for r in delta.upserts) == sorted(f"N{i}" for i in range(10))


def test_expired_delta_token_restarts_with_a_full_sync(sim, client):
    cursors = MemoryCursorStore()
    reader = ChangeTrackingReader(client, cursors, "contacts", select=["lastname"])
    client.create("contacts", {"lastname": "Kept"})
    reader.advance(reader.read())
    sim.admin.call("POST", "clock/advance", {"seconds": 8 * 86400})  # past the 7-day token life
    changes = reader.read()
    assert changes.full_sync is True and changes.reason == "delta token expired"
    assert [r["lastname"] for r in changes.upserts] == ["Kept"]
