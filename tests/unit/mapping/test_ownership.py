"""Field ownership decides which side's values a sync writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from shared.mapping.config import CustomerMapping
from shared.mapping.ownership import merge_for_target
from shared.model.customer import Address, Addresses, Customer, Emails, ExternalIds, Organisation, PersonName

T0 = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
EARLIER, LATER = T0 - dt.timedelta(minutes=5), T0 + dt.timedelta(minutes=5)


def customer(system: str, modified: dt.datetime | None, **values: Any) -> Customer:
    base: dict[str, Any] = {
        "name": PersonName(first_name="Sam", last_name="Jones"),
        "emails": Emails(primary="sam@example.com"),
        "addresses": Addresses(billing=Address(line1="1 Old Road", postcode="E1 6AN", country="GB")),
        "marketing_consent": False,
        "customer_group": "retail",
        "custom_fields": {"loyalty_tier": "Bronze", "vip": False, "segment": None},
    }
    base.update(values)
    ids = ExternalIds(brightpearl="200") if system == "brightpearl" else ExternalIds(dataverse="guid-1")
    return Customer(**base, ids=ids, modified_at=modified, source_system=system)  # type: ignore[arg-type]


def test_create_takes_everything_from_the_source(mapping: CustomerMapping) -> None:
    source = customer("dataverse", T0)
    result = merge_for_target(source, None, mapping)
    assert result.customer == source
    assert result.kept == ()


def test_brightpearl_owned_groups_are_not_overwritten_from_dataverse(mapping: CustomerMapping) -> None:
    target = customer("brightpearl", EARLIER)
    source = customer(
        "dataverse",
        LATER,
        addresses=Addresses(billing=Address(line1="9 New Street", postcode="E1 6AN", country="GB")),
        customer_group="trade",
        name=PersonName(first_name="Samuel", last_name="Jones"),
    )
    result = merge_for_target(source, target, mapping)
    assert result.customer.addresses == target.addresses  # addresses: brightpearl
    assert result.customer.customer_group == "retail"  # customer_group: brightpearl
    assert result.customer.name.first_name == "Samuel"  # name: last_writer, Dataverse is newer
    assert "addresses" in result.kept and "name" in result.from_source
    assert result.customer.ids == ExternalIds(brightpearl="200", dataverse="guid-1")


def test_dataverse_owned_marketing_consent_is_not_overwritten_from_brightpearl(
    mapping: CustomerMapping,
) -> None:
    target = customer("dataverse", EARLIER, marketing_consent=False)
    source = customer("brightpearl", LATER, marketing_consent=True)
    assert merge_for_target(source, target, mapping).customer.marketing_consent is False
    # ...but Dataverse's own change does flow to Brightpearl
    assert (
        merge_for_target(
            customer("dataverse", EARLIER, marketing_consent=True), customer("brightpearl", LATER), mapping
        ).customer.marketing_consent
        is True
    )


def test_last_writer_by_modification_time(mapping: CustomerMapping) -> None:
    old_source = customer("dataverse", EARLIER, emails=Emails(primary="old@example.com"))
    newer_target = customer("brightpearl", LATER, emails=Emails(primary="new@example.com"))
    result = merge_for_target(old_source, newer_target, mapping)
    assert result.customer.emails.primary == "new@example.com"
    assert "emails" in result.kept


def test_unknown_time_lets_the_source_win(mapping: CustomerMapping) -> None:
    source = customer("brightpearl", None, emails=Emails(primary="fresh@example.com"))
    target = customer("dataverse", LATER)
    assert merge_for_target(source, target, mapping).customer.emails.primary == "fresh@example.com"


def test_equal_times_go_to_the_configured_tie_winner(
    mapping: CustomerMapping, mapping_with: Callable[[dict[str, Any]], CustomerMapping]
) -> None:
    bp = customer("brightpearl", T0, emails=Emails(primary="bp@example.com"))
    dv = customer("dataverse", T0, emails=Emails(primary="dv@example.com"))
    assert merge_for_target(bp, dv, mapping).customer.emails.primary == "bp@example.com"  # tie: brightpearl
    assert merge_for_target(dv, bp, mapping).customer.emails.primary == "bp@example.com"
    dv_wins = mapping_with({"ownership": {"last_writer_tie": "dataverse"}})
    assert merge_for_target(dv, bp, dv_wins).customer.emails.primary == "dv@example.com"


def test_custom_field_owner_override(mapping: CustomerMapping) -> None:
    target = customer(
        "brightpearl", EARLIER, custom_fields={"loyalty_tier": "Bronze", "vip": True, "segment": None}
    )
    source = customer(
        "dataverse", LATER, custom_fields={"loyalty_tier": "Gold", "vip": False, "segment": "Gold"}
    )
    result = merge_for_target(source, target, mapping)
    assert result.customer.custom_fields == {"loyalty_tier": "Gold", "vip": True, "segment": "Gold"}
    assert "custom_fields.vip" in result.kept and "custom_fields.loyalty_tier" in result.from_source


def test_ownership_is_configuration(mapping_with: Callable[[dict[str, Any]], CustomerMapping]) -> None:
    mapping = mapping_with({"ownership": {"groups": {"addresses": "dataverse"}}})
    target = customer("brightpearl", LATER)
    new_address = Addresses(billing=Address(line1="9 New Street", postcode="E1 6AN", country="GB"))
    source = customer("dataverse", EARLIER, addresses=new_address)
    assert merge_for_target(source, target, mapping).customer.addresses == new_address


def test_organisation_keeps_both_ids(mapping: CustomerMapping) -> None:
    target = customer("dataverse", EARLIER, organisation=Organisation(name="Acme Ltd", dataverse_id="acc-1"))
    source = customer("brightpearl", LATER, organisation=Organisation(name="ACME LTD", brightpearl_id="4"))
    org = merge_for_target(source, target, mapping).customer.organisation
    assert org is not None
    assert (org.name, org.brightpearl_id, org.dataverse_id) == ("ACME LTD", "4", "acc-1")
