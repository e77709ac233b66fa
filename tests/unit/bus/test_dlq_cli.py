"""`syncctl dlq` against a LocalBus file in a temp dir (CliRunner, real topology rules)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.bus.deadletters import LocalDeadLetters, Selection, resubmission_of
from shared.bus.local import LocalBus
from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, Topology
from shared.events import ChangeNotice, Envelope
from syncctl.dlq import app

TOPIC = "brightpearl-changes"
FLOW = "customers-to-dataverse"
TWIN = "twin-flow"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "BUS_BACKEND",
        "LOCAL_BUS_PATH",
        "ServiceBusConnection",
        "ServiceBusConnection__fullyQualifiedNamespace",
        "BRIGHTPEARL_CHANGES_TOPIC",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "300")  # wide tables: ids are never folded in assertions


@pytest.fixture
def sandbox(tmp_path: Path) -> dict[str, Path]:
    """Settings file + a topology with a second flow on the topic (same rule pattern)."""
    settings = tmp_path / "local.settings.json"
    settings.write_text(
        json.dumps(
            {
                "IsEncrypted": False,
                "Values": {"BUS_BACKEND": "local", "LOCAL_BUS_PATH": "state/bus.sqlite3"},
            }
        )
    )
    raw = json.loads(Path(DEFAULT_TOPOLOGY_PATH).read_text())
    topic = next(t for t in raw["topics"] if t["name"] == TOPIC)
    original = next(s for s in topic["subscriptions"] if s["name"] == FLOW)
    topic["subscriptions"].append(json.loads(json.dumps(original).replace(FLOW, TWIN)))
    topology = tmp_path / "topology.json"
    topology.write_text(json.dumps(raw))
    return {"settings": settings, "topology": topology, "bus": tmp_path / "state" / "bus.sqlite3"}


def open_bus(sandbox: dict[str, Path]) -> LocalBus:
    topo = Topology.model_validate(json.loads(sandbox["topology"].read_text()))
    return LocalBus(sandbox["bus"], topo)


def notice(contact_id: str) -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system="brightpearl",
            entity="contact",
            ids=(contact_id,),
            operation="updated",
            observed_at=datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
            source="/brightpearl/acme",
            version=contact_id,
        )
    )


def seed(sandbox: dict[str, Path], dead: dict[str, str]) -> dict[str, str]:
    """Publish one notice per contact id; dead-letter FLOW's copy with the given reason.

    The twin flow completes its copies, so its DLQ and queue start empty. Returns contact
    id -> message id.
    """
    ids = {}
    with open_bus(sandbox) as bus:
        bus.publish(TOPIC, [notice(c).to_message() for c in dead])
        while batch := bus.receive(TOPIC, TWIN, 100):
            for message in batch:
                bus.complete(message)
        while batch := bus.receive(TOPIC, FLOW, 100):
            for message in batch:
                contact = Envelope.from_body(message.body).notice.ids[0]
                ids[contact] = message.message_id
                bus.dead_letter(message, dead[contact], f"contact {contact}: needs a fix")
    return ids


def run(sandbox: dict[str, Path], *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    return runner.invoke(
        app,
        [*args, "--settings", str(sandbox["settings"]), "--topology", str(sandbox["topology"])],
        input=input,
    )


def test_list_shows_ids_reasons_and_descriptions(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed", "102": "RetriesExhausted"})
    result = run(sandbox, "list")
    assert result.exit_code == 0, result.output
    for contact, message_id in ids.items():
        assert message_id in result.output
        assert f"contact {contact}: needs a fix" in result.output
    assert "ValidationFailed" in result.output and "RetriesExhausted" in result.output
    assert f"{TOPIC}/{FLOW}" in result.output
    topology = Topology.model_validate(json.loads(sandbox["topology"].read_text()))
    subscriptions = sum(len(t.subscriptions) for t in topology.topics)  # every flow's, and the twin
    assert f"2 dead letter(s) in {subscriptions} subscription(s)" in result.output

    narrowed = run(sandbox, "list", "--reason", "RetriesExhausted", "--subscription", FLOW)
    assert ids["102"] in narrowed.output and ids["101"] not in narrowed.output
    assert "1 dead letter(s) in 1 subscription(s)" in narrowed.output


def test_show_prints_ids_and_routing_but_not_record_contents(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed"})
    result = run(sandbox, "show", ids["101"], "--topic", TOPIC)
    assert result.exit_code == 0, result.output
    assert "ValidationFailed" in result.output and "contact" in result.output
    assert "101" in result.output
    assert "/brightpearl/acme" not in result.output  # the body is summarised, not printed
    by_option = run(sandbox, "show", "--message-id", ids["101"])
    assert by_option.exit_code == 0 and "ValidationFailed" in by_option.output
    assert run(sandbox, "show").exit_code == 2
    missing = run(sandbox, "show", "no-such-id")
    assert missing.exit_code == 2 and "no dead letter with message id 'no-such-id'" in missing.output


def test_resubmit_reaches_only_the_replay_to_subscription(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed"})
    result = run(sandbox, "resubmit", "--all", "--topic", TOPIC)
    assert result.exit_code == 0, result.output
    assert "1 dead letter(s) resubmitted" in result.output
    with open_bus(sandbox) as bus:
        assert bus.counts(TOPIC, FLOW).dead_letter == 0  # original completed
        [copy] = bus.receive(TOPIC, FLOW, 10)
        assert bus.receive(TOPIC, TWIN, 10) == []  # the other flow never sees it
        assert copy.application_properties["replay_to"] == FLOW
        assert copy.message_id.startswith(ids["101"] + ".r") and copy.message_id in result.output
        assert Envelope.from_body(copy.body).notice.ids == ("101",)
        assert copy.correlation_id == notice("101").id
        assert copy.subject == "brightpearl/contact/updated"


def test_resubmit_with_reason_moves_only_matching_dead_letters(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed", "102": "RetriesExhausted", "103": "RetriesExhausted"})
    result = run(sandbox, "resubmit", "--reason", "RetriesExhausted")
    assert result.exit_code == 0, result.output
    assert "2 dead letter(s) resubmitted" in result.output
    with open_bus(sandbox) as bus:
        assert [m.message_id for m in bus.peek_dead_letters(TOPIC, FLOW)] == [ids["101"]]
        # the skipped one was only locked during the scan: it can be received right away
        assert len(bus.receive_dead_letters(TOPIC, FLOW)) == 1
        copies = bus.receive(TOPIC, FLOW, 10)
        assert sorted(Envelope.from_body(m.body).notice.ids[0] for m in copies) == ["102", "103"]


def test_resubmit_by_message_id(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed", "102": "ValidationFailed"})
    result = run(sandbox, "resubmit", "--message-id", ids["102"])
    assert result.exit_code == 0, result.output
    with open_bus(sandbox) as bus:
        assert [m.message_id for m in bus.peek_dead_letters(TOPIC, FLOW)] == [ids["101"]]


def test_dry_run_changes_nothing(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed", "102": "RetriesExhausted"})
    resubmitted = run(sandbox, "resubmit", "--all", "--dry-run")
    purged = run(sandbox, "purge", "--all", "--dry-run")
    assert resubmitted.exit_code == 0 and purged.exit_code == 0
    assert "would resubmit" in resubmitted.output
    assert "2 dead letter(s) would be resubmitted" in resubmitted.output
    assert "would purge" in purged.output and ids["101"] in purged.output
    with open_bus(sandbox) as bus:
        assert [m.message_id for m in bus.peek_dead_letters(TOPIC, FLOW)] == [ids["101"], ids["102"]]
        assert bus.receive(TOPIC, FLOW, 10) == [] and bus.receive(TOPIC, TWIN, 10) == []
        assert all(m.delivery_count == 1 for m in bus.peek_dead_letters(TOPIC, FLOW))


def test_purge_asks_first_and_deletes_only_the_selection(sandbox: dict[str, Path]) -> None:
    ids = seed(sandbox, {"101": "ValidationFailed", "102": "RetriesExhausted"})
    declined = run(sandbox, "purge", "--reason", "RetriesExhausted", input="n\n")
    assert declined.exit_code == 1 and "nothing purged" in declined.output
    with open_bus(sandbox) as bus:
        assert bus.counts(TOPIC, FLOW).dead_letter == 2
    confirmed = run(sandbox, "purge", "--reason", "RetriesExhausted", input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "1 dead letter(s) purged" in confirmed.output
    with open_bus(sandbox) as bus:
        assert [m.message_id for m in bus.peek_dead_letters(TOPIC, FLOW)] == [ids["101"]]
    everything = run(sandbox, "purge", "--all", "--yes")
    assert everything.exit_code == 0 and "1 dead letter(s) purged" in everything.output
    with open_bus(sandbox) as bus:
        assert bus.counts(TOPIC, FLOW).dead_letter == 0
        assert bus.receive(TOPIC, FLOW, 10) == []  # purge never resubmits


def test_destructive_commands_need_a_selection_and_bad_names_are_named(sandbox: dict[str, Path]) -> None:
    for command in ("resubmit", "purge"):
        result = run(sandbox, command)
        assert result.exit_code == 2
        assert "--all, --reason REASON or --message-id ID" in result.output
    unknown_topic = run(sandbox, "list", "--topic", "nope")
    assert unknown_topic.exit_code == 2 and "unknown topic 'nope'" in unknown_topic.output
    unknown_sub = run(sandbox, "list", "--subscription", "ghost")
    assert unknown_sub.exit_code == 2 and "no subscription 'ghost'" in unknown_sub.output


def test_environment_variables_win_over_the_settings_file(
    sandbox: dict[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seed(sandbox, {"101": "ValidationFailed"})
    monkeypatch.setenv("LOCAL_BUS_PATH", str(tmp_path / "elsewhere.sqlite3"))
    result = run(sandbox, "list")  # the environment's bus, which was never started
    assert result.exit_code == 2, result.output
    assert f"no local bus at {tmp_path / 'elsewhere.sqlite3'}" in " ".join(result.output.split())
    monkeypatch.setenv("BUS_BACKEND", "servicebus")
    broken = run(sandbox, "list")
    assert broken.exit_code == 2 and "ServiceBusConnection" in broken.output


def test_resubmitted_copy_drops_broker_dead_letter_properties() -> None:
    from shared.bus.deadletters import DeadLetter

    item = DeadLetter(
        topic=TOPIC,
        subscription=FLOW,
        sequence_number=7,
        message_id="m" * 128,
        enqueued_time_utc=None,
        reason="X",
        description="Y",
        delivery_count=1,
        application_properties={
            "entity": "contact",
            "DeadLetterReason": "X",
            "DeadLetterErrorDescription": "Y",
            "replay_to": "old-flow",
        },
        subject="s",
        content_type="application/json",
        correlation_id="c",
        body=b"{}",
    )
    copy = resubmission_of(item)
    assert copy.application_properties == {"entity": "contact", "replay_to": FLOW}
    assert len(copy.message_id) == 128 and ".r" in copy.message_id
    assert resubmission_of(item).message_id != copy.message_id


def test_selection_requires_a_criterion() -> None:
    with pytest.raises(ValueError, match="choose the messages"):
        Selection()


def test_local_dead_letter_ops_list_pages_through_many(sandbox: dict[str, Path]) -> None:
    seed(sandbox, {str(i): "ValidationFailed" for i in range(250, 480)})
    with open_bus(sandbox) as bus:
        ops = LocalDeadLetters(bus)
        assert len(ops.list(TOPIC, FLOW, max_messages=1000)) == 230
        assert len(ops.list(TOPIC, FLOW, max_messages=120)) == 120
