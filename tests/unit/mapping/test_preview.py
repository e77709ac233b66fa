"""syncctl mapping preview/check logic: source, canonical and target side by side."""

from __future__ import annotations

from rich.console import Console

from shared.mapping.config import CustomerMapping
from shared.mapping.preview import build_preview, render_preview
from tests.unit.mapping.samples import BP_ADDRESSES, DV_ACCOUNT, DV_CONTACT, bp_contact, dv_contact


def rendered(renderable: object) -> str:
    console = Console(width=240, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_brightpearl_preview_shows_all_three_columns(mapping: CustomerMapping) -> None:
    text = rendered(
        render_preview("brightpearl", {"contact": bp_contact(), "postalAddresses": BP_ADDRESSES}, mapping)
    )
    assert "source (brightpearl)" in text and "canonical" in text and "target (dataverse)" in text
    assert '"firstName": "Demo"' in text  # source
    assert '"first_name": "Demo"' in text  # canonical
    assert '"firstname": "Demo"' in text  # target
    assert "parentcustomerid_account@odata.bind" in text
    assert "OK: would be written" in text
    assert "content hash for dataverse: c1:" in text


def test_dataverse_preview_with_issues_and_verdict(mapping: CustomerMapping) -> None:
    record = {"contact": dv_contact(lastname=None, emailaddress2="not-an-email"), "account": DV_ACCOUNT}
    preview = build_preview("dataverse", record, mapping)
    assert preview.target_system == "brightpearl"
    assert preview.fatal
    assert {(i.code, i.fatal) for i in preview.issues} == {("MissingLastName", True), ("InvalidEmail", False)}
    assert preview.target is not None and preview.target["postalAddresses"][0]["roles"] == ["DEF", "BIL"]
    text = rendered(render_preview("dataverse", record, mapping))
    assert "DEAD-LETTER: MissingLastName" in text
    assert "emailaddress2 is not a valid e-mail address (missing @); dropped" in text
    assert "not-an-email" in text  # the source column shows the raw record, the issue text does not


def test_expanded_account_is_read_from_the_contact(mapping: CustomerMapping) -> None:
    preview = build_preview("dataverse", dv_contact(parentcustomerid_account=DV_ACCOUNT), mapping)
    assert preview.error is None
    assert (
        preview.canonical is not None and preview.canonical["organisation"]["name"] == "Nordwind Handels GmbH"
    )


def test_incomplete_record_is_explained_not_crashed(mapping: CustomerMapping) -> None:
    text = rendered(render_preview("dataverse", DV_CONTACT, mapping))
    assert "cannot map this record" in text
    assert "pass its account row" in text


def test_bundle_with_tag_names_and_groups(mapping: CustomerMapping) -> None:
    record = {
        "contact": bp_contact(),
        "postalAddresses": BP_ADDRESSES,
        "tagNames": {"1": "VIP", "12": "Trade"},
    }
    preview = build_preview("brightpearl", record, mapping)
    assert preview.canonical is not None and preview.canonical["tags"] == ["Trade", "VIP"]
    assert preview.target is not None and preview.target["contact"]["bpi_tags"] == "Trade, VIP"
