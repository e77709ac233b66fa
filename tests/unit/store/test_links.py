"""LinkStore against Azurite: both directions, creation claims, races, hashes, ETag conflicts."""

from __future__ import annotations

import threading

import pytest

from shared.store import (
    Claim,
    ClaimTaken,
    LinkNotFoundError,
    LinkState,
    StateStore,
    StoreConflictError,
)

BP, DV = "brightpearl", "dataverse"


def test_claim_then_complete_links_both_directions(state_store: StateStore) -> None:
    links = state_store.links
    claim = links.claim("contact", BP, 1001, DV)

    pending = links.get("contact", BP, "1001")
    assert pending is not None and pending.state is LinkState.PENDING
    assert pending.target.id is None and pending.claimed_at == claim.claimed_at

    link = links.complete_claim(
        claim, "0f8fad5b-d9cb-469f-a165-70867728950e", source_hash="bp-h1", target_hash="dv-h1"
    )
    assert link.is_linked

    from_bp = links.get("contact", BP, 1001)
    from_dv = links.get("contact", DV, "0f8fad5b-d9cb-469f-a165-70867728950e")
    assert from_bp == from_dv == link
    assert from_dv is not None
    assert from_dv.id_in(BP) == "1001"
    assert from_dv.other(DV).id == "1001"
    assert from_dv.hash_of(BP) == "bp-h1" and from_dv.hash_of(DV) == "dv-h1"
    assert from_dv.side(DV).synced_at is not None
    # an entity type is its own namespace
    assert links.get("account", BP, 1001) is None


def test_get_of_unknown_record_is_none(state_store: StateStore) -> None:
    assert state_store.links.get("contact", BP, 42) is None
    assert state_store.links.get_many("contact", BP, [42, 43]) == {}


def test_get_many_reads_both_sides_beyond_one_filter(state_store: StateStore) -> None:
    links = state_store.links
    for n in range(20):  # more than the 14 ids one query can carry
        links.link("contact", BP, n, DV, f"dv-{n}", source_hash=f"h{n}")
    from_bp = links.get_many("contact", BP, [*range(20), 999])
    assert sorted(from_bp, key=int) == [str(n) for n in range(20)]
    assert from_bp["7"].id_in(DV) == "dv-7" and from_bp["7"].hash_of(BP) == "h7"

    from_dv = links.get_many("contact", DV, [f"dv-{n}" for n in range(0, 20, 3)] + ["dv-none"])
    assert sorted(from_dv) == sorted(f"dv-{n}" for n in range(0, 20, 3))
    assert from_dv["dv-9"].id_in(BP) == "9"


def test_ids_with_reserved_characters_round_trip(state_store: StateStore) -> None:
    links = state_store.links
    odd_source = "a/b\\c#d?e%f'g|h~i"
    odd_target = "x~41|y/z"
    links.link("contact", BP, odd_source, DV, odd_target)
    assert links.get("contact", DV, odd_target).id_in(BP) == odd_source  # type: ignore[union-attr]
    assert links.get("contact", BP, "x~41|y/z") is None  # the escape sequence is not confused
    assert set(links.get_many("contact", BP, [odd_source])) == {odd_source}


