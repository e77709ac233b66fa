"""`all_links(entity)` and `unlink`, which reconciliation reads and heals with: the Table Storage
LinkStore (Azurite) and the in-memory MemoryLinks agree."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.store import StateStore
from shared.sync.fakes import MemoryLinks


@pytest.fixture(params=["azurite", "memory"])
def links(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryLinks()
        return
    azurite = request.getfixturevalue("azurite")
    store = StateStore.from_connection_string(azurite, table_prefix=f"l{uuid.uuid4().hex[:10]}")
    store.ensure_tables()
    yield store.links
    store.drop_tables()
    store.close()


def test_every_link_of_an_entity_once_whichever_side_created_it(links: Any) -> None:
    links.link("customer", "brightpearl", "101", "dataverse", "aaaa", source_hash="b1", target_hash="d1")
    links.link("customer", "dataverse", "bbbb", "brightpearl", "102", source_hash="d2", target_hash="b2")
    links.link("customer_group", "brightpearl", "7", "dataverse", "cccc")  # another entity
    links.link("product", "brightpearl", "5", "dataverse", "dddd")
    links.claim("customer", "brightpearl", "103", "dataverse")  # pending: listed, not linked

    listed = {
        (k.side("brightpearl").id, k.side("dataverse").id, k.is_linked) for k in links.all_links("customer")
    }

    assert listed == {("101", "aaaa", True), ("102", "bbbb", True), ("103", None, False)}
    [one] = [k for k in links.all_links("customer") if k.side("brightpearl").id == "102"]
    assert (one.hash_of("brightpearl"), one.hash_of("dataverse")) == ("b2", "d2")


def test_unlink_from_either_side_removes_the_link(links: Any) -> None:
    links.link("customer", "brightpearl", "101", "dataverse", "aaaa")
    links.link("customer", "brightpearl", "102", "dataverse", "bbbb")

    assert links.unlink("customer", "dataverse", "aaaa") is True
    assert links.unlink("customer", "dataverse", "aaaa") is False
    assert links.get("customer", "brightpearl", "101") is None
    assert [k.side("brightpearl").id for k in links.all_links("customer")] == ["102"]
