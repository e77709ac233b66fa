"""`provision()` against a bare simulator on loopback: creates what the mappings need, once."""

from __future__ import annotations

from shared.dataverse.environment_check import check_environment
from shared.dataverse.provision import schema_plan
from tests.unit.dataverse.provisionfixtures import bare, bare_client, bare_server, provisioner, writes

__all__ = ["bare", "bare_client", "bare_server"]

def CUSTOMER_VALUE_CHANGES(table: str) -> list[str]:
    """The customer value figures (issue 14 item 4) on contact or account."""
    return [
        f"{table}: create column {column}"
        for column in (
            "bpi_lifetimevalue (Money)",
            "bpi_lastpurchasedate (DateTime)",
            "bpi_ordercount (Integer)",
            "bpi_averageordervalue (Money)",
            "bpi_openreturns (Integer)",
        )
    ]


ORDER_COLUMN_CHANGES = [  # the orders entity's part (contracts of issue 13)
    "salesorder: create column bpi_brightpearlid (String, 100)",
    "salesorder: create column bpi_sendtobrightpearl (Boolean)",
    "salesorder: create column bpi_shippedon (DateTime)",
    "salesorder: create column bpi_shippingmethod (String, 200)",
    "salesorder: create column bpi_trackingreference (String, 200)",
    "salesorder: create column bpi_invoicereference (String, 100)",
    "salesorder: create column bpi_paymentstatus (String, 20)",
    "salesorder: create column bpi_brightpearlstatus (String, 100)",
    "salesorder: create column bpi_origin (String, 20)",  # order history (issue 14)
    "salesorder: create column bpi_channel (String, 100)",
    "salesorder: create column bpi_placedon (DateTime)",
    "salesorderdetail: create column bpi_quantityreserved (Decimal)",  # fulfilment (issue 18)
    "salesorderdetail: create column bpi_quantityreleased (Decimal)",
]
EXPECTED_CHANGES = [  # one spec per table (schema.merged): each table's columns together
    "contact: create column bpi_brightpearlid (String, 100)",
    "contact: create column bpi_customergroup (String, 100)",
    "contact: create column bpi_loyaltytier (String, 100)",
    "contact: create column bpi_newsletteroptin (Boolean)",
    "contact: create column bpi_segment (Picklist)",
    "contact: create column bpi_tags (Memo, 2000)",
    "contact: create column bpi_vip (Boolean)",
    *CUSTOMER_VALUE_CHANGES("contact"),
    "account: create column bpi_brightpearlid (String, 100)",
    *CUSTOMER_VALUE_CHANGES("account"),
    "product: create column bpi_brightpearlid (String, 100)",
    "product: create column bpi_availablestock (Decimal)",
    "product: create column bpi_ean (String, 14)",  # SKU matching's identifier (issue 18)
    *ORDER_COLUMN_CHANGES,
    "invoice: create column bpi_brightpearlid (String, 100)",  # invoices (issue 14)
    "invoice: create column bpi_amountpaid (Decimal)",
    "incident: create column bpi_brightpearlid (String, 100)",  # returns -> cases (issue 14)
    "contact: create alternate key bpi_contact_brightpearlid on (bpi_brightpearlid)",
    "account: create alternate key bpi_account_brightpearlid on (bpi_brightpearlid)",
    "product: create alternate key bpi_brightpearlid_key on (bpi_brightpearlid)",
    "salesorder: create alternate key bpi_brightpearlid_key on (bpi_brightpearlid)",
    "invoice: create alternate key bpi_invoice_brightpearlid on (bpi_brightpearlid)",
    "incident: create alternate key bpi_incident_brightpearlid on (bpi_brightpearlid)",
    "contact: enable change tracking",
    "account: enable change tracking",
    "product: enable change tracking",
    "salesorder: enable change tracking",
    "salesorderdetail: enable change tracking",
]  # the productnumber key (bpi_productnumber_key) is in the stock schema already


