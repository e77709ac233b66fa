"""Write decisions: ownership + translation + hashes; converged records are not written again."""

from __future__ import annotations

import datetime as dt

from shared.mapping.brightpearl import brightpearl_to_canonical
from shared.mapping.config import CustomerMapping
from shared.mapping.dataverse import (
    canonical_to_dataverse,
    contact_query,
    contact_select,
    dataverse_to_canonical,
)
from shared.mapping.decision import decide_write
from shared.model.customer import Phones
from tests.unit.mapping.samples import (
    BP_ADDRESSES,
    BP_CONTACT,
    DV_ACCOUNT,
    bp_contact,
    dv_contact,
    store_in_dataverse,
)


def converged(mapping: CustomerMapping):  # type: ignore[no-untyped-def]
    bp = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    row, account = store_in_dataverse(
        canonical_to_dataverse(bp, mapping).value, modified="2013-05-28T20:40:00Z"
    )
    dv = dataverse_to_canonical(row, mapping, account=account).value
    return bp, dv


def test_create_writes_everything(mapping: CustomerMapping) -> None:
    bp = brightpearl_to_canonical(BP_CONTACT, mapping, postal_addresses=BP_ADDRESSES).value
    decision = decide_write(bp, None, "dataverse", mapping)
    assert decision.should_write and decision.current_hash is None
    assert decision.payload.contact["lastname"] == "Customer"
    assert decision.kept == ()


def test_echo_of_our_own_write_is_not_sent_back(mapping: CustomerMapping) -> None:
    bp, dv = converged(mapping)
    # Dataverse reports the change we made; the flow to Brightpearl finds nothing to do
    echo = decide_write(dv, bp, "brightpearl", mapping)
    assert echo.unchanged and not echo.should_write
    # Brightpearl re-notifies the same state; the flow to Dataverse finds nothing to do either
    again = decide_write(bp, dv, "dataverse", mapping)
    assert again.unchanged and not again.should_write


def test_a_real_edit_is_written(mapping: CustomerMapping) -> None:
    bp, dv = converged(mapping)
    later = dt.datetime(2013, 5, 29, 9, 0, tzinfo=dt.UTC)  # Brightpearl's updatedOn after the edit
    edited = bp.model_copy(update={"phones": Phones(telephone="+442079460958"), "modified_at": later})
    decision = decide_write(edited, dv, "dataverse", mapping)
    assert decision.should_write
    assert decision.desired_hash != decision.current_hash
    assert decision.payload.contact["telephone1"] == "+442079460958"


def test_an_older_edit_loses_to_a_newer_target(mapping: CustomerMapping) -> None:
    bp, dv = converged(mapping)  # Dataverse row modified at 20:40, after Brightpearl's 20:35
    stale = bp.model_copy(update={"phones": Phones(telephone="+442079460958")})
    decision = decide_write(stale, dv, "dataverse", mapping)
    assert "phones" in decision.kept
    assert not decision.should_write


def test_change_to_a_field_the_target_owns_is_not_written(mapping: CustomerMapping) -> None:
    bp, dv = converged(mapping)
    # marketing_consent is owned by Dataverse: a Brightpearl-side change does not go there
    flipped = bp.model_copy(update={"marketing_consent": not bp.marketing_consent})
    decision = decide_write(flipped, dv, "dataverse", mapping)
    assert "marketing_consent" in decision.kept
    assert not decision.should_write


def test_fatal_source_issue_blocks_the_write(mapping: CustomerMapping) -> None:
    read = brightpearl_to_canonical(bp_contact(lastName=""), mapping, postal_addresses=BP_ADDRESSES)
    decision = decide_write(read.value, None, "dataverse", mapping, source_issues=read.issues)
    assert decision.fatal and not decision.should_write
    assert decision.reason == "MissingLastName"


def test_link_table_hash_is_used_when_the_target_was_not_fetched(mapping: CustomerMapping) -> None:
    bp, _ = converged(mapping)
    first = decide_write(bp, None, "dataverse", mapping)
    repeat = decide_write(bp, None, "dataverse", mapping, known_target_hash=first.desired_hash)
    assert repeat.unchanged


def test_query_fetches_every_mapped_column_and_the_parent_account(mapping: CustomerMapping) -> None:
    select = contact_select(mapping)
    for column in (
        "firstname",
        "emailaddress1",
        "address2_postalcode",
        "bpi_brightpearlid",
        "bpi_segment",
        "bpi_newsletteroptin",
        "bpi_customergroup",
        "_parentcustomerid_value",
        "modifiedon",
    ):
        assert column in select
    query = contact_query(mapping)
    assert query["$expand"].startswith("parentcustomerid_account($select=")
    assert "customertypecode" in query["$expand"] and "bpi_brightpearlid" in query["$expand"]


def test_expanded_null_parent_means_no_account(mapping: CustomerMapping) -> None:
    # the parent is a contact (or none): $expand answers null and no annotation was asked for
    read = dataverse_to_canonical(dv_contact(parentcustomerid_account=None), mapping)
    assert read.value.organisation is None
    assert dataverse_to_canonical(dv_contact(parentcustomerid_account=DV_ACCOUNT), mapping).value.organisation


def test_required_columns_for_the_environment_check(mapping: CustomerMapping) -> None:
    from shared.mapping.dataverse import required_columns

    required = required_columns(mapping)
    assert {"bpi_brightpearlid", "bpi_newsletteroptin", "bpi_tags", "bpi_segment", "salutation"} <= set(
        required["contact"]
    )
    assert "contactid" not in required["contact"] and "_parentcustomerid_value" not in required["contact"]
    assert {"name", "customertypecode", "bpi_brightpearlid", "address1_line3"} <= set(required["account"])
