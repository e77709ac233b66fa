"""Crash safety of Brightpearl creates (issue 17 item 2): the postal addresses of new customers
are posted one multi-message at a time, and the ids of each request are saved with their
creation claims before the next request, so a host killed mid-batch leaves at most one
request's addresses unsaved (a retry reuses every saved one instead of posting it again).

Lost answers: Brightpearl applied an address POST but its answer never arrived. A pending
marker kept before the POST lets the retry find those addresses (ranged GET above a lower
bound of the new ids, no contactId, same content) and adopt them, so none is orphaned."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.brightpearl.errors import BrightpearlAmbiguousWrite, BrightpearlThrottled, BrightpearlUnavailable
from shared.flows.customers_to_brightpearl import (
    ADDRESS_HIGH_WATER_CURSOR,
    PENDING_ADDRESSES_CURSOR,
    CustomersToBrightpearl,
)
from shared.outcomes import Completed, RetryLater
from shared.store.links import Claim
from shared.sync.fakes import FakeBrightpearl
from tests.unit.engine.test_engine_decisions import MAPPING, Rig, notice


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


# ------------------------------------------------------------------ lost answers (no orphans)
LOST = BrightpearlAmbiguousWrite(
    "Brightpearl timed out (ReadTimeout) on POST /multi-message; the write may have been applied"
)


def lose_answers(
    rig: Rig, *, skip: int = 0, times: int = 1, before: Callable[[dict[str, Any]], None] | None = None
) -> list[list[int]]:
    """After `skip` address POSTs that are answered, the next `times` are applied but their
    answers are lost (the client reports a timeout or a dropped connection after sending).
    Returns the ids each lost one made. `before(body)` runs ahead of a lost one (another writer
    at work meanwhile). Both ways of posting are covered: multi-message (`create_many`, new
    contacts) and a single POST (`create_postal_address`, a new address of an existing contact)."""
    applied: list[list[int]] = []
    seen = [0]
    real_create_many, real_create_one = rig.bp.create_many, rig.bp.create_postal_address

    def losing() -> bool:
        seen[0] += 1
        return skip < seen[0] <= skip + times

    def create_many(uri: str, bodies):  # type: ignore[no-untyped-def]
        if "postal-address" not in uri:
            return real_create_many(uri, bodies)
        lose = losing()
        if lose and before is not None:
            before(bodies[0])
        answers = [real_create_one(body) for body in bodies]
        if lose:
            applied.append(answers)
            return [LOST for _ in bodies]
        return answers

    def create_postal_address(body):  # type: ignore[no-untyped-def]
        lose = losing()
        if lose and before is not None:
            before(body)
        new = real_create_one(body)
        if lose:
            applied.append([new])
            raise LOST
        return new

    rig.bp.create_many = create_many  # type: ignore[method-assign]
    rig.bp.create_postal_address = create_postal_address  # type: ignore[method-assign]
    return applied


def leases_run_out(rig: Rig) -> None:
    """Claims still held (a worker kept them pending after an ambiguous write) are given up, as a
    lease that runs out is taken over; the memory fake's claims never expire by themselves."""
    for claim in list(rig.store.links.claims.values()):
        rig.store.links.release_claim(claim)


def orphaned_addresses(rig: Rig) -> set[int]:
    used = {int(a) for c in rig.bp.contacts.values() for a in (c.get("postAddressIds") or {}).values()}
    return set(rig.bp.addresses) - used


def bp_contact_of(rig: Rig, dv_id: str) -> dict[str, Any]:
    return rig.bp.contacts[int(rig.dv.tables["contacts"][dv_id]["bpi_brightpearlid"])]


