"""`syncctl dlq`: list, show, resubmit and purge subscription dead letters (local bus or Azure).

Resubmit copies each selected dead letter to its topic with `replay_to=<subscription>` and a
fresh message id, then completes the original (shared.bus.deadletters). Output shows ids,
reasons and times only, never record contents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer
from rich.table import Table

from shared.bus.deadletters import DeadLetter, DeadLetterOps, Outcome, Selection
from shared.bus.port import BusError
from shared.settings import BusSettings
from syncctl.base import (  # noqa: F401 - re-exported: other commands import them from here
    ROOT,
    SettingsOpt,
    _bus_settings,
    _console,
    _environment,
    _fail,
    _targets,
    actor,
    resolve,
)

app = typer.Typer(
    name="dlq",
    help="Inspect and re-drive subscription dead-letter queues (local bus or Azure Service Bus).",
    no_args_is_help=True,
)


TopicOpt = typer.Option(None, "--topic", "-t", help="topic (default: every topic of the topology)")
SubscriptionOpt = typer.Option(
    None, "--subscription", "-s", help="subscription (default: every subscription of the topic(s))"
)
AllOpt = typer.Option(False, "--all", help="select every dead letter")
ReasonOpt = typer.Option(None, "--reason", help="select dead letters with this DeadLetterReason")
MessageIdOpt = typer.Option(None, "--message-id", help="select this message id (repeatable)")
DryRunOpt = typer.Option(False, "--dry-run", help="show what would happen; change nothing")
TopologyOpt = typer.Option(None, "--topology", help="topology file (default: infra/topology.json)")
MaxOpt = typer.Option(
    1000, "--max", min=1, help="look at no more than this many dead letters per subscription"
)


class _Context:
    def __init__(self, ops: DeadLetterOps, targets: list[tuple[str, str]]) -> None:
        self.ops = ops
        self.targets = targets


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
) -> list[Outcome]:
    """Run a resubmit or purge over every target subscription and print what it did."""
    outcomes = _run(
        ctx, action, lambda t, s: operation(t, s, selection, dry_run=dry_run, max_messages=max_messages)
    )
    console = _console()
    console.print(_outcome_table(f"{action} (dry run)" if dry_run else action, outcomes))
    console.print(f"{len(outcomes)} dead letter(s) {'would be ' if dry_run else ''}{done}")
    return [o for o in outcomes if isinstance(o, Outcome)]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _compact(title: str, items: list[DeadLetter], notes: dict[str, str] | None = None) -> Table:
    """One line per dead letter: where, message id, ids, reason, the description's start, when
    (and, for superseded ones, the sync that superseded it). `--wide` shows everything."""
    table = Table(title=title, show_lines=False)
    columns = ("subscription", "message id", "ids", "reason", "description", "enqueued")
    for column in (*columns, *(("superseded by",) if notes else ())):
        table.add_column(column, overflow="fold")
    for item in items:
        description = _clip(" ".join((item.description or "").split()), 60)
        where = f"{item.topic}/{item.subscription}"
        cells = [where, item.message_id, _ids(item, 3), item.reason or "", description, _when(item)]
        table.add_row(*cells, *((notes.get(item.message_id, ""),) if notes else ()))
    return table


def _store_audit(settings_file: Path | None):  # type: ignore[no-untyped-def]
    """The audit log of the state store the settings name (exit 2 naming why when there is none)."""
    from shared import runtime
    from syncctl.common import app_settings

    with runtime.override(settings=app_settings(settings_file)):
        return runtime.state_store().audit


def _optional_audit(settings_file: Path | None):  # type: ignore[no-untyped-def]
    """The audit log, or None and why not: a resubmit or purge needs only the bus settings; its
    audit rows and the copies' follow-up need the whole app's (state store included)."""
    from shared import runtime
    from shared.settings import SettingsError, load_settings

    env, _ = _environment(settings_file)
    try:
        settings = load_settings(env)
        with runtime.override(settings=settings):
            return runtime.state_store().audit, None
    except SettingsError as exc:
        return None, "settings for the state store are not valid: " + "; ".join(exc.problems)
    except Exception as exc:  # the store cannot be reached: the bus action still stands
        return None, f"state store not reachable: {type(exc).__name__}: {exc}"


def _superseded(items: list[DeadLetter], settings_file: Path | None) -> dict[str, str]:
    from shared.ops.deadletters import superseded

    return {item.message_id: note for item, note in superseded(items, _store_audit(settings_file))}


def _audit_actions(audit, outcomes: list[Outcome], action: str, at=None) -> None:  # type: ignore[no-untyped-def]
    """One operator row per record a resubmit or purge touched, as the console writes them,
    stamped `at` (taken before the action, so it sorts before the outcome a copy leads to)."""
    from shared.ops.console import _audit_entries

    entries = [
        e
        for o in outcomes
        if o.action in ("resubmitted", "purged", "copy sent, original kept")
        for e in _audit_entries(o, action, actor())
    ]  # type: ignore[arg-type]
    if entries:
        audit.record_many([e.model_copy(update={"at": at}) for e in entries] if at else entries)


@app.command("list")
def list_dead_letters(
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    all_messages: bool = typer.Option(False, "--all", help="list every dead letter (the default)"),
    reason: str | None = ReasonOpt,
    message_id: list[str] | None = MessageIdOpt,
    superseded_only: bool = typer.Option(
        False, "--superseded", help="only dead letters whose records synced in their flow since"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    wide: bool = typer.Option(False, "--wide", help="every column, descriptions included"),
    max_messages: int = typer.Option(100, "--max", min=1, help="show at most this many per subscription"),
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
) -> None:
    """List dead letters (all unless --reason, any case, or --message-id narrow it)."""
    from shared.ops.deadletters import rows

    ctx = _open(settings, topology, topic, subscription)
    selection = _selection(all_messages, reason, message_id, default_all=True)
    items = [
        i
        for i in _run(ctx, "list", lambda t, s: ctx.ops.list(t, s, selection, max_messages=max_messages))
        if isinstance(i, DeadLetter)
    ]
    notes = _superseded(items, settings) if superseded_only else {}
    if superseded_only:
        items = [i for i in items if i.message_id in notes]
    if as_json:
        found = [
            {**r.as_dict(), **({"supersededBy": notes[r.message_id]} if notes else {})} for r in rows(items)
        ]
        typer.echo(json.dumps(found, indent=2))
        return
    console = _console()
    if wide:
        table = _table("dead letters")
        for item in items:
            table.add_row(*_row(item))
    else:
        table = _compact("superseded dead letters" if superseded_only else "dead letters", items, notes)
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
    wait: float = typer.Option(
        10.0, "--wait", min=0, max=600, help="seconds to wait for the copies' outcomes (0: do not wait)"
    ),
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
    max_messages: int = MaxOpt,
) -> None:
    """Send copies to the topic for only their subscription (replay_to), remove the originals, then
    report what became of each copy (its flow's next outcome, or where it is on the bus)."""
    from shared import runtime
    from shared.ops.deadletters import audit_marks, copy_fates
    from syncctl.common import bus_reader

    selection = _selection(all_messages, reason, message_id, default_all=False)
    audit, why = (None, None) if dry_run else _optional_audit(settings)
    marks: set[str] = set()
    if audit is not None:  # the audit rows there are now: none of them is a copy's outcome
        listed = _open(settings, topology, topic, subscription)
        items = _run(listed, "list", lambda t, s: listed.ops.list(t, s, selection, max_messages=max_messages))
        marks = audit_marks(audit, [i for i in items if isinstance(i, DeadLetter)])
    since = runtime.clock()
    ctx = _open(settings, topology, topic, subscription)
    outcomes = _settle(ctx, "resubmit", "resubmitted", dry_run, ctx.ops.resubmit, selection, max_messages)
    if dry_run or not outcomes:
        return
    if audit is None:
        _console().print(f"not audited and not followed ({why}); `syncctl bus messages` shows the copies")
        return
    _audit_actions(audit, outcomes, "resubmit", at=since)
    fates = copy_fates(
        outcomes,
        audit=audit,
        since=since,
        bus=bus_reader(settings, topology, {o.dead_letter.subscription for o in outcomes}),
        exclude=marks,
        wait=wait,
    )
    table = Table(title=f"what became of the copies (after up to {wait:g}s)")
    for column in ("subscription", "new message id", "ids", "now", "reason", "description"):
        table.add_column(column, overflow="fold")
    for fate in fates:
        ids = ", ".join(fate.ids[:5])
        table.add_row(
            fate.subscription, fate.message_id, ids, fate.state, fate.reason or "", fate.description
        )
    _console().print(table)


@app.command("purge")
def purge(
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    all_messages: bool = AllOpt,
    reason: str | None = ReasonOpt,
    message_id: list[str] | None = MessageIdOpt,
    dry_run: bool = DryRunOpt,
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
    superseded_only: bool = typer.Option(
        False, "--superseded", help="the dead letters whose records synced in their flow since"
    ),
    settings: Path | None = SettingsOpt,
    topology: Path | None = TopologyOpt,
    max_messages: int = MaxOpt,
) -> None:
    """Delete dead letters for good (asks first unless --yes). --superseded: the dead letters whose
    records have synced in their flow since (see `dlq list --superseded`), in bulk."""
    if superseded_only:
        listed = _open(settings, topology, topic, subscription)
        wanted = (
            Selection(all=True)
            if not (reason or message_id)
            else _selection(False, reason, message_id, default_all=False)
        )
        items = [
            i
            for i in _run(
                listed, "list", lambda t, s: listed.ops.list(t, s, wanted, max_messages=max_messages)
            )
            if isinstance(i, DeadLetter)
        ]
        ids = sorted(_superseded(items, settings))
        if not ids:
            _console().print("no superseded dead letters: nothing to purge")
            return
        message_id, reason, all_messages = ids, None, False
    selection = _selection(all_messages, reason, message_id, default_all=False)
    ctx = _open(settings, topology, topic, subscription)
    if not dry_run and not yes:
        where = ", ".join(f"{t}/{s}" for t, s in ctx.targets)
        narrowed = reason or message_id
        what = "all dead letters" if selection.all and not narrowed else "the selected dead letters"
        what = f"the {len(message_id or [])} superseded dead letters" if superseded_only else what
        if not typer.confirm(f"Delete {what} of {where}? This cannot be undone", default=False):
            ctx.ops.close()
            _console().print("nothing purged")
            raise typer.Exit(1)
    outcomes = _settle(ctx, "purge", "purged", dry_run, ctx.ops.purge, selection, max_messages)
    if outcomes and not dry_run:
        audit, why = _optional_audit(settings)
        if audit is None:
            _console().print(f"not audited ({why})")
        else:
            _audit_actions(audit, outcomes, "purge")
