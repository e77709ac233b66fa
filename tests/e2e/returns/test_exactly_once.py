"""One Dynamics case per sales credit, exactly once (issue 14 item 2, "Acceptance: exactly-once
cases under duplicates and a restart"): the same credits announced again and again (the poller
twice, extra notices of other versions), taken by two instances of the app at once while
Dynamics is slow (its `slow` fault: both create, one gets 412), and a host stopped mid-batch
and started again on the same bus and store."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from shared import runtime
from shared.flows.pollers import notices_for
from shared.store import AuditResult
from tests.e2e.orders.test_exactly_once import second_host
from tests.e2e.returns.conftest import FLOW, POLLER, ReturnSandbox

ACTIVE, RESOLVED = 0, 1


def credits_of_one_order(box: ReturnSandbox, count: int) -> list[int]:
    order = box.raise_order([("MUG-1", 3), ("TEE-1", 2)])
    box.work()
    parent = box.bp_order_id(order)
    return [box.credit(parent, [("MUG-1", 1)], ref=f"RMA-{i}") for i in range(count)]


def announce_again(box: ReturnSandbox, credits: list[int], version: str) -> None:
    """Notices of the credits with another version stamp (as a webhook or a backfill would send):
    the broker's duplicate detection does not drop them."""
    envelopes = notices_for(
        "brightpearl",
        "sales-credit",
        [(str(c), version) for c in credits],
        source="/brightpearl/test",
        origin="webhook",
        observed_at=datetime.now(UTC),
        per_notice=3,
    )
    runtime.publisher_to("BRIGHTPEARL_CHANGES_TOPIC")(envelopes)


def assert_one_case_each(box: ReturnSandbox, credits: list[int]) -> None:
    cases = box.cases()
    per_credit = {c: len(box.cases(c)) for c in credits}
    assert {c: n for c, n in per_credit.items() if n != 1} == {}, "cases per credit"
    assert len(cases) == len(credits), "cases of no credit"
    for credit in credits:
        case = box.case(credit)
        link = box.store.links.get("sales-credit", "brightpearl", str(credit))
        assert link is not None and link.id_in("dataverse") == case["incidentid"].lower(), f"link of {credit}"
        assert any(e.result is AuditResult.SYNCED for e in box.credit_audit(credit)), f"audit of {credit}"
    assert [(d.dead_letter_reason, d.dead_letter_error_description) for d in box.returns_dead_letters()] == []


def test_duplicate_notices_taken_by_two_hosts_at_once_make_one_case_per_credit(returns_sandbox):
    """Two waves of notices of the same credits, 0.3 s apart, while Dynamics is slow to answer:
    one host is still creating the cases when the other takes the second wave, finds none and
    creates them too; the alternate key lets only one create through (412), the loser reads
    the case back and links it."""
    box = returns_sandbox
    credits = credits_of_one_order(box, 6)
    with second_host(box) as other:
        box.dv.call(
            "POST", "faults", {"kind": "slow", "count": 3, "delay_seconds": 1.5, "path_contains": "$batch"}
        )
        announce_again(box, credits, "wave-1")
        time.sleep(0.3)  # a host has taken the first wave and waits on its slow create
        announce_again(box, credits[::-1], "wave-2")
        for _ in range(3):
            box.work()
            other.wait_idle(timeout=90)
        box.host.run_timer(POLLER)  # the poller names them all again, now with cases
        announce_again(box, credits, "wave-3")
        box.work()
        other.wait_idle(timeout=90)
    assert_one_case_each(box, credits)


def test_a_host_restart_mid_batch_makes_one_case_per_credit_and_resolves_once(returns_sandbox):
    box = returns_sandbox
    credits = credits_of_one_order(box, 10)
    for credit in credits[:4]:
        box.refund(credit)  # refunded before their case exists: created, then resolved
    box.dv.call(
        "POST", "faults", {"kind": "slow", "count": 1, "delay_seconds": 1.0, "path_contains": "$batch"}
    )
    old = box.host
    old.run_timer(POLLER)
    time.sleep(0.4)  # the batch of 10 is in its first (slow) $batch: the host dies now
    old.stop(grace=0.0)
    deadline = time.monotonic() + 60
    while old._invoker.sync_running:
        assert time.monotonic() < deadline, "the stopped host's worker did not return"
        time.sleep(0.02)
    box.start_host()
    box.work()
    box.poll_credits()  # and the poller names them all again
    assert_one_case_each(box, credits)
    for credit in credits:
        case = box.case(credit)
        assert case["statecode"] == (RESOLVED if credit in credits[:4] else ACTIVE), credit
        assert len(box.resolutions(case["incidentid"])) == (1 if credit in credits[:4] else 0), credit
    assert FLOW == "returns-to-dataverse"
