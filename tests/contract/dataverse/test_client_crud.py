"""Contract: CRUD, upsert by alternate key, lookups, filters, paging, $batch against the simulator."""

from __future__ import annotations

import pytest

from shared.dataverse import odata
from shared.dataverse.errors import (
    DataverseConcurrencyError,
    DataverseDuplicateError,
    DataverseNotFound,
    DataverseValidationError,
)
from shared.dataverse.models import BatchOperation


def test_create_get_update_delete_round_trip(client):
    contact_id = client.create(
        "contacts", {"firstname": "Ada", "lastname": "Lovelace", "emailaddress1": "ada@example.com"}
    )
    record = client.get("contacts", contact_id, select=["fullname", "emailaddress1"])
    assert record.id == contact_id
    assert record["fullname"] == "Ada Lovelace"
    assert record.etag and record.etag.startswith('W/"')

    client.update("contacts", contact_id, {"jobtitle": "Analyst"})
    updated = client.get("contacts", contact_id, select=["jobtitle"])
    assert updated["jobtitle"] == "Analyst"
    assert updated.etag != record.etag

    with pytest.raises(DataverseConcurrencyError) as stale:
        client.update("contacts", contact_id, {"jobtitle": "Engineer"}, etag=record.etag)
    assert stale.value.code == "0x80060882"

    client.delete("contacts", contact_id)
    with pytest.raises(DataverseNotFound) as missing:
        client.get("contacts", contact_id)
    assert missing.value.code == "0x80040217"
    assert client.get_or_none("contacts", contact_id) is None


def test_update_never_creates(client):
    with pytest.raises(DataverseNotFound):
        client.update("contacts", {"bpi_brightpearlid": "404"}, {"lastname": "Ghost"})
    assert client.count("contacts", odata.eq("bpi_brightpearlid", "404")) == 0


def test_upsert_by_alternate_key_creates_then_updates(client):
    created = client.upsert("contacts", {"bpi_brightpearlid": "1001"}, {"lastname": "First"})
    assert created.created is True and created.id
    updated = client.upsert("contacts", {"bpi_brightpearlid": "1001"}, {"lastname": "Second"})
    assert updated.created is False
    assert updated.id == created.id
    record = client.get("contacts", {"bpi_brightpearlid": "1001"}, select=["lastname", "bpi_brightpearlid"])
    assert record["lastname"] == "Second"
    assert record["bpi_brightpearlid"] == "1001"  # key copied from the URL on create

    with pytest.raises(DataverseDuplicateError):
        client.upsert("contacts", {"bpi_brightpearlid": "1001"}, {"lastname": "Third"}, create_only=True)


def test_duplicate_alternate_key_value_is_rejected(client):
    client.create("accounts", {"name": "A", "bpi_brightpearlid": "77"})
    with pytest.raises(DataverseDuplicateError) as dup:
        client.create("accounts", {"name": "B", "bpi_brightpearlid": "77"})
    assert dup.value.status == 412 and dup.value.code == "0x80040237"


def test_lookup_bind_by_alternate_key_and_read_back(client):
    account_id = client.create("accounts", {"name": "Contoso Ltd", "bpi_brightpearlid": "A-1"})
    contact_id = client.create(
        "contacts",
        {
            "lastname": "Bound",
            "parentcustomerid_account@odata.bind": odata.bind("accounts", {"bpi_brightpearlid": "A-1"}),
        },
    )
    record = client.get("contacts", contact_id, select=["parentcustomerid"], annotations=True)
    assert record.lookup("parentcustomerid") == account_id
    assert record.annotations["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert (
        record.annotations["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"]
        == "Contoso Ltd"
    )
    plain = client.get("contacts", contact_id, select=["parentcustomerid"])
    assert plain.annotations == {}  # annotations only when asked for

    with pytest.raises(DataverseValidationError) as by_column:
        client.create(
            "contacts", {"lastname": "X", "parentcustomerid@odata.bind": f"/accounts({account_id})"}
        )
    assert by_column.value.code == "0x80048d19"
    with pytest.raises(DataverseNotFound):
        client.create(
            "contacts",
            {
                "lastname": "X",
                "parentcustomerid_account@odata.bind": odata.bind("accounts", {"bpi_brightpearlid": "none"}),
            },
        )


