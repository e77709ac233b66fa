"""Mapping suggestions: the evidence (name, type, values), the one-to-one proposal and the
mapping text it is inserted into (shared/suggest)."""

from __future__ import annotations

from pathlib import Path

import yaml

from shared.mapping.config import read_customer_mapping
from shared.suggest.fields import FieldInfo, brightpearl_fields, dataverse_fields
from shared.suggest.profile import normalise, profiles
from shared.suggest.propose import Mapped, check_text, customer_mapped, insert_block, suggest
from shared.suggest.scoring import evidence, name_score, type_score, value_score
from shared.suggest.service import drift_items

ROOT = Path(__file__).resolve().parents[3]
MAPPED = Mapped(prefixes=("bpi_",))


def bp(code: str, label: str, kind: str, raw: str, options: tuple[tuple[int, str], ...] = ()) -> FieldInfo:
    return FieldInfo("brightpearl", code, label, kind, raw, options=options)  # type: ignore[arg-type]


def dv(
    code: str, label: str, kind: str, raw: str, options: tuple[tuple[int, str], ...] = (), **kw: int
) -> FieldInfo:
    return FieldInfo("dataverse", code, label, kind, raw, options=options, **kw)  # type: ignore[arg-type]


CREDIT = bp("PCF_CREDITDAYS", "Credit terms (days)", "integer", "INTEGER")
TERMS = dv("bpi_paymenttermsdays", "Payment terms (days)", "integer", "Integer")
SHOES = dv("bpi_shoesize", "Shoe size", "integer", "Integer")
BIRTHDAY = bp("PCF_BIRTHDAY", "Birthday", "date", "DATE")
DOB = dv("bpi_dateofbirth", "Date of birth", "date", "DateTime")
LAST = dv("bpi_lastcontacted", "Last contacted", "date", "DateTime")


def test_name_similarity_compares_labels_and_codes_as_tokens_without_prefixes() -> None:
    assert name_score(CREDIT, TERMS).value > name_score(CREDIT, SHOES).value + 0.3
    same_code = name_score(
        bp("PCF_STORE", "Home shop", "text", "TEXT"), dv("bpi_store", "Branch", "text", "String")
    )
    assert same_code.value == 1.0 and "code 'store' ~ code 'store'" in same_code.reason
    camel = name_score(
        bp("PCF_LOYALTY", "Loyalty tier", "text", "TEXT"), dv("bpi_loyaltyTier", "x", "text", "String")
    )
    assert camel.value == 1.0


def test_type_fit_is_what_mapping_check_accepts() -> None:
    text = bp("PCF_A", "A", "text", "TEXT")
    assert type_score(text, dv("bpi_a", "A", "text", "String")).value == 1.0
    assert type_score(text, dv("bpi_a", "A", "textarea", "Memo")).value == 0.8
    assert type_score(text, dv("bpi_a", "A", "date", "DateTime")).value == 0.0
    yesno = bp("PCF_B", "B", "yesno", "YES_NO")
    assert type_score(yesno, dv("bpi_b", "B", "yesno", "Boolean")).value == 1.0
    assert (
        type_score(CREDIT, dv("bpi_c", "C", "decimal", "Decimal")).reason
        == "INTEGER does not fit a Decimal column"
    )


def test_values_are_normalised_so_both_systems_compare() -> None:
    segment_bp = bp("PCF_SEGMENT", "Segment", "select", "SELECT", ((11, "Gold"),))
    segment_dv = dv("bpi_segment", "Segment", "select", "Picklist", ((100000000, "Gold"),))
    assert normalise(segment_bp, {"id": 11, "value": "Gold"}) == normalise(segment_dv, 100000000) == "gold"
    assert normalise(segment_bp, {"id": 11}) == "gold"
    assert (
        normalise(BIRTHDAY, "1980-05-02T00:00:00.000+00:00") == normalise(DOB, "1980-05-02") == "1980-05-02"
    )
    assert normalise(CREDIT, "") is None and normalise(bp("PCF_V", "V", "yesno", "YES_NO"), True) == "true"


