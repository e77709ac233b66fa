"""Translators never crash on odd field values: bad data becomes issues, not exceptions."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.mapping.brightpearl import brightpearl_to_canonical, canonical_to_brightpearl
from shared.mapping.config import load_customer_mapping
from shared.mapping.dataverse import canonical_to_dataverse, dataverse_to_canonical
from shared.mapping.hashing import content_hash
from tests.unit.mapping.samples import BP_ADDRESSES, BP_CONTACT, DV_ACCOUNT, DV_CONTACT

MAPPING = load_customer_mapping()

_scalar = st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=40)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)

BP_PATHS = [
    ("salutation",),
    ("firstName",),
    ("lastName",),
    ("communication", "emails", "PRI", "email"),
    ("communication", "telephones", "PRI"),
    ("communication", "telephones", "SEC"),
    ("communication", "websites", "PRI"),
    ("marketingDetails", "isReceiveEmailNewsletter"),
    ("financialDetails", "priceListId"),
    ("organisation", "name"),
    ("organisation", "organisationId"),
    ("contactTags",),
    ("updatedOn",),
    ("customFields", "PCF_LOYALTY"),
    ("customFields", "PCF_VIP"),
    ("customFields", "PCF_SEGMENT"),
]
DV_COLUMNS = [
    "firstname",
    "lastname",
    "emailaddress1",
    "telephone1",
    "mobilephone",
    "websiteurl",
    "address1_country",
    "address1_postalcode",
    "bpi_newsletteroptin",
    "bpi_tags",
    "bpi_customergroup",
    "bpi_segment",
    "bpi_vip",
    "bpi_loyaltytier",
    "modifiedon",
    "bpi_brightpearlid",
]


def _set(record: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = record
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(BP_PATHS), _json), min_size=1, max_size=4))
def test_brightpearl_reader_turns_garbage_into_issues(changes: list[tuple[tuple[str, ...], Any]]) -> None:
    contact = copy.deepcopy(BP_CONTACT)
    for path, value in changes:
        _set(contact, path, value)
    read = brightpearl_to_canonical(contact, MAPPING, postal_addresses=BP_ADDRESSES)
    written = canonical_to_dataverse(read.value, MAPPING)
    assert isinstance(written.value.contact, dict)
    assert content_hash(read.value, "dataverse", MAPPING).startswith("c1:")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(DV_COLUMNS), _json, min_size=1, max_size=4))
def test_dataverse_reader_turns_garbage_into_issues(changes: dict[str, Any]) -> None:
    contact = dict(copy.deepcopy(DV_CONTACT), **changes)
    read = dataverse_to_canonical(contact, MAPPING, account=DV_ACCOUNT)
    written = canonical_to_brightpearl(read.value, MAPPING)
    assert isinstance(written.value.contact, dict)
    assert content_hash(read.value, "brightpearl", MAPPING).startswith("c1:")
