"""`syncctl history <system> <type> <id>`: one record's history across both systems.

`syncctl history brightpearl contact 215`, `syncctl history dataverse contact <guid>`,
`syncctl history brightpearl product 1001`: every outcome the audit holds about the record and
its linked record on the other side (both flow directions), the operators' actions, and the
bus messages naming it (dead letters, scheduled retry copies, notices waiting), oldest first
(shared/ops/history.py). Ids, reasons and times only, never record contents.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from syncctl.common import app_settings, bus_reader, echo_json, output
from syncctl.dlq import SettingsOpt, TopologyOpt, _fail


def history(
    system: str = typer.Argument(..., help="brightpearl or dataverse"),
    record_type: str = typer.Argument(..., metavar="TYPE", help="contact, product, order, ... (any entity)"),
    record_id: str = typer.Argument(
        ..., metavar="ID", help="Brightpearl id (a number) or Dataverse id (a GUID)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    no_bus: bool = typer.Option(False, "--no-bus", help="audit and links only; do not read the bus"),
    settings_file: Path | None = SettingsOpt,
    topology_file: Path | None = TopologyOpt,
) -> None:
    """Every notice outcome, retry, dead letter and operator action about one record, both sides."""
    from shared import runtime
    from shared.ops.history import record_history
    from shared.ops.records import RecordInputError, record

    try:
        ref = record(system, record_type, record_id)
    except RecordInputError as exc:
        raise _fail(str(exc)) from None
    settings = app_settings(settings_file)
    flows = [f.name for f in ref.flows]
    bus = None if no_bus else bus_reader(settings_file, topology_file, flows)
    with runtime.override(settings=settings):
        found = record_history(runtime.state_store(), ref, bus=bus)
    if as_json:
        echo_json(found.as_dict())
        return
    console = output()
    linked = ", ".join(f"{s} {i}" for s, i in found.linked.items()) or "not linked"
    state = f" ({found.link_state})" if found.link_state else ""
    console.print(f"{ref.label} [{ref.audit_entity}]: {linked}{state}; {found.retries} retr(ies)")
    table = Table(title=f"history ({len(found.events)} event(s), oldest first)")
    for column in (
        "at",
        "flow",
        "what",
        "reason",
        "attempt",
        "source",
        "target",
        "message id",
        "description",
    ):
        table.add_column(column, overflow="fold")
    for e in found.events:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%SZ") if e.at else "",
            e.flow or "",
            e.result or "",
            e.reason or "",
            "" if e.attempt is None else str(e.attempt),
            e.source or "",
            e.target or "",
            ", ".join(e.fields),
            e.message_id or "",
            e.description,
        )
    console.print(table)
    for note in found.notes:
        console.print(f"  {note}")
