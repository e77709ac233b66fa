"""Content hashes: same content -> same hash; only what the target receives counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.mapping.brightpearl import brightpearl_to_canonical
from shared.mapping.config import CustomerMapping, load_customer_mapping
from shared.mapping.hashing import content_hash
from shared.model.customer import (
    Address,
    Addresses,
    Customer,
    Emails,
    ExternalIds,
    Organisation,
    PersonName,
    Phones,
)
from tests.unit.mapping.samples import BP_ADDRESSES, BP_CONTACT

MAPPING = load_customer_mapping()


def base(**changes: Any) -> Customer:
    values: dict[str, Any] = {
        "name": PersonName(salutation="Dr", first_name="Ada", last_name="Lovelace"),
        "emails": Emails(primary="ada@example.com"),
        "phones": Phones(telephone="+442079460958"),
        "addresses": Addresses(
            billing=Address(line1="12 St James's Square", city="London", postcode="SW1Y 4JH", country="GB")
        ),
        "organisation": Organisation(name="Analytical Engines Ltd"),
        "customer_group": "trade",
        "marketing_consent": True,
        "tags": ("vip", "trade"),
        "custom_fields": {"loyalty_tier": "Gold", "vip": True, "segment": "Gold"},
    }
    values.update(changes)
    return Customer(**values)


def test_hash_is_stable_and_versioned() -> None:
    h = content_hash(base(), "dataverse", MAPPING)
    assert h == content_hash(base(), "dataverse", MAPPING)
    assert h.startswith("c1:") and len(h) == 3 + 64
    assert content_hash(base(), "brightpearl", MAPPING) != h  # different projections


def test_normalisation_differences_do_not_change_the_hash() -> None:
    messy = base(
        name=PersonName(salutation=" Dr ", first_name="  Ada", last_name="Lovelace  "),
        emails=Emails(primary="  ADA@Example.COM"),
        addresses=Addresses(
            billing=Address(
                line1="12  St James's   Square", city="London ", postcode="sw1y 4jh", country="gb"
            )
        ),
        tags=("trade", "vip", "trade"),
        custom_fields={"segment": "Gold", "vip": True, "loyalty_tier": "Gold"},  # other key order
    )
    for target in ("brightpearl", "dataverse"):
        assert content_hash(messy, target, MAPPING) == content_hash(base(), target, MAPPING)  # type: ignore[arg-type]


def test_fields_the_target_does_not_receive_do_not_count(
    mapping_with: Callable[[dict[str, Any]], CustomerMapping],
) -> None:
    other = base(
        ids=ExternalIds(brightpearl="1", dataverse="x"),
        source_system="brightpearl",
        modified_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    )
    assert content_hash(other, "dataverse", MAPPING) == content_hash(base(), "dataverse", MAPPING)
    # Brightpearl does not receive tags
    assert content_hash(base(tags=()), "brightpearl", MAPPING) == content_hash(base(), "brightpearl", MAPPING)
    assert content_hash(base(tags=()), "dataverse", MAPPING) != content_hash(base(), "dataverse", MAPPING)
    # a column mapped to null is not received either
    no_fax = mapping_with({"dataverse": {"contact_columns": {"phones.fax": None}}})
    with_fax = base(phones=Phones(telephone="+442079460958", fax="+442079460959"))
    assert content_hash(with_fax, "dataverse", no_fax) == content_hash(base(), "dataverse", no_fax)
    assert content_hash(with_fax, "dataverse", MAPPING) != content_hash(base(), "dataverse", MAPPING)


def test_real_edits_change_the_hash() -> None:
    h = content_hash(base(), "dataverse", MAPPING)
    assert (
        content_hash(
            base(name=PersonName(salutation="Dr", first_name="ada", last_name="Lovelace")),
            "dataverse",
            MAPPING,
        )
        != h
    )  # a case-only name edit is an edit
    assert content_hash(base(marketing_consent=False), "dataverse", MAPPING) != h
    assert (
        content_hash(
            base(custom_fields={"loyalty_tier": "Silver", "vip": True, "segment": "Gold"}),
            "dataverse",
            MAPPING,
        )
        != h
    )
    assert content_hash(base(organisation=Organisation(name="Other Ltd")), "dataverse", MAPPING) != h


def test_default_mapping_is_used_when_none_given() -> None:
    c = brightpearl_to_canonical(BP_CONTACT, MAPPING, postal_addresses=BP_ADDRESSES).value
    assert content_hash(c, "dataverse") == content_hash(c, "dataverse", MAPPING)


_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=20
)
_spaces = st.sampled_from(["", " ", "  ", "\t", " \u00a0"])


@settings(max_examples=80, deadline=None)
@given(
    first=_text,
    last=_text,
    city=_text,
    pre=_spaces,
    post=_spaces,
    tag_list=st.lists(_text, max_size=4),
    consent=st.none() | st.booleans(),
    local=st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
)
def test_hash_ignores_whitespace_case_and_order(
    first: str,
    last: str,
    city: str,
    pre: str,
    post: str,
    tag_list: list[str],
    consent: bool | None,
    local: str,
) -> None:
    def build(pad: bool) -> Customer:
        def p(s: str) -> str:
            return f"{pre}{s}{post}" if pad else s

        return Customer(
            name=PersonName(first_name=p(first), last_name=p(last)),
            emails=Emails(primary=p((local.upper() if pad else local) + "@Example.com")),
            addresses=Addresses(
                billing=Address(
                    line1=p("1 Road"),
                    city=p(city),
                    postcode=p("ab1 2cd" if pad else "AB1 2CD"),
                    country="gb" if pad else "GB",
                )
            ),
            tags=tuple(reversed(tag_list)) if pad else tuple(tag_list),
            marketing_consent=consent,
        )

    clean, padded = build(False), build(True)
    for target in ("brightpearl", "dataverse"):
        assert content_hash(padded, target, MAPPING) == content_hash(clean, target, MAPPING)  # type: ignore[arg-type]
        # and through a serialisation round trip (what the links table would store)
        again = Customer.model_validate_json(clean.model_dump_json())
        assert content_hash(again, target, MAPPING) == content_hash(clean, target, MAPPING)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(a=_text, b=_text)
def test_different_last_names_give_different_hashes(a: str, b: str) -> None:
    ca, cb = Customer(name=PersonName(last_name=a)), Customer(name=PersonName(last_name=b))
    same_content = ca.name.last_name == cb.name.last_name
    assert (content_hash(ca, "dataverse", MAPPING) == content_hash(cb, "dataverse", MAPPING)) is same_content


def test_group_without_a_place_to_live_is_not_hashed(
    mapping_with: Callable[[dict[str, Any]], CustomerMapping],
) -> None:
    account_only = mapping_with(
        {
            "customer_group": {
                "dataverse_columns": [{"entity": "account", "column": "customertypecode"}],
                "values": [
                    {"group": "retail", "brightpearl": 1, "dataverse": {"customertypecode": 3}},
                    {"group": "trade", "brightpearl": 2, "dataverse": {"customertypecode": 9}},
                ],
            }
        }
    )
    person = base(organisation=None)
    # no account to hold the group: Dataverse cannot store it, so it cannot differ
    assert content_hash(person, "dataverse", account_only) == content_hash(
        person.model_copy(update={"customer_group": "retail"}), "dataverse", account_only
    )
    # with an organisation the account holds it
    assert content_hash(base(), "dataverse", account_only) != content_hash(
        base(customer_group="retail"), "dataverse", account_only
    )
