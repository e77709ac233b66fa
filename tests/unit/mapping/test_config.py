"""Loading and validating mappings/customers.yaml: every error names the YAML path of the bad entry."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.mapping.config import DEFAULT_PATH, MappingError, load_customer_mapping, read_customer_mapping
from shared.mapping.preview import check_mapping
from shared.quality.issues import IssueCode, Severity


def problems_of(
    write_mapping: Callable[..., Path], changes: dict[str, Any] | None = None, **kw: Any
) -> list[str]:
    return check_mapping(write_mapping(changes, **kw))


def test_shipped_mapping_is_valid() -> None:
    assert check_mapping(DEFAULT_PATH) == []
    assert check_mapping(None) == []
    mapping = load_customer_mapping()
    assert mapping.dataverse.contact_key == "bpi_brightpearlid"
    assert mapping.dataverse.account.key == "bpi_brightpearlid"
    assert mapping.quality.severity(IssueCode.INVALID_PHONE, "phones.secondary") is Severity.WARNING
    assert mapping.ownership.owner_of("addresses") == "brightpearl"


def test_unknown_field_group_in_ownership(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, {"ownership": {"groups": {"adresses": "brightpearl"}}})
    assert len(problems) == 1
    assert problems[0].startswith("ownership.groups.adresses: unknown field group 'adresses'")


def test_bad_owner_value(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, {"ownership": {"groups": {"name": "whoever"}}})
    assert problems == ["ownership.groups.name: Input should be 'brightpearl', 'dataverse' or 'last_writer'"]


def test_unknown_dataverse_column(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, {"dataverse": {"contact_columns": {"phones.mobile": "mobilephon"}}})
    assert len(problems) == 1
    assert problems[0].startswith(
        "dataverse.contact_columns.phones.mobile: unknown Dataverse column contact.'mobilephon'"
    )


def test_column_of_the_wrong_type_or_read_only(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(
        write_mapping,
        {
            "dataverse": {
                "contact_columns": {"phones.fax": "statecode", "website": "fullname"},
                "marketing_consent": {"column": "jobtitle"},
            }
        },
    )
    assert (
        "dataverse.contact_columns.phones.fax: statecode is a picklist column; phones.fax needs a text column"
        in problems
    )
    assert "dataverse.contact_columns.website: Dataverse column contact.fullname is read-only" in problems
    assert "dataverse.marketing_consent.column: jobtitle is not a yes/no column" in problems


def test_one_column_mapped_twice(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, {"dataverse": {"contact_columns": {"phones.fax": "telephone1"}}})
    assert problems == [
        "dataverse.contact_columns.phones.fax: contact column telephone1 is already mapped at "
        "dataverse.contact_columns.phones.telephone"
    ]


def test_unknown_canonical_field(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, {"dataverse": {"contact_columns": {"phones.pager": "telephone3"}}})
    assert len(problems) == 1 and problems[0].startswith(
        "dataverse.contact_columns.phones.pager: unknown canonical field"
    )


def test_value_map_option_outside_the_choice(
    write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]
) -> None:
    values = shipped_yaml["customer_group"]["values"]
    values[0]["dataverse"]["customertypecode"] = 42
    problems = problems_of(write_mapping, {"customer_group": {"values": values}})
    assert problems == [
        "customer_group.values[0].dataverse.customertypecode: 42 is not an option of customertypecode "
        "(options [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])"
    ]


def test_value_map_missing_value_wrong_type_and_unlisted_column(
    write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]
) -> None:
    values = shipped_yaml["customer_group"]["values"]
    del values[1]["dataverse"]["bpi_customergroup"]
    values[2]["dataverse"]["customertypecode"] = "Reseller"
    values[0]["dataverse"]["accountnumber"] = "A-1"
    problems = problems_of(write_mapping, {"customer_group": {"values": values}})
    assert "customer_group.values[1].dataverse: missing a value for contact.bpi_customergroup" in problems
    assert (
        "customer_group.values[2].dataverse.customertypecode: customertypecode is a choice column "
        "and needs an integer option value" in problems
    )
    assert (
        "customer_group.values[0].dataverse.accountnumber: column is not listed in "
        "customer_group.dataverse_columns" in problems
    )


def test_value_map_duplicates_and_ambiguous_read_back(
    write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]
) -> None:
    values = shipped_yaml["customer_group"]["values"]
    values[1]["brightpearl"] = 1  # price list 1 twice
    values[1]["prefer_on_read"] = False  # 9 now shared by trade and wholesale with no preference
    problems = problems_of(write_mapping, {"customer_group": {"values": values}})
    assert (
        "customer_group.values[1].brightpearl: duplicate Brightpearl value 1 (also at values[0])" in problems
    )
    assert any(
        p.startswith("customer_group.values[2].dataverse.customertypecode: value 9 is shared by values[1, 2]")
        for p in problems
    )


def test_duplicate_custom_field(write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]) -> None:
    fields = shipped_yaml["custom_fields"]
    fields.append(
        {"name": "loyalty_again", "brightpearl": "PCF_LOYALTY", "dataverse": "bpi_loyalty2", "type": "text"}
    )
    problems = problems_of(write_mapping, {"custom_fields": fields})
    assert problems == [
        "custom_fields[3].brightpearl: duplicate custom field 'PCF_LOYALTY' (also at custom_fields[0])"
    ]


def test_custom_field_shape_errors(write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]) -> None:
    fields = shipped_yaml["custom_fields"]
    fields[0]["brightpearl"] = "LOYALTY"
    fields[1]["type"] = "boolean"
    problems = problems_of(write_mapping, {"custom_fields": fields})
    assert "custom_fields[0].brightpearl: String should match pattern '^PCF_[A-Z0-9_]{1,60}$'" in problems
    assert any(p.startswith("custom_fields[1].type: Input should be 'text'") for p in problems)


def test_custom_field_needs_known_or_prefixed_column_and_select_options(
    write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]
) -> None:
    fields = shipped_yaml["custom_fields"]
    fields[0]["dataverse"] = "new_loyalty"
    fields[2]["options"] = []
    problems = problems_of(write_mapping, {"custom_fields": fields})
    assert any(
        p.startswith("custom_fields[0].dataverse: unknown Dataverse column contact.'new_loyalty'")
        for p in problems
    )
    assert "custom_fields[2].options: a select field needs its options" in problems


def test_address_role_in_two_slots(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, {"dataverse": {"addresses": {"address2": ["shipping", "billing"]}}})
    assert problems == ["dataverse.addresses.address2[1]: role billing is already mapped to address1"]


def test_unknown_keys_and_severities(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(
        write_mapping,
        {
            "colour": "blue",
            "quality": {
                "severities": {"InvalidEmail": "sometimes"},
                "field_severities": {"telephones.fax": {"InvalidPhone": "warning"}},
            },
        },
    )
    assert "colour: Extra inputs are not permitted" in problems
    assert any(
        p.startswith("quality.severities.InvalidEmail: Input should be 'fatal' or 'warning'")
        for p in problems
    )


def test_unknown_group_in_field_severities(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(
        write_mapping, {"quality": {"field_severities": {"telephones.fax": {"InvalidPhone": "warning"}}}}
    )
    assert len(problems) == 1
    assert problems[0].startswith("quality.field_severities.telephones.fax: unknown field group 'telephones'")


def test_yaml_syntax_error_names_line(write_mapping: Callable[..., Path]) -> None:
    problems = problems_of(write_mapping, raw="version: 1\nownership:\n  groups: [name: x\n")
    assert len(problems) == 1
    assert problems[0].startswith("(yaml): line ")


def test_missing_file_and_non_mapping_document(tmp_path: Path, write_mapping: Callable[..., Path]) -> None:
    assert check_mapping(tmp_path / "nope.yaml")[0].startswith("(file): cannot read")
    assert problems_of(write_mapping, raw="- just\n- a list\n") == [
        "(root): the mapping file must be a YAML mapping (key: value)"
    ]


def test_mapping_error_lists_all_problems_and_the_file(write_mapping: Callable[..., Path]) -> None:
    path = write_mapping(
        {
            "ownership": {"groups": {"nope": "brightpearl"}},
            "dataverse": {"contact_columns": {"website": "homepage"}},
        }
    )
    with pytest.raises(MappingError) as caught:
        read_customer_mapping(path)
    assert len(caught.value.problems) == 2
    assert str(path) in str(caught.value)


def test_load_is_cached_per_file_version(
    write_mapping: Callable[..., Path], shipped_yaml: dict[str, Any]
) -> None:
    path = write_mapping()
    first = load_customer_mapping(path)
    assert load_customer_mapping(path) is first
    import yaml

    changed = dict(
        shipped_yaml, duplicates={"name_threshold": 70, "require_postcode": True, "max_candidates": 5}
    )
    path.write_text(yaml.safe_dump(changed), encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert load_customer_mapping(path).duplicates.name_threshold == 70
