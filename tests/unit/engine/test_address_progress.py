"""Crash safety of Brightpearl creates (issue 17 item 2): the postal addresses of new customers
are posted one multi-message at a time, and the ids of each request are saved with their
creation claims before the next request, so a host killed mid-batch leaves at most one
request's addresses unsaved (a retry reuses every saved one instead of posting it again)."""

from __future__ import annotations

import pytest

from shared.store.links import Claim
from tests.unit.engine.test_engine_decisions import Rig, notice


@pytest.fixture
def rig() -> Rig:
    return Rig()


class HostKilled(BaseException):
    """Stands in for SIGKILL: nothing after it runs (not an Exception, so no handler sees it)."""


def dynamics_customers(rig: Rig, count: int) -> list[str]:
    return [
        rig.dv.add(
            "contacts",
            {
                "firstname": f"Ada{n}",
                "lastname": f"Lovelace{n}",
                "emailaddress1": f"ada{n}@example.org",
                "address1_line1": f"{n} High Street",
                "address1_city": "Bristol",
                "address1_postalcode": "BS1 4DJ",
                "address1_country": "United Kingdom",
                "statecode": 0,
            },
        )
        for n in range(count)
    ]


def saved_address_ids(rig: Rig) -> dict[str, list[int]]:
    claims: dict[tuple[str, str, str], Claim] = rig.store.links.claims
    return {
        claim.source_id: [a["id"] for a in claim.progress.get("postal_addresses", [])]
        for claim in claims.values()
        if claim.progress.get("postal_addresses")
    }


def test_addresses_posted_before_a_crash_are_saved_with_their_claims(rig: Rig) -> None:
    ids = dynamics_customers(rig, 15)  # 15 addresses: two multi-messages (10 + 5)
    addresses_before = set(rig.bp.addresses)
    real_create_many = rig.bp.create_many
    requests: list[int] = []

    def create_many(uri: str, bodies):  # type: ignore[no-untyped-def]
        if "postal-address" in uri and requests:
            raise HostKilled  # the host dies while the second address request is under way
        requests.append(len(bodies))
        return real_create_many(uri, bodies)

    rig.bp.create_many = create_many  # type: ignore[method-assign]

    with pytest.raises(HostKilled):
        rig.to_bp.handle([notice("dataverse", "contact", *ids)])

    posted = set(rig.bp.addresses) - addresses_before
    assert requests == [10] and len(posted) == 10
    saved = saved_address_ids(rig)
    # every address that reached Brightpearl is kept with the claim of its customer
    assert sorted(i for kept in saved.values() for i in kept) == sorted(posted)
    assert set(saved) <= set(ids) and len(saved) == 10
