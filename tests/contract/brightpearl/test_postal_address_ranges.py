"""Contract: what finding a lost postal-address POST relies on (issue 17 item 2) holds in the
simulator as the reference describes it (§1.3, §5.5): ids ascend, postal-address GET takes an
ascending range and answers each address with its contactId (0 while it belongs to no contact),
an empty range answers nothing, and an address of one contact cannot go to another."""

from __future__ import annotations

import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.client import (
    POSTAL_ADDRESS_GET,
    POSTAL_ADDRESS_POST,
    BrightpearlClient,
    postal_address_fingerprint,
)
from shared.brightpearl.errors import BrightpearlValidationError

BODY = {
    "addressLine1": "1 Lost Lane",
    "addressLine3": "Bristol",
    "postalCode": "BS1 4DJ",
    "countryIsoCode": "GBR",
}


def test_a_ranged_get_finds_new_addresses_with_their_owner(client: BrightpearlClient, sim: Simulator) -> None:
    with sim.state.lock:
        floor = max(sim.state.addresses) + 1
    posted = client.create_many(POSTAL_ADDRESS_POST, [BODY, {**BODY, "addressLine1": "2 Lost Lane"}])
    assert posted == [floor, floor + 1]  # ascending, right above every earlier id
    assert client.highest_created_id(POSTAL_ADDRESS_POST) == floor + 1
    owner = client.create_contact({"lastName": "Owner", "postAddressIds": {"DEF": floor + 1}})

    items = client.get_by_ids(POSTAL_ADDRESS_GET, range(floor - 5, floor + 195), limit=200)

    by_id = {int(i["addressId"]): i for i in items}
    assert set(by_id) >= {floor, floor + 1} and max(by_id) == floor + 1
    assert by_id[floor]["contactId"] == 0 and by_id[floor + 1]["contactId"] == owner
    assert by_id[floor]["countryIsoCode"] == "GBR" and "countryIsoCode2" in by_id[floor]  # extras
    assert postal_address_fingerprint(by_id[floor]) == postal_address_fingerprint(BODY)
    assert client.get_by_ids(POSTAL_ADDRESS_GET, range(floor + 1000, floor + 1200)) == []  # 404: none


def test_an_address_of_one_contact_cannot_go_to_another(client: BrightpearlClient) -> None:
    address = client.create_postal_address(BODY)
    first = client.create_contact({"lastName": "First", "postAddressIds": {"DEF": address}})

    with pytest.raises(BrightpearlValidationError, match="belongs to another contact"):
        client.create_contact({"lastName": "Second", "postAddressIds": {"DEF": address}})
    with pytest.raises(BrightpearlValidationError, match="belongs to another contact"):
        second = client.create_contact({"lastName": "Second"})
        client.link_contact_addresses(second, [{"postalAddressId": address, "type": "DEL"}])
    assert first
