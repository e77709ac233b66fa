"""`syncctl bus status`: waiting work per subscription (local bus or Azure Service Bus).

Shows, per subscription, messages active (visible now, locked ones included), locked (being
worked on), scheduled (retry copies not yet due), dead-lettered and deferred, so convergence
after an outage or a backfill can be watched from the command line. Counts only, no contents.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from shared.bus.backlog import Backlog, local_backlog, servicebus_backlog
from shared.bus.port import BusError
from syncctl.dlq import SettingsOpt, SubscriptionOpt, TopicOpt, TopologyOpt, _fail, resolve

app = typer.Typer(
    name="bus", help="Look at the message bus (local bus or Azure Service Bus).", no_args_is_help=True
)


@app.command("status")
def status(
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    settings_file: Path | None = SettingsOpt,
    topology_file: Path | None = TopologyOpt,
) -> None:
    """Active, locked, scheduled, dead-lettered and deferred messages per subscription."""
    settings, topology, targets = resolve(settings_file, topology_file, topic, subscription)
    try:
        if settings.backend == "local":
            from shared.bus.local import LocalBus

            if not Path(settings.local_path).exists():
                raise _fail(f"no local bus at {settings.local_path} (start the sandbox: syncctl sandbox up)")
            with LocalBus(settings.local_path, topology) as bus:
                rows = local_backlog(bus, targets)
        else:
            from shared.bus.servicebus import build_admin_client

            with build_admin_client(settings) as admin:
                rows = servicebus_backlog(admin, targets)
    except BusError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(
            json.dumps({"backend": settings.backend, "subscriptions": [r.as_dict() for r in rows]}, indent=2)
        )
        return
    _print(rows, settings.backend)


def _print(rows: list[Backlog], backend: str) -> None:
    table = Table(title=f"waiting work ({'local bus' if backend == 'local' else 'Azure Service Bus'})")
    for column in ("topic", "subscription", "active", "locked", "scheduled", "dead-lettered", "deferred"):
        table.add_column(column, justify="left" if column in ("topic", "subscription") else "right")
    show = lambda n: "n/a" if n is None else str(n)  # noqa: E731
    for r in rows:
        table.add_row(
            r.topic,
            r.subscription,
            show(r.active),
            show(r.locked),
            show(r.scheduled),
            show(r.dead_lettered),
            show(r.deferred),
        )
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:  # piped or captured: do not fold names into 80 columns
        console = Console(highlight=False, soft_wrap=False, width=max(console.width, 120))
    console.print(table)
    for note in dict.fromkeys(r.note for r in rows if r.note):
        console.print(f"  {note}")


@app.command("messages")
def messages(
    queue: list[str] | None = typer.Option(
        None,
        "--queue",
        "-q",
        help="scheduled, active or dead-lettered (repeatable; default: scheduled and active)",
    ),
    topic: str | None = TopicOpt,
    subscription: str | None = SubscriptionOpt,
    record_id: list[str] | None = typer.Option(None, "--id", help="only messages naming this record id"),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    max_messages: int = typer.Option(
        200, "--max", min=1, help="at most this many per subscription and queue"
    ),
    settings_file: Path | None = SettingsOpt,
    topology_file: Path | None = TopologyOpt,
) -> None:
    """In-flight work, message by message: retry copies scheduled (attempt, when due), postponed
    messages of a paused flow, and notices waiting; ids and times only."""
    from shared.ops.busview import QUEUES, bus_messages

    chosen = queue or ["scheduled", "active"]
    unknown = [q for q in chosen if q not in QUEUES]
    if unknown:
        raise _fail(f"--queue {unknown[0]!r}: choose from {', '.join(QUEUES)}")
    settings, topology, targets = resolve(settings_file, topology_file, topic, subscription)
    try:
        found = bus_messages(
            settings,
            topology,
            targets,
            ids=record_id or None,
            queues=chosen,
            max_messages=max_messages,  # type: ignore[arg-type]
        )
    except BusError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps([m.as_dict() for m in found], indent=2))
        return
    table = Table(title=f"messages ({', '.join(chosen)})")
    for column in (
        "queue",
        "subscription",
        "message id",
        "entity",
        "ids",
        "attempt",
        "due",
        "origin",
        "reason",
    ):
        table.add_column(column, overflow="fold")
    for m in found:
        ids = ", ".join(m.ids[:5]) + (f" (+{len(m.ids) - 5})" if len(m.ids) > 5 else "")
        due = m.due.strftime("%Y-%m-%d %H:%M:%SZ") if m.due else ""
        attempt = "" if m.attempt is None else str(m.attempt)
        table.add_row(
            m.queue,
            m.subscription,
            m.message_id,
            m.entity or "",
            ids,
            attempt,
            due,
            m.origin or "",
            m.reason or "",
        )
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal:
        console = Console(highlight=False, soft_wrap=False, width=max(console.width, 160))
    console.print(table)
    console.print(f"{len(found)} message(s)")