def test_provision_makes_a_bare_environment_pass_the_check_and_a_second_run_changes_nothing(
    bare, bare_client
):
    report = provisioner(bare_client).run(schema_plan())
    assert report.changes == EXPECTED_CHANGES
    assert report.remaining == [] and report.pending_keys == []
    assert report.published == ["account", "contact", "product", "salesorder", "salesorderdetail"]
    assert check_environment(bare_client) == []
    before = writes(bare)
    again = provisioner(bare_client).run(schema_plan())
    assert again.changes == [] and again.remaining == [] and again.published == []
    assert writes(bare) == before  # a second run only reads


def test_dry_run_lists_the_changes_and_makes_none(bare, bare_client):
    before = writes(bare)
    report = provisioner(bare_client).run(schema_plan(), dry_run=True)
    assert report.dry_run and report.changes == EXPECTED_CHANGES
    assert writes(bare) == before
    assert len(check_environment(bare_client)) == len(EXPECTED_CHANGES)


def test_provisioned_columns_keys_and_change_tracking_work_for_records(bare, bare_client):
    provisioner(bare_client).run(schema_plan())
    bare_client.upsert(
        "contacts",
        {"bpi_brightpearlid": "207"},
        {"lastname": "Turner", "bpi_segment": 100000001, "bpi_vip": True, "bpi_tags": "a,b"},
    )
    row = bare_client.get(
        "contacts", {"bpi_brightpearlid": "207"}, select=["bpi_segment", "bpi_vip", "bpi_tags"]
    )
    assert (row["bpi_segment"], row["bpi_vip"], row["bpi_tags"]) == (100000001, True, "a,b")
    tracked = bare_client.request(
        "GET", "contacts", params={"$select": "lastname"}, headers={"Prefer": "odata.track-changes"}
    ).json()
    assert "@odata.deltaLink" in tracked


def test_new_keys_are_waited_for_until_active(bare, bare_client):
    slept: list[float] = []
    report = provisioner(bare_client, sleep=lambda s: (slept.append(s), __import__("time").sleep(s))).run(
        schema_plan()
    )
    assert slept, "the keys start Pending: provisioning polls until they are Active"
    assert report.pending_keys == []
    keys = bare_client.request("GET", "EntityDefinitions(LogicalName='contact')/Keys").json()["value"]
    assert [(k["SchemaName"], k["EntityKeyIndexStatus"]) for k in keys] == [
        ("bpi_contact_brightpearlid", "Active")
    ]


def test_a_key_still_building_at_the_timeout_is_reported_not_an_error(bare, bare_client):
    bare.admin.config(key_activation_seconds=3600)
    report = provisioner(bare_client, key_timeout=0.2).run(schema_plan())
    assert report.pending_keys == [
        "account.bpi_account_brightpearlid",
        "contact.bpi_contact_brightpearlid",
        "incident.bpi_incident_brightpearlid",
        "invoice.bpi_invoice_brightpearlid",
        "product.bpi_brightpearlid_key",
        "salesorder.bpi_brightpearlid_key",
    ]
    assert {(p.kind, p.table) for p in check_environment(bare_client)} == {
        ("key_not_active", "contact"),
        ("key_not_active", "account"),
        ("key_not_active", "incident"),
        ("key_not_active", "invoice"),
        ("key_not_active", "product"),
        ("key_not_active", "salesorder"),
    }


def test_a_key_over_duplicate_values_fails_and_is_reported(bare, bare_client):
    plan = schema_plan()
    columns_only = type(plan)(tuple(type(t)(t.table, t.columns) for t in plan.tables))
    provisioner(bare_client).run(columns_only)
    for _ in range(2):
        bare_client.create("contacts", {"lastname": "Twin", "bpi_brightpearlid": "42"})
    report = provisioner(bare_client).run(plan)
    failed = [(p.table, p.kind, p.name) for p in report.remaining]
    assert failed == [("contact", "key_failed", "bpi_brightpearlid")]
    assert "duplicate" in report.remaining[0].message


def test_the_solution_header_puts_new_columns_in_that_solution(bare, bare_client):
    provisioner(bare_client, solution="brightpearlintegration").run(schema_plan())
    with bare.server.simulator.lock:
        column = bare.server.simulator.engine.schema.tables["contact"].columns["bpi_tags"]
    assert column.solution == "brightpearlintegration" and column.label == "Brightpearl tags"