def test_linked_records_that_agree_outweigh_a_near_name() -> None:
    days = [f"19{50 + n}-0{1 + n % 9}-1{n % 10}" for n in range(20)]
    bp_rows = [(str(n), {"PCF_BIRTHDAY": d}) for n, d in enumerate(days)]
    dv_rows = [
        (str(n), {"bpi_dateofbirth": d, "bpi_lastcontacted": f"2025-0{1 + n % 9}-1{n % 10}"})
        for n, d in enumerate(days)
    ]
    a = profiles([BIRTHDAY], bp_rows)["PCF_BIRTHDAY"]
    b = profiles([DOB, LAST], dv_rows)
    right = value_score(BIRTHDAY, DOB, a, b["bpi_dateofbirth"])
    wrong = value_score(BIRTHDAY, LAST, a, b["bpi_lastcontacted"])
    assert right is not None and wrong is not None
    assert right.value > 0.9 and "20/20 linked records agree" in right.reason
    assert wrong.value < 0.5 and "0/20 linked records agree" in wrong.reason
    proposal = suggest("customer", [BIRTHDAY], [LAST, DOB], MAPPED, {"PCF_BIRTHDAY": a}, b)
    assert proposal.pairs() == {"PCF_BIRTHDAY": "bpi_dateofbirth"}
    assert [f.code for f in proposal.unmatched_dataverse] == ["bpi_lastcontacted"]


def test_linked_records_that_disagree_veto_a_pair_whatever_the_names() -> None:
    code = bp("PCF_STORECODE", "Store code", "text", "TEXT")
    name = dv("bpi_storename", "Store name", "text", "String")
    assert suggest("customer", [code], [name], MAPPED).pairs() == {"PCF_STORECODE": "bpi_storename"}
    stores = ["Leeds", "York", "Bristol", "Cardiff"]
    bp_rows = [(str(n), {"PCF_STORECODE": f"S0{n % 4}"}) for n in range(20)]
    dv_rows = [(str(n), {"bpi_storename": stores[n % 4]}) for n in range(20)]
    a, b = profiles([code], bp_rows), profiles([name], dv_rows)
    proposal = suggest("customer", [code], [name], MAPPED, a, b)
    assert proposal.pairs() == {}
    ev = evidence(code, name, a["PCF_STORECODE"], b["bpi_storename"])
    assert ev.contradicted and ev.confidence == 0.0 and "0/20 linked records agree" in ev.lines()[2]


def test_a_choice_pair_maps_the_options_both_sides_share_and_notes_the_rest() -> None:
    referral = bp(
        "PCF_REFERRAL", "Referral source", "select", "SELECT", ((21, "Google"), (22, "Friend"), (23, "Radio"))
    )
    heard = dv(
        "bpi_referralsource",
        "How did you hear about us",
        "select",
        "Picklist",
        ((7, "google"), (8, "Friend")),
    )
    [s] = suggest("customer", [referral], [heard], MAPPED).suggestions
    assert s.entry["options"] == [
        {"value": "Google", "brightpearl_id": 21, "dataverse": 7},
        {"value": "Friend", "brightpearl_id": 22, "dataverse": 8},
    ]
    assert any("Radio" in line for line in s.yaml_lines())


def test_already_mapped_fields_and_unprefixed_columns_are_not_candidates() -> None:
    mapping = read_customer_mapping(ROOT / "mappings" / "customers.yaml")
    mapped = customer_mapped(mapping)
    fields = [
        bp("PCF_LOYALTY", "Loyalty tier", "text", "TEXT"),
        bp("PCF_HOBBY", "Hobby", "text", "TEXT"),
    ]
    columns = [
        dv("bpi_loyaltytier", "Loyalty tier", "text", "String"),
        dv("jobtitle", "Hobby", "text", "String"),
        dv("bpi_hobby", "Hobby", "text", "String"),
    ]
    assert suggest("customer", fields, columns, mapped).pairs() == {"PCF_HOBBY": "bpi_hobby"}


