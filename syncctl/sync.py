"""`syncctl sync <type> --from <system> <id>`: sync one record now, by id, from either side.

Publishes the change notice a webhook would send for the record (shared/ops/sync_now.py); the
flows reading that system do the work. With `--wait N` the command then reads the record's
audit for up to N seconds and prints the outcome (synced, needs review, dead-lettered, ...).
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from syncctl.base import actor
from syncctl.common import app_settings, echo_json, output
from syncctl.dlq import SettingsOpt, _fail


def sync(
    record_type: str = typer.Argument(..., metavar="TYPE", help="contact, product, ... (any entity)"),
    record_id: str = typer.Argument(
        ..., metavar="ID", help="Brightpearl id (a number) or Dataverse id (a GUID)"
    ),
    source: str = typer.Option(..., "--from", help="brightpearl or dataverse: the side to read it from"),
    wait: float = typer.Option(0, "--wait", min=0, max=600, help="seconds to wait for its outcome"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Publish the record's change notice now (as its webhook would) and optionally await its outcome."""
    from shared import runtime
    from shared.ops.console import sync_record
    from shared.ops.records import RecordInputError, record
    from shared.ops.sync_now import runtime_publish, runtime_source

    try:
        ref = record(source, record_type, record_id)
    except RecordInputError as exc:
        raise _fail(str(exc)) from None
    with runtime.override(settings=app_settings(settings_file)):
        store = runtime.state_store()
        started = runtime.clock()
        try:  # published and audited (SyncRequested) as the console does it
            sent = sync_record(
                store,
                ref,
                publish=runtime_publish,
                source=runtime_source(ref.system),
                now=started,
                actor=actor(),
            )
        except RecordInputError as exc:
            raise _fail(str(exc)) from None
        outcome = _await(store, ref, sent.flows, started, wait) if wait else None
    if as_json:
        echo_json({**sent.as_dict(), "outcome": outcome})
        return
    console = output()
    console.print(
        f"{ref.label}: notice published as message {sent.message_id} for {', '.join(sent.flows)}",
        overflow="ignore",
        crop=False,
    )
    if wait:
        if outcome is None:
            console.print(f"no outcome within {wait:g}s: it is queued (syncctl bus status, syncctl history)")
        else:
            console.print(
                f"outcome: {outcome['result']} {outcome['reason'] or ''} {outcome['description']}".strip()
            )


def _await(store, ref, flows, started, wait: float) -> dict | None:  # type: ignore[no-untyped-def]
    """The first audit row of `flows` about the record written after `started`."""
    deadline = time.monotonic() + wait
    while True:
        for entry in store.audit.for_record(ref.audit_entity, ref.system, ref.record_id, limit=20):
            if (
                entry.flow in flows
                and entry.at is not None
                and entry.at >= started
                and entry.result.value != "operator"
            ):
                return {
                    "flow": entry.flow,
                    "result": entry.result.value,
                    "reason": entry.reason_code,
                    "description": entry.description,
                    "target": f"{entry.target_system} {entry.target_id}" if entry.target_id else None,
                    "fields": [f for f in (entry.fields or "").split(",") if f],
                }
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)
