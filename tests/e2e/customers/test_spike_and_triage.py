"""Through the running sandbox (issue 16 items 3 and 4): good customers raise no anomaly flag; a
burst of bad ones is one DeadLetterSpike flag for the flow (ANOMALY_SPIKE_MINIMUM lowered to 5
here), and `syncctl dlq triage` groups those dead letters with the runbook's fix, refuses a bulk
resubmit before the records are fixed and resubmits the whole group in one command after."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared.anomaly.flags import AUDIT_FLOW
from shared.bus.deadletters import LocalDeadLetters
from shared.ops import busview, runbook
from syncctl.main import app
from tests.e2e.customers.conftest import DV_TOPIC, TO_BP, Sandbox
from tests.e2e.customers.test_sync_both_ways import dv_create_contact

BAD = 8  # above the minimum (5) and more than 6 robust deviations (floor 1) above a quiet day
GROUP = f"{TO_BP}/InvalidEmail/emailaddress1"  # the field as the flow names it: the Dynamics column


@pytest.fixture
def sandbox_settings() -> dict[str, str]:
    return {"ANOMALY_SPIKE_MINIMUM": "5"}


@pytest.fixture
def cli(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sandbox.values}))

    @contextmanager
    def sandbox_bus(settings: Any, topology: Any) -> Iterator[Any]:
        yield sandbox.bus

    monkeypatch.setattr(busview, "open_local_bus", sandbox_bus)
    monkeypatch.setattr(
        "shared.bus.factory.build_dead_letters", lambda settings, topology=None: LocalDeadLetters(sandbox.bus)
    )

    def run(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(app, [*args, "--settings", str(settings)], env={"COLUMNS": "250"})
        assert result.exit_code == code, f"syncctl {' '.join(args)}: exit {result.exit_code}\n{result.output}"
        return result.output

    return run


def flags(sb: Sandbox) -> list[tuple[str | None, str]]:
    return [(e.reason_code, e.source_id) for e in sb.store.audit.recent(AUDIT_FLOW, 100)]


def test_a_burst_of_bad_customers_is_a_spike_and_triage_resubmits_the_group(
    sandbox: Sandbox, cli: Callable[..., str]
) -> None:
    sb = sandbox
    for n in range(3):
        dv_create_contact(sb, firstname="Good", lastname=f"Customer{n}", emailaddress1=f"good{n}@example.org")
    sb.settle()  # the Dataverse poller brings them (no Dynamics webhooks in this sandbox)
    assert flags(sb) == []  # a clean run: zero flags

    bad = [
        dv_create_contact(sb, firstname="Bad", lastname=f"Email{n}", emailaddress1=f"bad{n}@@example.org")
        for n in range(BAD)
    ]
    sb.settle()
    assert sb.bus.counts(DV_TOPIC, TO_BP).dead_letter == BAD

    assert flags(sb) == [("AnomalyDeadLetterSpike", TO_BP)]  # once, however many batches

    groups = {g["group"]: g for g in json.loads(cli("dlq", "triage", "--json"))["groups"]}
    assert groups[GROUP]["count"] == BAD
    assert groups[GROUP]["fix"] == runbook.fix_for("InvalidEmail").fix  # type: ignore[union-attr]
    assert groups[GROUP]["safeToResubmit"] is False
    refused = cli("dlq", "triage", "--resubmit", GROUP, code=2)
    assert "not safe to resubmit in bulk" in refused

    for n, contact in enumerate(bad):  # fixed at the source
        sb.dv.crm("PATCH", f"contacts({contact})", {"emailaddress1": f"fixed{n}@example.org"})
    out = cli("dlq", "triage", "--resubmit", GROUP, "--force", "--wait", "60")

    assert f"{BAD} dead letter(s) resubmitted" in out
    sb.host.wait_idle(timeout=60)
    assert sb.bus.counts(DV_TOPIC, TO_BP).dead_letter == 0
    assert GROUP not in cli("dlq", "triage")
    emails = {
        c["communication"]["emails"]["PRI"]["email"]
        for c in sb.bp_contacts().values()
        if c.get("communication")
    }
    assert {f"fixed{n}@example.org" for n in range(BAD)} <= emails