def claim_race(
    workers: list[StateStore], source_system: str, source_id: str | int, target_system: str
) -> list[Claim | ClaimTaken]:
    """Every worker claims the same record at the same moment (a barrier releases them)."""
    barrier = threading.Barrier(len(workers))
    outcomes: list[Claim | ClaimTaken] = []

    def attempt(store: StateStore) -> None:
        barrier.wait()
        try:
            outcomes.append(store.links.claim("contact", source_system, source_id, target_system))
        except ClaimTaken as taken:
            outcomes.append(taken)

    threads = [threading.Thread(target=attempt, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == len(workers)
    return outcomes


def test_two_workers_claiming_at_once_exactly_one_wins(azurite: str, state_store: StateStore) -> None:
    workers = [
        StateStore.from_connection_string(azurite, table_prefix=state_store.table_prefix) for _ in range(2)
    ]
    for record in range(5):  # several rounds, so a lucky ordering cannot pass the test
        outcomes = claim_race(workers, DV, f"race-{record}", BP)
        winners = [o for o in outcomes if isinstance(o, Claim)]
        losers = [o for o in outcomes if isinstance(o, ClaimTaken)]
        assert len(winners) == 1 and len(losers) == 1
        assert losers[0].link is not None and losers[0].link.state is LinkState.PENDING
    for worker in workers:
        worker.close()


def test_claim_of_a_linked_record_returns_the_existing_link(state_store: StateStore) -> None:
    links = state_store.links
    links.complete_claim(links.claim("contact", BP, 5, DV), "dv-5")
    with pytest.raises(ClaimTaken) as taken:
        links.claim("contact", BP, 5, DV)
    assert taken.value.link is not None and taken.value.link.id_in(DV) == "dv-5"
    # the record known as a target is linked too: it must not be created again the other way
    with pytest.raises(ClaimTaken) as reverse:
        links.claim("contact", DV, "dv-5", BP)
    assert reverse.value.link is not None and reverse.value.link.id_in(BP) == "5"


def test_stale_claim_is_taken_over_and_the_old_holder_loses(state_store: StateStore, clock) -> None:
    links = state_store.with_clock(clock).links
    first = links.claim("contact", BP, 77, DV)
    clock.advance(seconds=links.claim_timeout.total_seconds() - 1)
    with pytest.raises(ClaimTaken):  # still live
        links.claim("contact", BP, 77, DV)

    clock.advance(seconds=1)
    second = links.claim("contact", BP, 77, DV)
    assert second.token != first.token

    with pytest.raises(StoreConflictError):
        links.complete_claim(first, "dv-from-dead-worker")
    assert links.get("contact", DV, "dv-from-dead-worker") is None  # its mirror was undone

    link = links.complete_claim(second, "dv-77")
    assert links.get("contact", DV, "dv-77") == link
    assert link.created_at == first.claimed_at


def test_only_one_worker_takes_over_a_stale_claim(azurite: str, state_store: StateStore, clock) -> None:
    state_store.with_clock(clock).links.claim("contact", BP, 88, DV)
    clock.advance(hours=1)
    workers = [
        StateStore.from_connection_string(azurite, table_prefix=state_store.table_prefix, clock=clock)
        for _ in range(2)
    ]
    outcomes = claim_race(workers, BP, 88, DV)
    assert sum(isinstance(o, Claim) for o in outcomes) == 1
    assert sum(isinstance(o, ClaimTaken) for o in outcomes) == 1
    for worker in workers:
        worker.close()


def test_released_claim_can_be_claimed_again(state_store: StateStore) -> None:
    links = state_store.links
    claim = links.claim("contact", BP, 9, DV)
    links.release_claim(claim)
    assert links.get("contact", BP, 9) is None
    again = links.claim("contact", BP, 9, DV)
    with pytest.raises(StoreConflictError):  # the first claim's ETag is gone
        links.release_claim(claim)
    assert links.get("contact", BP, 9) is not None
    links.release_claim(again)


def test_completing_with_a_target_linked_elsewhere_is_a_conflict(state_store: StateStore) -> None:
    links = state_store.links
    links.link("contact", BP, 1, DV, "dv-shared")
    claim = links.claim("contact", BP, 2, DV)
    with pytest.raises(StoreConflictError, match="already linked"):
        links.complete_claim(claim, "dv-shared")
    assert links.get("contact", DV, "dv-shared").id_in(BP) == "1"  # type: ignore[union-attr]
    assert links.get("contact", BP, 2).state is LinkState.PENDING  # type: ignore[union-attr]


def test_link_is_idempotent_and_refuses_a_different_partner(state_store: StateStore) -> None:
    links = state_store.links
    first = links.link("contact", DV, "dv-1", BP, 100, source_hash="a", target_hash="b")
    assert links.link("contact", DV, "dv-1", BP, "100") == first
    with pytest.raises(ClaimTaken):
        links.link("contact", DV, "dv-1", BP, 200)
    with pytest.raises(StoreConflictError):  # BP 100 is already the partner of dv-1
        links.link("contact", DV, "dv-2", BP, 100)
    assert links.get("contact", DV, "dv-2") is None  # the refused attempt left no claim behind


def test_record_hashes_is_etag_conditional(state_store: StateStore) -> None:
    links = state_store.links
    link = links.link("contact", BP, 300, DV, "dv-300", source_hash="s0", target_hash="t0")

    updated = links.record_hashes("contact", DV, "dv-300", {DV: "t1"}, etag=link.etag)
    assert updated.hash_of(DV) == "t1" and updated.hash_of(BP) == "s0"
    assert links.get("contact", BP, 300) == updated

    with pytest.raises(StoreConflictError) as lost:  # a second writer with the old ETag
        links.record_hashes("contact", BP, 300, {BP: "s1"}, etag=link.etag)
    assert lost.value.table == links.table_name and lost.value.row_key == "300"
    assert links.table_name in str(lost.value) and "300" in str(lost.value)
    assert links.get("contact", BP, 300).hash_of(BP) == "s0"  # type: ignore[union-attr]

    both = links.record_hashes("contact", BP, 300, {BP: "s2", DV: "t2"})
    assert (both.hash_of(BP), both.hash_of(DV)) == ("s2", "t2")


def test_record_hashes_needs_a_link_and_a_known_system(state_store: StateStore) -> None:
    links = state_store.links
    with pytest.raises(LinkNotFoundError):
        links.record_hashes("contact", BP, 1, {BP: "x"})
    links.link("contact", BP, 1, DV, "dv-1")
    with pytest.raises(ValueError, match="shopify"):
        links.record_hashes("contact", BP, 1, {"shopify": "x"})


def test_unlink_removes_both_directions(state_store: StateStore) -> None:
    links = state_store.links
    links.link("contact", BP, 11, DV, "dv-11")
    assert links.unlink("contact", DV, "dv-11") is True
    assert links.get("contact", BP, 11) is None and links.get("contact", DV, "dv-11") is None
    assert links.unlink("contact", DV, "dv-11") is False
    links.link("contact", BP, 12, DV, "dv-11")  # the target id is free again


def test_a_dangling_mirror_is_not_a_link(state_store: StateStore) -> None:
    """A worker that died between the mirror write and the origin write leaves no false link."""
    links = state_store.links
    claim = links.claim("contact", BP, 500, DV)
    links.table.create_entity(
        {
            "PartitionKey": "contact|dataverse",
            "RowKey": "dv-500",
            "role": "mirror",
            "entity": "contact",
            "source_system": BP,
            "source_id": "500",
        }
    )
    assert links.get("contact", DV, "dv-500") is None
    assert links.get_many("contact", DV, ["dv-500"]) == {}
    # the retried completion accepts the mirror it wrote before
    assert links.complete_claim(claim, "dv-500") == links.get("contact", DV, "dv-500")


def test_an_orphaned_mirror_does_not_block_the_record_forever(state_store: StateStore) -> None:
    """A mirror whose origin is gone (or linked elsewhere) is cleared by the next claim."""
    links = state_store.links
    links.table.create_entity(
        {
            "PartitionKey": "contact|dataverse",
            "RowKey": "dv-600",
            "role": "mirror",
            "entity": "contact",
            "source_system": BP,
            "source_id": "600",
        }
    )
    claim = links.claim("contact", DV, "dv-600", BP)
    assert links.complete_claim(claim, 601).id_in(BP) == "601"
    assert links.get("contact", BP, 601).id_in(DV) == "dv-600"  # type: ignore[union-attr]


def test_a_mirror_of_a_pending_claim_blocks_with_that_claim(state_store: StateStore) -> None:
    links = state_store.links
    links.claim("contact", BP, 700, DV)
    links.table.create_entity(
        {
            "PartitionKey": "contact|dataverse",
            "RowKey": "dv-700",
            "role": "mirror",
            "entity": "contact",
            "source_system": BP,
            "source_id": "700",
        }
    )
    with pytest.raises(ClaimTaken) as taken:
        links.claim("contact", DV, "dv-700", BP)
    assert taken.value.link is not None and taken.value.link.state is LinkState.PENDING
    assert taken.value.link.id_in(BP) == "700"


def test_bad_arguments_name_the_problem(state_store: StateStore) -> None:
    links = state_store.links
    with pytest.raises(ValueError, match="source_system and target_system"):
        links.claim("contact", BP, 1, BP)
    with pytest.raises(ValueError, match="source_id"):
        links.claim("contact", BP, "  ", DV)
    with pytest.raises(ValueError, match="entity"):
        links.get("", BP, 1)


def test_a_dead_owners_claim_is_taken_over_after_its_lease_a_live_one_is_not(
    azurite: str, state_store: StateStore, clock
) -> None:
    """Claims are leases (90 s by default), renewed while the owner works: a crashed worker's
    claim is free within a minute and a half, not after ten minutes."""
    alive = StateStore.from_connection_string(azurite, table_prefix=state_store.table_prefix, clock=clock)
    other = state_store.with_clock(clock).links
    alive.links.owner = "instance-a/1"
    first = alive.links.claim("contact", DV, "dv-31", BP)
    assert first.owner == "instance-a/1" and first.lease_until == clock.now + alive.links.claim_timeout
    clock.advance(seconds=60)
    first = alive.links.renew_claim(first)  # the owner is still working
    clock.advance(seconds=60)
    with pytest.raises(ClaimTaken) as taken:
        other.claim("contact", DV, "dv-31", BP)
    assert "instance-a/1" in str(taken.value) and taken.value.retry_after == pytest.approx(31)

    clock.advance(seconds=31)  # the owner died: no renewal for a whole lease
    second = other.claim("contact", DV, "dv-31", BP)
    assert second.takeover is True  # look for what the dead owner may have created first
    with pytest.raises(StoreConflictError):
        alive.links.renew_claim(first)
    with pytest.raises(StoreConflictError):
        alive.links.complete_claim(first, 31)
    assert other.complete_claim(second, 32).id_in(BP) == "32"
    alive.close()


def test_progress_kept_with_a_released_claim_is_resumed_at_once(state_store: StateStore, clock) -> None:
    links = state_store.with_clock(clock).links
    claim = links.claim("contact", DV, "dv-41", BP)
    claim = links.save_progress(claim, {"postal_addresses": [{"id": 7, "hash": "h"}]})
    links.release_claim(claim)  # a definite failure after the addresses were made
    again = links.claim("contact", DV, "dv-41", BP)  # no lease to wait for
    assert again.progress == {"postal_addresses": [{"id": 7, "hash": "h"}]} and again.takeover is False
    with pytest.raises(StoreConflictError):  # the released claim is no longer the old holder's
        links.complete_claim(claim, 41)
    links.release_claim(links.save_progress(again, {}))
    assert links.get("contact", DV, "dv-41") is None  # nothing kept: released claims are deleted


def test_kept_claims_are_renewed_in_the_background(azurite: str, state_store: StateStore, clock) -> None:
    import time

    links = state_store.with_clock(clock).links
    claim = links.claim("contact", DV, "dv-51", BP)
    other = StateStore.from_connection_string(azurite, table_prefix=state_store.table_prefix, clock=clock)
    with links.keep([claim], every=0.05) as keeper:
        for _ in range(3):  # three leases long, renewed all the while
            clock.advance(seconds=80)
            deadline = time.monotonic() + 10
            while not (
                links.get("contact", DV, "dv-51").lease_until == clock.now + links.claim_timeout
                and keeper.held(claim)
            ):
                assert time.monotonic() < deadline, "the claim was not renewed"
                time.sleep(0.02)
            with pytest.raises(ClaimTaken):
                other.links.claim("contact", DV, "dv-51", BP)
        assert keeper.held(claim)
    clock.advance(seconds=91)
    assert other.links.claim("contact", DV, "dv-51", BP).takeover is True
    with pytest.raises(StoreConflictError):
        links.complete_claim(claim, 51)  # renewed with other ETags, but the token is gone now
    other.close()


def test_a_claim_whose_renewals_fail_is_not_held_before_its_lease_could_be_taken(
    state_store: StateStore, clock
) -> None:
    links = state_store.with_clock(clock).links
    claim = links.claim("contact", DV, "dv-61", BP)
    with links.keep([claim], every=3600) as keeper:  # no renewal happens in this test
        clock.advance(seconds=50)
        assert keeper.held(claim)  # 40 s of 90 left
        clock.advance(seconds=15)
        assert not keeper.held(claim)  # 25 s left: do not start creating the record now
