"""The simulator's metadata Web API answers as the real service (reference §14): reads with
$select/$expand/casts, column/key/table writes, publish, option values, and errors for bad bodies."""

from __future__ import annotations

from typing import Any

import pytest

from shared.dataverse.errors import DataverseError
from shared.dataverse.provision import attribute_body, key_body, label, schema_plan
from tests.unit.dataverse.provisionfixtures import KEY_SECONDS, bare, bare_client, bare_server

__all__ = ["bare", "bare_client", "bare_server"]

CONTACT = "EntityDefinitions(LogicalName='contact')"


def error_of(client: Any, method: str, path: str, body: Any = None) -> DataverseError:
    with pytest.raises(DataverseError) as caught:
        client.request(method, path, json_body=body)
    return caught.value


def column(name: str = "bpi_note", **overrides: Any) -> dict[str, Any]:
    body = {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "SchemaName": name,
        "DisplayName": label("Note"),
        "MaxLength": 100,
    }
    return {**body, **overrides}


def test_create_a_column_answers_204_with_its_url_and_it_reads_back(bare_client):
    response = bare_client.request("POST", f"{CONTACT}/Attributes", json_body=column())
    assert response.status_code == 204
    assert response.headers["OData-EntityId"].startswith(
        f"{bare_client.url}/api/data/v9.2/{CONTACT}/Attributes("
    )
    row = bare_client.request("GET", f"{CONTACT}/Attributes(LogicalName='bpi_note')").json()
    assert row["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert (row["AttributeType"], row["MaxLength"], row["IsCustomAttribute"]) == ("String", 100, True)
    assert row["DisplayName"]["LocalizedLabels"][0]["Label"] == "Note"


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"SchemaName": "bpi_x", "DisplayName": label("X")}, "0x80048d19", "'@odata.type' is required"),
        (
            column(**{"@odata.type": "Microsoft.Dynamics.CRM.LookupAttributeMetadata"}),
            "0x80048d19",
            "relationships",
        ),
        (column(SchemaName=None), "0x80040203", "SchemaName is required"),
        (column(SchemaName="note"), "0x80040203", "customization prefix"),
        (column(SchemaName="bpi_no-te"), "0x80044364", "only letters"),
        (column(SchemaName="1bpi_note"), "0x80044365", "start with a letter"),
        (column(SchemaName="bpi_" + "n" * 60), "0x80044367", "exceeds"),
        (column(DisplayName=None), "0x80040203", "DisplayName is required"),
        (column(MaxLength=5000), "0x80040203", "MaxLength must be an integer from 1 to 4000"),
        (column(RequiredLevel={"Value": "SystemRequired"}), "0x80040203", "RequiredLevel"),
        (column(LogicalName="bpi_other"), "0x80040203", "lower-cased SchemaName"),
        (
            column(**{"@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata"}),
            "0x80040203",
            "needs an OptionSet",
        ),
        (
            column(
                **{
                    "@odata.type": "Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
                    "OptionSet": {
                        "Options": [{"Value": 1, "Label": label("A")}, {"Value": 1, "Label": label("B")}]
                    },
                }
            ),
            "0x80040203",
            "used twice",
        ),
        (
            column(**{"@odata.type": "Microsoft.Dynamics.CRM.BooleanAttributeMetadata"}),
            "0x80040203",
            "TrueOption",
        ),
    ],
)
def test_bad_column_bodies_are_refused_with_the_field_named(bare_client, body, code, text):
    body = {k: v for k, v in body.items() if v is not None}
    error = error_of(bare_client, "POST", f"{CONTACT}/Attributes", body)
    assert (error.status, error.code) == (400, code) and text in str(error)


def test_a_second_column_with_the_same_schema_name_is_not_unique(bare_client):
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=column())
    error = error_of(bare_client, "POST", f"{CONTACT}/Attributes", column(SchemaName="BPI_Note"))
    assert error.code == "0x80044363" and "is not unique" in str(error)


def test_type_specific_properties_need_a_cast_as_on_the_real_service(bare_client):
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=column())
    error = error_of(bare_client, "GET", f"{CONTACT}/Attributes?$select=LogicalName,MaxLength")
    assert error.status == 400 and "Could not find a property named 'MaxLength'" in str(error)
    rows = bare_client.request(
        "GET",
        f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata",
        params={"$select": "LogicalName,MaxLength", "$filter": "IsCustomAttribute eq true"},
    ).json()["value"]
    assert [(r["@odata.type"], r["LogicalName"], r["MaxLength"]) for r in rows] == [
        ("#Microsoft.Dynamics.CRM.StringAttributeMetadata", "bpi_note", 100)
    ]
    assert set(rows[0]) == {"@odata.type", "MetadataId", "LogicalName", "MaxLength"}
    segment = next(c for c in schema_plan().tables[0].columns if c.name == "bpi_segment")
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=attribute_body(segment))
    picklists = bare_client.request(
        "GET",
        f"{CONTACT}/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        params={
            "$select": "LogicalName",
            "$expand": "OptionSet($select=Options)",
            "$filter": "LogicalName eq 'bpi_segment'",
        },
    ).json()["value"]
    assert [o["Value"] for o in picklists[0]["OptionSet"]["Options"]] == [100000000, 100000001, 100000002]


