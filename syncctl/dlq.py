"""`syncctl dlq`: list, show, resubmit and purge subscription dead letters (local bus or Azure).

Resubmit copies each selected dead letter to its topic with `replay_to=<subscription>` and a
fresh message id, then completes the original (shared.bus.deadletters). Output shows ids,
reasons and times only, never record contents.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from shared.bus.deadletters import DeadLetter, DeadLetterOps, Outcome, Selection
from shared.bus.port import BusError
from shared.bus.topology import DEFAULT_TOPOLOGY_PATH, Topology, TopologyError, load_topology
from shared.settings import BusSettings

app = typer.Typer(
    name="dlq",
    help="Inspect and re-drive subscription dead-letter queues (local bus or Azure Service Bus).",
    no_args_is_help=True,
)

ROOT = Path(__file__).resolve().parents[1]

TopicOpt = typer.Option(None, "--topic", "-t", help="topic (default: every topic of the topology)")
SubscriptionOpt = typer.Option(
    None, "--subscription", "-s", help="subscription (default: every subscription of the topic(s))"
)
AllOpt = typer.Option(False, "--all", help="select every dead letter")
ReasonOpt = typer.Option(None, "--reason", help="select dead letters with this DeadLetterReason")
MessageIdOpt = typer.Option(None, "--message-id", help="select this message id (repeatable)")
DryRunOpt = typer.Option(False, "--dry-run", help="show what would happen; change nothing")
SettingsOpt = typer.Option(
    None,
    "--settings",
    help="local.settings.json-style file (default: local.settings.json, else the example); "
    "environment variables win over its Values",
)
TopologyOpt = typer.Option(None, "--topology", help="topology file (default: infra/topology.json)")
MaxOpt = typer.Option(
    1000, "--max", min=1, help="look at no more than this many dead letters per subscription"
)


class _Context:
    def __init__(self, ops: DeadLetterOps, targets: list[tuple[str, str]]) -> None:
        self.ops = ops
        self.targets = targets


def _console() -> Console:
    # Created per command so COLUMNS / terminal width are read at run time.
    return Console(highlight=False, soft_wrap=False)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _environment(settings_file: Path | None) -> tuple[dict[str, str], Path | None]:
    from syncctl.settings_file import load_settings_file

    path = settings_file
    if path is None:
        for candidate in (ROOT / "local.settings.json", ROOT / "local.settings.example.json"):
            if candidate.exists():
                path = candidate
                break
    try:
        values = load_settings_file(path) if path is not None else {}
    except typer.BadParameter as exc:
        raise _fail(str(exc)) from None
    return {**values, **os.environ}, path


def _bus_settings(env: dict[str, str], source: Path | None) -> BusSettings:
    try:
        settings = BusSettings.model_validate(env)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            field = BusSettings.model_fields.get(name)
            alias = field.validation_alias if field is not None else None
            problems.append(f"{alias if isinstance(alias, str) else name or 'bus settings'}: {err['msg']}")
        raise _fail("invalid bus settings: " + "; ".join(problems)) from None
    if settings.backend == "local" and not Path(settings.local_path).is_absolute():
        # Relative paths are relative to the settings file, like the local host's project root.
        base = source.parent if source is not None else Path.cwd()
        settings = settings.model_copy(update={"local_path": str(base / settings.local_path)})
    return settings


def _targets(
    topology: Topology, env: dict[str, str], backend: str, topic: str | None, subscription: str | None
) -> list[tuple[str, str]]:
    topics = topology.topics
    if topic is not None:
        topics = [t for t in topics if t.name == topic or env.get(t.setting) == topic]
        if not topics:
            known = ", ".join(t.name for t in topology.topics)
            raise _fail(f"unknown topic {topic!r} (topology has: {known})")
    targets = []
    for t in topics:
        # In Azure the topic's real name comes from its app setting (e.g. BRIGHTPEARL_CHANGES_TOPIC).
        name = env.get(t.setting) or t.name if backend == "servicebus" else t.name
        for sub in t.subscriptions:
            if subscription is None or sub.name == subscription:
                targets.append((name, sub.name))
    if not targets:
        raise _fail(f"no subscription {subscription!r} in {'topic ' + topic if topic else 'the topology'}")
    return targets


def resolve(
    settings_file: Path | None, topology_file: Path | None, topic: str | None, subscription: str | None
) -> tuple[BusSettings, Topology, list[tuple[str, str]]]:
    """Bus settings, topology and the (topic, subscription) pairs a command works on
    (shared by `syncctl dlq` and `syncctl bus`)."""
    env, source = _environment(settings_file)
    settings = _bus_settings(env, source)
    try:
        topology = load_topology(topology_file or DEFAULT_TOPOLOGY_PATH)
    except TopologyError as exc:
        raise _fail(str(exc)) from None
    return settings, topology, _targets(topology, env, settings.backend, topic, subscription)


def require_local_bus(settings: BusSettings) -> None:
    """A local bus that does not exist yet is a sandbox not started: say so (opening it would
    create an empty one and report nothing)."""
    if settings.backend == "local" and not Path(settings.local_path).exists():
        raise _fail(f"no local bus at {settings.local_path} (start the sandbox: syncctl sandbox up)")


def _open(
    settings_file: Path | None, topology_file: Path | None, topic: str | None, subscription: str | None
) -> _Context:
    from shared.bus.factory import build_dead_letters

    settings, topology, targets = resolve(settings_file, topology_file, topic, subscription)
    require_local_bus(settings)
    try:
        ops = build_dead_letters(settings, topology=topology)
    except BusError as exc:
        raise _fail(str(exc)) from None
    return _Context(ops, targets)


def _selection(
    all_messages: bool, reason: str | None, message_ids: list[str] | None, *, default_all: bool
) -> Selection:
    if not (all_messages or reason or message_ids):
        if not default_all:
            raise _fail("choose the dead letters: --all, --reason REASON or --message-id ID")
        all_messages = True
    return Selection(all=all_messages, reason=reason, message_ids=frozenset(message_ids or ()))


def _when(item: DeadLetter) -> str:
    return item.enqueued_time_utc.strftime("%Y-%m-%d %H:%M:%SZ") if item.enqueued_time_utc else ""


def _ids(item: DeadLetter, limit: int = 5) -> str:
    ids = item.record_ids
    shown = ", ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit})" if len(ids) > limit else "")


def _table(title: str, extra: tuple[str, ...] = ()) -> Table:
    table = Table(title=title, show_lines=False)
    columns = ("subscription", "seq", "message id", "entity", "ids", "reason", "description", "enqueued")
    for column in (*columns, *extra):
        table.add_column(column, overflow="fold")
    return table


def _row(item: DeadLetter) -> list[str]:
    return [
        f"{item.topic}/{item.subscription}",
        str(item.sequence_number),
        item.message_id,
        item.entity or "",
        _ids(item),
        item.reason or "",
        item.description or "",
        _when(item),
    ]


def _run(ctx: _Context, action: str, operation) -> list[Outcome | DeadLetter]:  # type: ignore[no-untyped-def]
    results: list = []
    try:
        for topic, subscription in ctx.targets:
            results.extend(operation(topic, subscription))
    except BusError as exc:
        raise _fail(f"{action} failed: {exc}") from None
    finally:
        ctx.ops.close()
    return results


def _settle(
    ctx: _Context,
    action: str,
    done: str,
    dry_run: bool,
    operation: Callable[..., list[Outcome]],
    selection: Selection,
    max_messages: int,
) -> None:
    """Run a resubmit or purge over every target subscription and print what it did."""
    outcomes = _run(
        ctx, action, lambda t, s: operation(t, s, selection, dry_run=dry_run, max_messages=max_messages)
    )
    console = _console()
    console.print(_outcome_table(f"{action} (dry run)" if dry_run else action, outcomes))
    console.print(f"{len(outcomes)} dead letter(s) {'would be ' if dry_run else ''}{done}")


@app.command("list")
def list_dead_letters(
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    all_messages: bool = typer.Option(False, "--all", help="list every dead letter (the default)"),
    reason: str | None = ReasonOpt,
    message_id: list[str] | None = MessageIdOpt,
    max_messages: int = typer.Option(100, "--max", min=1, help="show at most this many per subscription"),
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
) -> None:
    """List dead letters (all unless --reason / --message-id narrow it)."""
    ctx = _open(settings, topology, topic, subscription)
    selection = _selection(all_messages, reason, message_id, default_all=True)
    items = _run(ctx, "list", lambda t, s: ctx.ops.list(t, s, selection, max_messages=max_messages))
    console = _console()
    table = _table("dead letters")
    for item in items:
        assert isinstance(item, DeadLetter)
        table.add_row(*_row(item))
    console.print(table)
    console.print(f"{len(items)} dead letter(s) in {len(ctx.targets)} subscription(s)")


@app.command("show")
def show(
    message_id: str | None = typer.Argument(None, help="message id of the dead letter"),
    message_id_option: str | None = typer.Option(None, "--message-id", help="same as the argument"),
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
    max_messages: int = MaxOpt,
) -> None:
    """Show one dead letter's ids, routing properties and dead-letter reason."""
    message_id = message_id or message_id_option
    if not message_id:
        raise _fail("give the message id: syncctl dlq show ID (or --message-id ID)")
    ctx = _open(settings, topology, topic, subscription)
    selection = Selection(message_ids=frozenset({message_id}))
    items = _run(ctx, "show", lambda t, s: ctx.ops.list(t, s, selection, max_messages=max_messages))
    if not items:
        raise _fail(f"no dead letter with message id {message_id!r}")
    console = _console()
    for item in items:
        assert isinstance(item, DeadLetter)
        envelope = item.envelope
        table = Table(title=f"dead letter {item.message_id}", show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        props = item.application_properties
        fields = [
            ("subscription", f"{item.topic}/{item.subscription}"),
            ("sequence", str(item.sequence_number)),
            ("message id", item.message_id),
            ("correlation id", item.correlation_id or ""),
            ("subject", item.subject or ""),
            ("entity", item.entity or ""),
            ("ids", ", ".join(item.record_ids)),
            ("operation", str(props.get("operation", envelope.notice.operation if envelope else ""))),
            ("source system", str(props.get("source_system", envelope.notice.system if envelope else ""))),
            ("attempt", str(props.get("attempt", envelope.attempt if envelope else ""))),
            ("replay_to", str(props.get("replay_to") or "")),
            ("delivery count", str(item.delivery_count)),
            ("reason", item.reason or ""),
            ("description", item.description or ""),
            ("enqueued", _when(item)),
            ("body", "change notice" if envelope else f"not a change notice ({len(item.body)} bytes)"),
        ]
        for name, value in fields:
            table.add_row(name, value)
        console.print(table)


def _outcome_table(title: str, outcomes: list) -> Table:  # type: ignore[type-arg]
    table = _table(title, ("action", "new message id"))
    for outcome in outcomes:
        assert isinstance(outcome, Outcome)
        note = f" ({outcome.note})" if outcome.note else ""
        table.add_row(*_row(outcome.dead_letter), outcome.action + note, outcome.new_message_id or "")
    return table


@app.command("resubmit")
def resubmit(
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    all_messages: bool = AllOpt,
    reason: str | None = ReasonOpt,
    message_id: list[str] | None = MessageIdOpt,
    dry_run: bool = DryRunOpt,
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
    max_messages: int = MaxOpt,
) -> None:
    """Send copies to the topic for only their subscription (replay_to), then remove the originals."""
    selection = _selection(all_messages, reason, message_id, default_all=False)
    ctx = _open(settings, topology, topic, subscription)
    _settle(ctx, "resubmit", "resubmitted", dry_run, ctx.ops.resubmit, selection, max_messages)


@app.command("purge")
def purge(
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    all_messages: bool = AllOpt,
    reason: str | None = ReasonOpt,
    message_id: list[str] | None = MessageIdOpt,
    dry_run: bool = DryRunOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
    max_messages: int = MaxOpt,
) -> None:
    """Delete dead letters for good (asks first unless --yes)."""
    selection = _selection(all_messages, reason, message_id, default_all=False)
    ctx = _open(settings, topology, topic, subscription)
    if not dry_run and not yes:
        where = ", ".join(f"{t}/{s}" for t, s in ctx.targets)
        narrowed = reason or message_id
        what = "all dead letters" if selection.all and not narrowed else "the selected dead letters"
        if not typer.confirm(f"Delete {what} of {where}? This cannot be undone", default=False):
            ctx.ops.close()
            _console().print("nothing purged")
            raise typer.Exit(1)
    _settle(ctx, "purge", "purged", dry_run, ctx.ops.purge, selection, max_messages)
