"""check_environment: compares an environment with the mapping-driven plan (provision.py) and
names every missing column, choice option, alternate key and change-tracking setting."""

from __future__ import annotations

import dataclasses

from shared.dataverse.environment_check import check_environment
from shared.dataverse.provision import ColumnSpec, schema_plan
from shared.dataverse.schema import CUSTOMER_VALUE_COLUMNS
from shared.mapping import load_customer_mapping, required_columns
from tests.unit.dataverse.provisionfixtures import bare, bare_client, bare_server, provisioner

__all__ = ["bare", "bare_client", "bare_server"]

CONTACT_COLUMNS = "EntityDefinitions(LogicalName='contact')/Attributes"


def test_the_plan_covers_every_column_the_mapping_reads_or_writes():
    plan = {t.table: t for t in schema_plan().tables}  # one spec per table (schema.merged)
    value = {c.name for c in CUSTOMER_VALUE_COLUMNS}  # the customer value figures, on both tables
    for table, columns in required_columns(load_customer_mapping()).items():
        assert {c.name for c in plan[table].columns} == set(columns) | value
        assert plan[table].change_tracking and [k.columns for k in plan[table].keys] == [
            ("bpi_brightpearlid",)
        ]
    segment = plan["contact"].column("bpi_segment")
    assert segment is not None and segment.kind == "picklist"
    assert segment.options == ((100000000, "Gold"), (100000001, "Silver"), (100000002, "Bronze"))
    assert plan["contact"].column("bpi_tags") == ColumnSpec(
        "bpi_tags", "memo", "Brightpearl tags", True, 2000
    )
    assert plan["contact"].column("firstname").custom is False  # type: ignore[union-attr]


def test_a_bare_environment_is_told_what_is_missing_and_how_to_fix_it(bare, bare_client):
    problems = check_environment(bare_client)
    assert {(p.table, p.kind, p.name) for p in problems} == {
        *(
            ("contact", "missing_column", c)
            for c in ("bpi_brightpearlid", "bpi_customergroup", "bpi_loyaltytier", "bpi_newsletteroptin",
                      "bpi_segment", "bpi_tags", "bpi_vip")
        ),
        ("account", "missing_column", "bpi_brightpearlid"),
        *(  # customer value (issue 14 item 4): the figures on contact and account
            (table, "missing_column", c)
            for table in ("contact", "account")
            for c in ("bpi_lifetimevalue", "bpi_lastpurchasedate", "bpi_ordercount", "bpi_averageordervalue",
                      "bpi_openreturns")
        ),
        ("contact", "missing_key", "bpi_brightpearlid"),
        ("account", "missing_key", "bpi_brightpearlid"),
        ("contact", "change_tracking_off", "ChangeTrackingEnabled"),
        ("account", "change_tracking_off", "ChangeTrackingEnabled"),
        ("product", "missing_column", "bpi_brightpearlid"),
        ("product", "missing_column", "bpi_availablestock"),
        ("product", "missing_column", "bpi_ean"),  # SKU matching's identifier column (issue 18)
        ("product", "missing_key", "bpi_brightpearlid"),
        ("product", "change_tracking_off", "ChangeTrackingEnabled"),
        *(
            ("salesorder", "missing_column", c)
            for c in ("bpi_brightpearlid", "bpi_sendtobrightpearl", "bpi_shippedon", "bpi_shippingmethod",
                      "bpi_trackingreference", "bpi_invoicereference", "bpi_paymentstatus",
                      "bpi_brightpearlstatus", "bpi_origin", "bpi_channel", "bpi_placedon")
        ),
        ("salesorder", "missing_key", "bpi_brightpearlid"),
        ("salesorder", "change_tracking_off", "ChangeTrackingEnabled"),
        ("salesorderdetail", "change_tracking_off", "ChangeTrackingEnabled"),
        ("salesorderdetail", "missing_column", "bpi_quantityreserved"),  # fulfilment (issue 18)
        ("salesorderdetail", "missing_column", "bpi_quantityreleased"),
        ("incident", "missing_column", "bpi_brightpearlid"),
        ("invoice", "missing_column", "bpi_brightpearlid"),
        ("invoice", "missing_column", "bpi_amountpaid"),
        ("invoice", "missing_key", "bpi_brightpearlid"),
        ("incident", "missing_key", "bpi_brightpearlid"),
    }  # fmt: skip
    assert all(p.fixable and "syncctl dataverse provision" in p.fix for p in problems)
    assert not any("solution" in str(p) for p in problems)  # no solution to import exists


def test_removing_a_mapped_column_is_named(bare, bare_client):
    provisioner(bare_client).run(schema_plan())
    assert check_environment(bare_client) == []
    bare_client.request("DELETE", f"{CONTACT_COLUMNS}(LogicalName='bpi_tags')")
    [problem] = check_environment(bare_client)
    assert (problem.table, problem.kind, problem.name) == ("contact", "missing_column", "bpi_tags")
    assert "bpi_tags" in str(problem) and "syncctl dataverse provision" in str(problem)


def test_a_standard_column_the_mapping_names_is_reported_not_created(bare, bare_client):
    plan = schema_plan()
    contact = plan.tables[0]
    extra = ColumnSpec("nickname", "string", "Nickname", custom=False, max_length=50)
    plan = dataclasses.replace(
        plan, tables=(dataclasses.replace(contact, columns=(*contact.columns, extra)),)
    )
    report = provisioner(bare_client).run(plan)
    [left] = report.remaining
    assert (left.kind, left.name) == ("missing_standard_column", "nickname")
    assert "correct the mapping" in left.fix and not left.fixable


def test_too_short_columns_are_widened_and_missing_options_added(bare, bare_client):
    provisioner(bare_client).run(schema_plan())
    plan = schema_plan()
    contact = plan.tables[0]
    wider = dataclasses.replace(contact.column("bpi_loyaltytier"), max_length=250)  # type: ignore[arg-type]
    segment = contact.column("bpi_segment")
    more = dataclasses.replace(segment, options=(*segment.options, (100000003, "Platinum")))  # type: ignore[arg-type]
    columns = tuple(
        wider if c.name == wider.name else more if c.name == more.name else c for c in contact.columns
    )
    plan = dataclasses.replace(plan, tables=(dataclasses.replace(contact, columns=columns), *plan.tables[1:]))
    assert {(p.kind, p.name) for p in check_environment(bare_client, plan)} == {
        ("column_too_short", "bpi_loyaltytier"),
        ("missing_option", "bpi_segment"),
    }
    report = provisioner(bare_client).run(plan)
    assert report.changes == [
        "contact: add option 100000003 'Platinum' to bpi_segment",
        "contact: widen column bpi_loyaltytier to 250 characters",
    ]
    assert report.published == ["contact"]
    assert check_environment(bare_client, plan) == []
    detail = bare_client.request(
        "GET",
        f"{CONTACT_COLUMNS}(LogicalName='bpi_loyaltytier')/Microsoft.Dynamics.CRM.StringAttributeMetadata",
    ).json()
    assert detail["MaxLength"] == 250


def test_a_column_of_the_wrong_type_is_reported_not_replaced(bare, bare_client):
    body = {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "SchemaName": "bpi_tags",
        "DisplayName": {"LocalizedLabels": [{"Label": "Tags", "LanguageCode": 1033}]},
        "MaxLength": 100,
    }
    bare_client.request("POST", CONTACT_COLUMNS, json_body=body)
    report = provisioner(bare_client).run(schema_plan())
    [left] = report.remaining
    assert (left.kind, left.name) == ("wrong_column_type", "bpi_tags")
    assert "String" in left.message and "Memo" in left.message
