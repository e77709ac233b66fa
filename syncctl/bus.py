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