def test_addresses_whose_answer_was_lost_are_adopted_by_the_retry_not_posted_again(rig: Rig) -> None:
    ids = dynamics_customers(rig, 3)  # one multi-message of 3 addresses
    lost = lose_answers(rig)

    first = rig.to_bp.handle([notice("dataverse", "contact", *ids)])

    assert [type(o) for o in first] == [RetryLater]
    assert len(lost) == 1 and len(rig.bp.addresses) == 3 and not rig.bp.contacts
    leases_run_out(rig)

    assert rig.to_bp.handle([notice("dataverse", "contact", *ids)]) == [Completed()]

    assert len(rig.bp.addresses) == 3  # nothing posted twice
    assert orphaned_addresses(rig) == set()
    for dv_id, n in zip(ids, range(3), strict=True):
        address_id = bp_contact_of(rig, dv_id)["postAddressIds"]["DEF"]
        assert address_id in lost[0] and rig.bp.addresses[address_id]["addressLine1"] == f"{n} High Street"


def test_a_lost_answer_is_still_found_when_the_first_look_for_it_is_throttled(rig: Rig) -> None:
    """The retry cannot read the address range (Brightpearl throttles it): the pending marker
    must survive that attempt, so a later one still adopts what the lost POST made."""
    ids = dynamics_customers(rig, 3)
    lost = lose_answers(rig)
    rig.to_bp.handle([notice("dataverse", "contact", *ids)])
    assert len(lost) == 1 and len(rig.bp.addresses) == 3
    leases_run_out(rig)
    read = rig.to_bp._read_addresses
    rig.to_bp._read_addresses = lambda first, last: (_ for _ in ()).throw(  # type: ignore[method-assign]
        BrightpearlThrottled("Brightpearl throttled GET /contact-service/postal-address/")
    )

    assert [type(o) for o in rig.to_bp.handle([notice("dataverse", "contact", *ids)])] == [RetryLater]

    assert len(rig.bp.addresses) == 3 and not rig.bp.contacts  # nothing posted while it could not look
    rig.to_bp._read_addresses = read  # type: ignore[method-assign]
    leases_run_out(rig)
    assert rig.to_bp.handle([notice("dataverse", "contact", *ids)]) == [Completed()]
    assert len(rig.bp.addresses) == 3 and orphaned_addresses(rig) == set()
    assert len(rig.bp.contacts) == 3


def test_a_fresh_process_after_a_lost_answer_takes_its_bound_from_the_state_store(rig: Rig) -> None:
    """The process that lost the answer is gone: the next one has seen no address id itself."""
    ids = dynamics_customers(rig, 12)  # two multi-messages; the first one's answer arrives
    lose_answers(rig, skip=1)
    rig.to_bp.handle([notice("dataverse", "contact", *ids)])
    stored = rig.store.cursors.get(ADDRESS_HIGH_WATER_CURSOR)
    assert stored is not None and int(stored.value) >= 1010
    rig.bp.highest_created_id = lambda uri: None  # type: ignore[method-assign]
    leases_run_out(rig)

    assert rig.to_bp.handle([notice("dataverse", "contact", *ids)]) == [Completed()]

    assert len(rig.bp.addresses) == 12 and orphaned_addresses(rig) == set()
    assert len(rig.bp.contacts) == 12


def test_an_address_linked_to_another_contact_is_never_adopted(rig: Rig) -> None:
    """While the lost request is under way another writer creates a contact at the very same
    address: that address is older, identical and in the scanned range, but it has a contact."""
    [dv_id] = dynamics_customers(rig, 1)
    theirs: list[int] = []

    def neighbour_moves_in(body: dict[str, Any]) -> None:
        theirs.append(FakeBrightpearl.create_postal_address(rig.bp, dict(body)))
        rig.bp.add_contact(
            {"firstName": "Charles", "lastName": "Babbage", "postAddressIds": {"DEF": theirs[0]}}
        )

    lost = lose_answers(rig, before=neighbour_moves_in)
    rig.to_bp.handle([notice("dataverse", "contact", dv_id)])
    leases_run_out(rig)

    assert rig.to_bp.handle([notice("dataverse", "contact", dv_id)]) == [Completed()]

    ours = bp_contact_of(rig, dv_id)["postAddressIds"]["DEF"]
    assert [ours] == lost[0] and theirs[0] < ours
    assert rig.bp.addresses[ours] == rig.bp.addresses[theirs[0]]  # identical content
    assert orphaned_addresses(rig) == set() and len(rig.bp.addresses) == 2