def test_the_proposal_is_inserted_into_custom_fields_keeping_the_file_and_passes_check(
    tmp_path: Path,
) -> None:
    text = (ROOT / "mappings" / "customers.yaml").read_text()
    mapped = customer_mapped(read_customer_mapping(ROOT / "mappings" / "customers.yaml"))
    fields = [bp("PCF_TAXEXEMPT", "Tax exempt", "yesno", "YES_NO")]
    columns = [dv("bpi_taxexempt", "Tax exempt", "yesno", "Boolean")]
    proposal = suggest("customer", fields, columns, mapped)
    new = insert_block(text, proposal.block())
    assert new.startswith(text[: text.index("custom_fields:")]) and "duplicates:\n  name_threshold" in new
    data = yaml.safe_load(new)
    assert data["custom_fields"][-1] == {
        "name": "tax_exempt",
        "brightpearl": "PCF_TAXEXEMPT",
        "dataverse": "bpi_taxexempt",
        "type": "yesno",
    }
    assert len(data["custom_fields"]) == 4 and data["duplicates"]["max_candidates"] == 5
    assert check_text(new, [read_customer_mapping], tmp_path) == []
    empty = insert_block("version: 1\ncustom_fields: []\nduplicates: {}\n", proposal.block())
    assert yaml.safe_load(empty)["custom_fields"][0]["brightpearl"] == "PCF_TAXEXEMPT"
    missing = insert_block("version: 1\n", proposal.block())
    assert yaml.safe_load(missing)["custom_fields"][0]["dataverse"] == "bpi_taxexempt"


def test_check_text_names_the_problem_of_a_proposal_that_does_not_fit(tmp_path: Path) -> None:
    bad = "custom_fields:\n  - {name: x, brightpearl: PCF_X, dataverse: bpi_x, type: yesno, max_length: 5}\n"
    assert "custom_fields[0].max_length: only text fields have a length" in check_text(
        bad, [read_customer_mapping], tmp_path
    )


def test_both_metadata_shapes_become_fields() -> None:
    [select] = brightpearl_fields(
        [
            {
                "id": 3,
                "code": "PCF_SOURCE",
                "name": "Source",
                "customFieldType": "SELECT",
                "options": {"9": {"id": 9, "value": "Web"}, "10": {"id": 10, "value": "Phone"}},
            }
        ]
    )
    assert (select.kind, select.options) == ("select", ((9, "Web"), (10, "Phone")))
    label = {"UserLocalizedLabel": {"Label": "Segment"}}
    [column] = dataverse_fields(
        [
            {
                "LogicalName": "bpi_segment",
                "AttributeType": "Picklist",
                "IsCustomAttribute": True,
                "DisplayName": label,
            }
        ],
        {
            "bpi_segment": {
                "OptionSet": {"Options": [{"Value": 1, "Label": {"LocalizedLabels": [{"Label": "Gold"}]}}]}
            }
        },
    )
    assert (column.label, column.kind, column.options, column.custom) == (
        "Segment",
        "select",
        ((1, "Gold"),),
        True,
    )


def test_drift_gives_every_ignored_field_a_suggested_line() -> None:
    gift = bp("PCF_GIFTAID", "Gift aid", "yesno", "YES_NO")
    region = dv("bpi_marketingregion", "Marketing region", "text", "String")
    items = {i.key: i for i in drift_items(suggest("customer", [gift], [region], MAPPED), MAPPED)}
    assert yaml.safe_load(items["brightpearl:PCF_GIFTAID"].suggested) == [
        {"name": "gift_aid", "brightpearl": "PCF_GIFTAID", "dataverse": "bpi_giftaid", "type": "yesno"}
    ]
    assert "provision" in items["brightpearl:PCF_GIFTAID"].note
    assert yaml.safe_load(items["dataverse:bpi_marketingregion"].suggested) == [
        {
            "name": "marketing_region",
            "brightpearl": "PCF_MARKETINGREGION",
            "dataverse": "bpi_marketingregion",
            "type": "text",
        }
    ]