@pytest.mark.parametrize("value", ["O'Brien", "Zoë Ünïcødé 北京 🚀", "a&b+c#d%e/f?g", "''", "it's 'quoted'"])
def test_filters_with_quotes_and_unicode(client, value):
    client.create("contacts", {"lastname": value[:50], "firstname": "match", "emailaddress1": f"{value}@x"})
    client.create("contacts", {"lastname": "other", "firstname": "nomatch", "emailaddress1": "other@x"})
    found = list(client.query("contacts", select=["lastname"], filter=odata.eq("lastname", value[:50])))
    assert [r["lastname"] for r in found] == [value[:50]]
    by_in = list(
        client.query(
            "contacts",
            select=["emailaddress1"],
            filter=odata.in_("emailaddress1", [f"{value}@x", "nobody@x"]),
        )
    )
    assert [r["emailaddress1"] for r in by_in] == [f"{value}@x"]
    by_contains = list(
        client.query("contacts", select=["lastname"], filter=odata.contains("lastname", value[:50]))
    )
    assert value[:50] in [r["lastname"] for r in by_contains]


def test_wildcards_in_values_match_literally(client):
    client.create("contacts", {"lastname": "100% sure"})
    client.create("contacts", {"lastname": "100 times sure"})
    found = list(client.query("contacts", select=["lastname"], filter=odata.contains("lastname", "100%")))
    assert [r["lastname"] for r in found] == ["100% sure"]


def test_paging_follows_next_links_over_three_pages(client):
    for i in range(25):
        client.create("contacts", {"lastname": f"Page{i:02d}", "firstname": "paging"})
    pages = list(
        client.pages(
            "contacts",
            select=["lastname"],
            filter=odata.eq("firstname", "paging"),
            orderby=["lastname asc"],
            page_size=10,
        )
    )
    assert [len(p.records) for p in pages] == [10, 10, 5]
    assert pages[0].next_link and "$skiptoken=" in pages[0].next_link
    names = [r["lastname"] for p in pages for r in p.records]
    assert names == [f"Page{i:02d}" for i in range(25)]


def test_batch_continue_on_error_isolates_the_failing_row(client):
    ops = [
        BatchOperation("POST", "contacts", {"lastname": "Good 1"}),
        BatchOperation("POST", "contacts", {"lastname": "x" * 51}),
        BatchOperation("POST", "contacts", {"lastname": "Good 2"}),
    ]
    results = client.execute_batch(ops, continue_on_error=True)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.code == "0x80044331"
    assert "exceeded the maximum allowed length of '50'" in str(results[1].error)
    assert results[0].entity_id and results[2].entity_id
    assert client.count("contacts", odata.startswith("lastname", "Good")) == 2


def test_batch_change_set_is_atomic(client):
    ops = [
        BatchOperation("POST", "accounts", {"name": "In change set", "bpi_brightpearlid": "CS-1"}),
        BatchOperation("POST", "accounts", {"name": "Bad", "accountcategorycode": 99}),
    ]
    results = client.execute_batch(ops, change_set=True)
    assert all(not r.ok for r in results)
    assert client.count("accounts", odata.eq("bpi_brightpearlid", "CS-1")) == 0


def test_missing_lookup_target_is_a_reference_problem_not_a_missing_record(client):
    from shared.dataverse.errors import DataverseReferenceMissing
    from shared.resilience import Action, classify

    with pytest.raises(DataverseReferenceMissing) as exc:
        client.upsert(
            "contacts",
            {"bpi_brightpearlid": "R-1"},
            {
                "lastname": "Orphan",
                "parentcustomerid_account@odata.bind": "/accounts(bpi_brightpearlid='nope')",
            },
        )
    assert classify(exc.value).action == Action.RETRY  # the account may be synced in a moment
    contact_id = client.create("contacts", {"lastname": "Real"})
    client.delete("contacts", contact_id)
    with pytest.raises(DataverseNotFound) as gone:
        client.update("contacts", contact_id, {"lastname": "Again"})
    assert type(gone.value) is DataverseNotFound and classify(gone.value).action == Action.IGNORE
    results = client.execute_batch(
        [
            BatchOperation(
                "POST",
                "contacts",
                {
                    "lastname": "x",
                    "parentcustomerid_account@odata.bind": "/accounts(00000000-0000-4000-8000-000000000001)",
                },
            )
        ]
    )
    assert isinstance(results[0].error, DataverseReferenceMissing)


def test_in_and_between_on_numbers_and_guids(client):
    ids = [client.create("accounts", {"name": f"N{i}", "customertypecode": i}) for i in (1, 3, 5)]
    by_code = client.query("accounts", select=["name"], filter=odata.in_("customertypecode", [3, 5]))
    assert sorted(r["name"] for r in by_code) == ["N3", "N5"]
    by_range = client.query("accounts", select=["name"], filter=odata.between("customertypecode", 2, 4))
    assert [r["name"] for r in by_range] == ["N3"]
    by_id = client.query("accounts", select=["name"], filter=odata.in_("accountid", ids[:2]))
    assert sorted(r["name"] for r in by_id) == ["N1", "N3"]