def test_updates_are_put_not_patch_and_take_effect_when_published(bare_client):
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=column())
    path = f"{CONTACT}/Attributes(LogicalName='bpi_note')"
    assert error_of(bare_client, "PATCH", path, {"MaxLength": 200}).code == "0x80060888"
    definition = bare_client.request("GET", f"{path}/Microsoft.Dynamics.CRM.StringAttributeMetadata").json()
    assert "@odata.context" in definition
    assert "@odata.context" in str(error_of(bare_client, "PUT", path, {**definition, "MaxLength": 200}))
    definition.pop("@odata.context")
    wrong = {**definition, "@odata.type": "Microsoft.Dynamics.CRM.MemoAttributeMetadata"}
    assert "cannot be changed" in str(error_of(bare_client, "PUT", path, wrong))
    bare_client.request("PUT", path, json_body={**definition, "MaxLength": 200})
    assert bare_client.request("GET", path).json()["MaxLength"] == 100  # not yet published
    bad_xml = {"ParameterXml": "<importexportxml><entities>"}
    assert "not well-formed" in str(error_of(bare_client, "POST", "PublishXml", bad_xml))
    unknown = {
        "ParameterXml": "<importexportxml><entities><entity>nosuch</entity></entities></importexportxml>"
    }
    assert "nosuch" in str(error_of(bare_client, "POST", "PublishXml", unknown))
    xml = "<importexportxml><entities><entity>contact</entity></entities></importexportxml>"
    assert bare_client.request("POST", "PublishXml", json_body={"ParameterXml": xml}).status_code == 204
    assert bare_client.request("GET", path).json()["MaxLength"] == 200


def test_change_tracking_is_enabled_by_a_full_put_and_cannot_be_turned_off(bare_client):
    definition = bare_client.request("GET", CONTACT).json()
    assert definition["ChangeTrackingEnabled"] is False and "Attributes" not in definition  # not expanded
    assert error_of(bare_client, "PATCH", CONTACT, {"ChangeTrackingEnabled": True}).status == 405
    assert "LogicalName or MetadataId" in str(
        error_of(bare_client, "PUT", CONTACT, {"ChangeTrackingEnabled": True})
    )
    definition.pop("@odata.context")
    bare_client.request("PUT", CONTACT, json_body={**definition, "ChangeTrackingEnabled": True})
    assert bare_client.request("GET", CONTACT).json()["ChangeTrackingEnabled"] is False  # until published
    assert bare_client.request("POST", "PublishAllXml").status_code == 204
    assert bare_client.request("GET", CONTACT).json()["ChangeTrackingEnabled"] is True
    off = {**definition, "ChangeTrackingEnabled": False}
    assert "cannot be disabled" in str(error_of(bare_client, "PUT", CONTACT, off))


def test_keys_start_pending_then_become_active_and_colliding_keys_are_refused(bare, bare_client):
    key_column = next(c for c in schema_plan().tables[0].columns if c.name == "bpi_brightpearlid")
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=attribute_body(key_column))
    key = next(iter(schema_plan().tables[0].keys))
    assert bare_client.request("POST", f"{CONTACT}/Keys", json_body=key_body(key)).status_code == 204
    status = bare_client.request("GET", f"{CONTACT}/Keys").json()["value"][0]["EntityKeyIndexStatus"]
    assert status == "Pending"
    error = error_of(bare_client, "GET", "contacts(bpi_brightpearlid='1')")  # not usable until Active
    assert error.code == "0x80060888"
    assert error_of(bare_client, "POST", f"{CONTACT}/Keys", key_body(key)).code == "0x80060893"
    same_columns = {**key_body(key), "SchemaName": "bpi_other_key"}
    assert error_of(bare_client, "POST", f"{CONTACT}/Keys", same_columns).code == "0x80060894"
    memo = {**key_body(key), "SchemaName": "bpi_memo_key", "KeyAttributes": ["description"]}
    assert "cannot be part of a key" in str(error_of(bare_client, "POST", f"{CONTACT}/Keys", memo))
    missing = {**key_body(key), "SchemaName": "bpi_x_key", "KeyAttributes": ["bpi_nosuch"]}
    assert "bpi_nosuch" in str(error_of(bare_client, "POST", f"{CONTACT}/Keys", missing))
    bare.admin.call("POST", "clock/advance", {"seconds": KEY_SECONDS + 1})
    status = bare_client.request("GET", f"{CONTACT}/Keys").json()["value"][0]["EntityKeyIndexStatus"]
    assert status == "Active"
    assert bare_client.get_or_none("contacts", {"bpi_brightpearlid": "1"}) is None  # the key works


def test_columns_are_deleted_only_when_custom_and_not_in_a_key(bare_client):
    assert "not a custom attribute" in str(
        error_of(bare_client, "DELETE", f"{CONTACT}/Attributes(LogicalName='firstname')")
    )
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=column())
    bare_client.request("DELETE", f"{CONTACT}/Attributes(LogicalName='bpi_note')")
    assert error_of(bare_client, "GET", f"{CONTACT}/Attributes(LogicalName='bpi_note')").status == 404


def test_insert_option_value_adds_an_option_once(bare_client):
    segment = next(c for c in schema_plan().tables[0].columns if c.name == "bpi_segment")
    bare_client.request("POST", f"{CONTACT}/Attributes", json_body=attribute_body(segment))
    body = {
        "EntityLogicalName": "contact",
        "AttributeLogicalName": "bpi_segment",
        "Value": 100000003,
        "Label": label("Platinum"),
    }
    assert (
        bare_client.request("POST", "InsertOptionValue", json_body=body).json()["NewOptionValue"] == 100000003
    )
    assert "already exists" in str(error_of(bare_client, "POST", "InsertOptionValue", body))
    not_choice = {**body, "AttributeLogicalName": "firstname"}
    assert "choice (picklist)" in str(error_of(bare_client, "POST", "InsertOptionValue", not_choice))