def test_a_new_address_of_an_existing_contact_whose_answer_was_lost_is_adopted() -> None:
    """The update path: a new delivery address is posted, its answer lost before the link PUT;
    the retry adopts it, but its link PUT fails; the next one adopts it again and links it."""
    rig = Rig()
    groups = {**MAPPING.ownership.groups, "addresses": "dataverse"}
    mapping = MAPPING.model_copy(
        update={"ownership": MAPPING.ownership.model_copy(update={"groups": groups})}
    )
    to_bp = CustomersToBrightpearl(
        brightpearl=rig.bp, dataverse=rig.dv, store=rig.store, mapping=mapping, publish=rig.published.extend
    )
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    rig.to_dv.handle([notice("brightpearl", "contact", bp_id)])
    row = rig.dv_contact_of(bp_id)
    row.update(
        address2_line1="Warehouse 9",
        address2_city="Bath",
        address2_postalcode="BA1 1AA",
        address2_country="United Kingdom",
    )
    lost = lose_answers(rig)

    first = to_bp.handle([notice("dataverse", "contact", row["contactid"])])

    assert [type(o) for o in first] == [RetryLater] and len(lost) == 1
    assert orphaned_addresses(rig) == {lost[0][0]}  # posted, not linked yet
    rig.bp.fail_next["link_contact_addresses"] = [BrightpearlUnavailable("Brightpearl answered 503")]
    again = to_bp.handle([notice("dataverse", "contact", row["contactid"])])  # adopted, link PUT fails
    assert [type(o) for o in again] == [RetryLater] and len(rig.bp.addresses) == 2

    assert to_bp.handle([notice("dataverse", "contact", row["contactid"])]) == [Completed()]

    contact = rig.bp.contacts[int(bp_id)]
    assert contact["postAddressIds"]["DEL"] == lost[0][0]
    assert rig.bp.addresses[lost[0][0]]["addressLine1"] == "Warehouse 9"
    assert orphaned_addresses(rig) == set() and len(rig.bp.addresses) == 2
    assert rig.store.cursors.get(f"{PENDING_ADDRESSES_CURSOR}{bp_id}") is None  # marker dropped


def test_a_saved_address_another_contact_took_meanwhile_is_replaced_not_reused(rig: Rig) -> None:
    """The first attempt saved its address, then the contact POST failed; meanwhile another
    writer attached that address to its own contact (it adopted an identical one). Reusing it
    would be refused, so the retry posts a new address."""
    [dv_id] = dynamics_customers(rig, 1)
    real_create_many = rig.bp.create_many
    failures = [BrightpearlUnavailable("Brightpearl answered 503 to POST /contact-service/contact/")]

    def contact_post_fails_once(uri: str, bodies):  # type: ignore[no-untyped-def]
        if "contact-service/contact" in uri and failures:
            return [failures.pop() for _ in bodies]
        return real_create_many(uri, bodies)

    rig.bp.create_many = contact_post_fails_once  # type: ignore[method-assign]
    rig.to_bp.handle([notice("dataverse", "contact", dv_id)])
    [saved] = rig.bp.addresses
    rig.bp.add_contact({"lastName": "Babbage", "postAddressIds": {"DEF": saved}})

    assert rig.to_bp.handle([notice("dataverse", "contact", dv_id)]) == [Completed()]

    ours = bp_contact_of(rig, dv_id)["postAddressIds"]["DEF"]
    assert ours != saved and rig.bp.addresses[ours] == rig.bp.addresses[saved]
