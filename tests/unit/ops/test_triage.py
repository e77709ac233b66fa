"""`syncctl dlq triage` (issue 16 item 4) against a LocalBus in a temp dir: dead letters grouped by
flow, reason, field and likely cause, with count, oldest, the runbook's fix and whether a bulk
resubmit is safe (transient reasons; a mapping changed since); one group resubmitted by name."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shared.bus.local import LocalBus
from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, Topology
from shared.ops import runbook
from shared.ops.triage import field_of, last_error_of
from syncctl.main import app
from tests.unit.bus.test_dlq_cli import notice

TOPIC, FLOW = "brightpearl-changes", "customers-to-dataverse"
ROOT = Path(__file__).resolve().parents[3]

DEAD = {  # contact id -> (reason, description) as the flows and settlement write them
    "101": (
        "InvalidEmail",
        "InvalidEmail: brightpearl record 101, field emails.primary: not an e-mail address",
    ),
    "102": (
        "InvalidEmail",
        "InvalidEmail: brightpearl record 102, field emails.primary: not an e-mail address",
    ),
    "103": (
        "InvalidEmail",
        "InvalidEmail: brightpearl record 103, field emails.primary: not an e-mail address",
    ),
    "104": ("InvalidPhone", "InvalidPhone: brightpearl record 104, field phones.main: not a valid number"),
    "105": (
        "RetriesExhausted",
        "customers-to-dataverse: gave up after 5 attempts; last error [DataverseUnavailable] 503 Service "
        "Unavailable",
    ),
    "106": (
        "RetriesExhausted",
        "customers-to-dataverse: gave up after 5 attempts; last error [DataverseUnavailable] timed out",
    ),
    "107": (
        "UnmappableValue",
        "UnmappableValue: brightpearl record 107, field customer_group: no entry for 9",
    ),
    "108": (
        "UnmappableValue",
        "UnmappableValue: brightpearl record 108, field customer_group: no entry for 9",
    ),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BUS_BACKEND", "LOCAL_BUS_PATH", "CUSTOMER_MAPPING_PATH", "BRIGHTPEARL_CHANGES_TOPIC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "400")


@pytest.fixture
def box(tmp_path: Path) -> dict[str, Path]:
    mapping = tmp_path / "customers.yaml"
    shutil.copy(ROOT / "mappings" / "customers.yaml", mapping)
    past = time.time() - 3600  # the mapping was last changed an hour before the dead letters
    os.utime(mapping, (past, past))
    settings = tmp_path / "local.settings.json"
    values = {
        "BUS_BACKEND": "local",
        "LOCAL_BUS_PATH": "state/bus.sqlite3",
        "CUSTOMER_MAPPING_PATH": str(mapping),
    }
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return {"settings": settings, "bus": tmp_path / "state" / "bus.sqlite3", "mapping": mapping}


def seed(box: dict[str, Path]) -> dict[str, str]:
    """Dead-letter one notice per contact of DEAD in FLOW (other subscriptions complete theirs)."""
    ids: dict[str, str] = {}
    topology = Topology.model_validate(json.loads(Path(DEFAULT_TOPOLOGY_PATH).read_text()))
    with LocalBus(box["bus"], topology) as bus:
        bus.publish(TOPIC, [notice(c).to_message() for c in DEAD])
        for sub in (s.name for t in topology.topics if t.name == TOPIC for s in t.subscriptions):
            while batch := bus.receive(TOPIC, sub, 100):
                for message in batch:
                    contact = notice_id(message)
                    if sub == FLOW:
                        ids[contact] = message.message_id
                        bus.dead_letter(message, *DEAD[contact])
                    else:
                        bus.complete(message)
    return ids


def notice_id(message: Any) -> str:
    from shared.events import Envelope

    return Envelope.from_body(message.body).notice.ids[0]


def run(box: dict[str, Path], *args: str) -> Any:
    return CliRunner().invoke(app, ["dlq", "triage", *args, "--settings", str(box["settings"])])


def groups(box: dict[str, Path]) -> dict[str, dict[str, Any]]:
    result = run(box, "--json")
    assert result.exit_code == 0, result.output
    return {g["group"]: g for g in json.loads(result.output)["groups"]}


def test_dead_letters_are_grouped_by_reason_field_and_cause_with_the_runbook_fix(
    box: dict[str, Path],
) -> None:
    ids = seed(box)

    found = groups(box)

    assert {k: g["count"] for k, g in found.items()} == {
        f"{FLOW}/InvalidEmail/emails.primary": 3,
        f"{FLOW}/RetriesExhausted/DataverseUnavailable": 2,
        f"{FLOW}/UnmappableValue/customer_group": 2,
        f"{FLOW}/InvalidPhone/phones.main": 1,
    }
    email = found[f"{FLOW}/InvalidEmail/emails.primary"]
    assert email["fix"] == runbook.fix_for("InvalidEmail").fix  # type: ignore[union-attr]
    assert email["cause"] == "the source record's data breaks a quality rule"
    assert sorted(email["messageIds"]) == sorted(ids[c] for c in ("101", "102", "103"))
    assert email["oldest"] is not None and email["safeToResubmit"] is False
    outage = found[f"{FLOW}/RetriesExhausted/DataverseUnavailable"]
    assert outage["fix"] == runbook.fix_for("DataverseUnavailable").fix  # type: ignore[union-attr]
    assert outage["safeToResubmit"] is True and "transient" in outage["why"]
    unmapped = found[f"{FLOW}/UnmappableValue/customer_group"]
    assert unmapped["cause"] == "the mapping lacks an entry for a value the record holds"
    assert unmapped["safeToResubmit"] is False and "mapping has not changed" in unmapped["why"]
    assert next(iter(found)) == f"{FLOW}/InvalidEmail/emails.primary"  # biggest first


def test_a_mapping_changed_since_makes_its_group_safe(box: dict[str, Path]) -> None:
    seed(box)
    box["mapping"].write_text(box["mapping"].read_text() + "\n# customer group 9 added\n")

    unmapped = groups(box)[f"{FLOW}/UnmappableValue/customer_group"]

    assert unmapped["safeToResubmit"] is True and "customers.yaml changed at" in unmapped["why"]


def test_the_table_names_each_group_with_its_count_fix_and_verdict(box: dict[str, Path]) -> None:
    seed(box)
    result = run(box)
    assert result.exit_code == 0, result.output
    assert f"{FLOW}/InvalidEmail/emails.primary" in result.output
    assert "Correct the e-mail on the named record" in result.output
    assert "8 dead letter(s) in 4 group(s)" in result.output


def test_resubmitting_a_safe_group_is_one_command_and_leaves_the_others(box: dict[str, Path]) -> None:
    ids = seed(box)

    result = run(box, "--resubmit", f"{FLOW}/retriesexhausted/DataverseUnavailable", "--wait", "0")

    assert result.exit_code == 0, result.output
    assert "resubmitting group" in result.output and "2 dead letter(s) resubmitted" in result.output
    left = groups(box)
    assert f"{FLOW}/RetriesExhausted/DataverseUnavailable" not in left
    assert sum(g["count"] for g in left.values()) == 6
    topology = Topology.model_validate(json.loads(Path(DEFAULT_TOPOLOGY_PATH).read_text()))
    with LocalBus(box["bus"], topology) as bus:
        copies = bus.receive(TOPIC, FLOW, 100)
    assert sorted(notice_id(m) for m in copies) == ["105", "106"]
    assert all(m.message_id != ids[notice_id(m)] for m in copies)  # fresh ids for the copies


def test_a_group_not_safe_is_refused_without_force_in_one_line(box: dict[str, Path]) -> None:
    seed(box)

    refused = run(box, "--resubmit", "1")  # the biggest group: InvalidEmail

    assert refused.exit_code == 2
    assert "not safe to resubmit in bulk" in refused.output and "Traceback" not in refused.output
    assert sum(g["count"] for g in groups(box).values()) == 8
    forced = run(box, "--resubmit", "1", "--force", "--wait", "0")
    assert forced.exit_code == 0, forced.output
    assert sum(g["count"] for g in groups(box).values()) == 5


def test_an_unknown_group_names_the_groups_there_are(box: dict[str, Path]) -> None:
    seed(box)
    result = run(box, "--resubmit", "no-such-group")
    assert result.exit_code == 2 and "no dead-letter group 'no-such-group'" in result.output


def test_fields_and_last_errors_are_read_from_descriptions() -> None:
    assert (
        field_of("InvalidQuantity: dataverse record x, field lines[3].quantity: zero") == "lines[].quantity"
    )
    assert field_of("order ORD-1 has no lines") is None
    assert (
        last_error_of("RetriesExhausted", "gave up; last error [BrightpearlThrottled] 503")
        == "BrightpearlThrottled"
    )
    assert last_error_of("InvalidEmail", "last error [X]") is None
