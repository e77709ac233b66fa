"""Bad input around returns (issue 14 item 2, "Bad input and faults"): a credit whose parent
order is unknown waits, then its case opens without the order and is flagged in the audit; a
bad mappings/returns.yaml is refused naming the field and the problem."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.mapping.config import MappingError
from shared.mapping.returns_config import parse_returns_mapping, read_returns_mapping
from shared.store import AuditResult
from syncctl.main import app
from tests.e2e.returns.conftest import POLLER, ReturnSandbox, returns_mapping

ATTEMPTS = 3


@pytest.fixture
def returns_settings(tmp_path: Path) -> dict[str, str]:
    path = returns_mapping(tmp_path, ("  attempts: 4", f"  attempts: {ATTEMPTS}"))
    return {"RETURNS_MAPPING_PATH": str(path)}


def vanished_parent(box: ReturnSandbox) -> int:
    """A Brightpearl web order (never in Dynamics) that is gone once its credit exists."""
    body = {
        "customer": {"id": box.shop.bp_customer},
        "ref": "WEB-GONE",
        "currency": {"code": "GBP"},
        "rows": [
            {"productId": box.shop.bp_products["CAP-1"], "quantity": 1, "taxCode": "T20", "net": "8.00"}
        ],
    }
    return int(box.bp.request("POST", "/order-service/sales-order/", json=body).response)


def test_a_credit_of_an_unknown_order_waits_then_opens_its_case_without_the_order_flagged(returns_sandbox):
    box = returns_sandbox
    parent = vanished_parent(box)
    credit = box.credit(parent, [("CAP-1", 1)], reason="Wrong size")
    with box.bp_sim.state.lock:
        del box.bp_sim.state.orders[parent]  # deleted in Brightpearl: neither linked nor found

    box.host.run_timer(POLLER)
    box.host.wait_idle(timeout=90)
    assert box.cases(credit) == []  # waiting: a retry is scheduled, no case yet
    assert box.scheduled() >= 1

    box.work()  # the retries come due on the fake clock: attempt 3 opens the case

    case = box.case(credit)
    assert case["title"] == f"Return for order {parent}"
    assert f"Dynamics order: unknown (Brightpearl order {parent} was not found)" in case["description"]
    assert "- SKU CAP-1, Product CAP-1: quantity 1, reason Wrong size, value 8.00 GBP" in case["description"]
    [entry] = box.credit_audit(credit)  # the waits retried (not audited); the outcome is flagged
    assert (entry.result, entry.reason_code) == (AuditResult.NEEDS_REVIEW, "ParentOrderUnknown")
    assert entry.attempt == ATTEMPTS and entry.target_id == case["incidentid"]
    assert "opened without its order" in (entry.description or "")
    assert box.returns_dead_letters() == []

    box.refund(credit)  # later changes do not wait again: the case exists
    box.poll_credits()
    assert box.case(credit)["statecode"] == 1


def test_a_credit_of_an_order_not_in_dynamics_opens_its_case_at_once(returns_sandbox):
    box = returns_sandbox
    parent = vanished_parent(box)  # in Brightpearl (a web order), not linked to a Dynamics order
    credit = box.credit(parent, [("CAP-1", 1)])
    box.poll_credits()
    case = box.case(credit)
    assert case["title"] == "Return for order WEB-GONE"
    assert f"Dynamics order: none (Brightpearl order {parent} is not in Dynamics)" in case["description"]
    [entry] = box.credit_audit(credit)
    assert (entry.result, entry.reason_code, entry.attempt) == (AuditResult.SYNCED, None, 1)


def test_a_bad_returns_mapping_is_refused_naming_each_field(tmp_path: Path):
    bad = returns_mapping(
        tmp_path,
        ("  origin: Web ", "  origin: Fax "),
        ("  priority: Normal", "  priority: Urgent"),
        ("  statuses: []", "  statuses: [Credit cancelled]"),
        ("  attempts: 4", "  attempts: 0"),
    )
    with pytest.raises(MappingError) as caught:
        read_returns_mapping(bad)
    problems = "\n".join(caught.value.problems)
    assert "case.origin: Value error, 'Fax' is not a Dynamics case origin; use one of Phone (1)" in problems
    assert "case.priority: Value error, 'Urgent' is not a Dynamics case priority" in problems
    assert "unknown_parent.attempts: Input should be greater than or equal to 1" in problems

    out = CliRunner().invoke(app, ["mapping", "check", str(bad), "--entity", "returns"])
    assert out.exit_code == 1
    assert "case.origin" in out.output and "'Fax' is not a Dynamics case origin" in out.output

    overlap = re.escape("cancel.statuses: 'Credit cancelled' is also in resolve.statuses")
    with pytest.raises(MappingError, match=overlap):  # refunded and cancelled must not overlap
        parse_returns_mapping({"resolve": {"statuses": ["Credit cancelled"]}}, "returns.yaml")

    ok = CliRunner().invoke(
        app, ["mapping", "check", str(Path("mappings/returns.yaml")), "--entity", "returns"]
    )
    assert ok.exit_code == 0, ok.output


def test_the_wait_for_an_unknown_order_must_end_before_the_retries(returns_sandbox, tmp_path: Path):
    from shared import runtime
    from shared.flows.returns_to_dataverse import ReturnsToDataverse

    path = returns_mapping(tmp_path, ("  attempts: 4", "  attempts: 30"))
    settings = runtime.settings()
    orders = settings.orders.model_copy(update={"returns_mapping_path": str(path)})
    with (
        runtime.override(settings=type(settings)(**{**vars(settings), "orders": orders})),
        pytest.raises(
            ValueError, match=r"unknown_parent.attempts \(30\) must be below RETRY_MAX_ATTEMPTS \(20\)"
        ),
    ):
        ReturnsToDataverse.from_runtime()
