"""`syncctl flow list|pause|resume`: stop one flow without redeploying, and start it again.

While a flow is paused its trigger runs nothing: each message it receives is postponed (a copy
scheduled `--recheck` seconds later for that flow only, the original completed), so nothing is
lost, no delivery count or retry attempt is spent and nothing is dead-lettered, however long the
pause (shared/ops/flow_control.py). Every pause and resume is written to the audit.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from syncctl.base import actor
from syncctl.common import app_settings, echo_json, output
from syncctl.dlq import SettingsOpt, _fail

app = typer.Typer(name="flow", help="Pause and resume one flow.", no_args_is_help=True)


def _flow(name: str) -> str:
    from shared.sync import registry

    names = [f.name for f in registry.flows()]
    if name not in names:
        raise _fail(f"no flow {name!r}; flows: {', '.join(names)}")
    return name


@app.command("list")
def list_flows(
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Every flow, running or paused (since when, by whom, why)."""
    from shared import runtime
    from shared.ops.flow_control import get_pause
    from shared.sync import registry

    with runtime.override(settings=app_settings(settings_file)):
        cursors = runtime.state_store().cursors
        rows = [(f.name, get_pause(cursors, f.name)) for f in registry.flows()]
    if as_json:
        echo_json([{"flow": name, "paused": p.as_dict() if p else None} for name, p in rows])
        return
    table = Table(title="flows")
    for column in ("flow", "state", "since", "by", "recheck", "reason"):
        table.add_column(column, overflow="fold")
    for name, p in rows:
        if p is None:
            table.add_row(name, "running", "", "", "", "")
        else:
            since = p.since.strftime("%Y-%m-%d %H:%M:%SZ")
            table.add_row(name, "paused", since, p.by, f"{p.recheck_seconds}s", p.reason)
    output().print(table)


@app.command("pause")
def pause(
    flow: str = typer.Argument(..., help="the flow (its subscription name), e.g. customers-to-dataverse"),
    reason: str = typer.Option("", "--reason", help="why (kept with the pause and in the audit)"),
    recheck: int = typer.Option(
        60, "--recheck", min=5, max=3600, help="seconds between looks at a paused flow's messages"
    ),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Stop a flow: its messages wait on the bus, scheduled, until it is resumed."""
    from shared import runtime
    from shared.ops import flow_control
    from shared.ops.console import audit_operator

    name = _flow(flow)
    with runtime.override(settings=app_settings(settings_file)):
        store = runtime.state_store()
        found, new = flow_control.pause(
            store.cursors, name, now=runtime.clock(), by=actor(), reason=reason, recheck_seconds=recheck
        )
        if new:
            audit_operator(store, name, "FlowPaused", f"{found.by}: paused ({reason or 'no reason given'})")
    since = found.since.strftime("%Y-%m-%d %H:%M:%SZ")
    state = "paused" if new else "already paused"
    output().print(
        f"{name}: {state} since {since} by {found.by}; its messages are postponed every "
        f"{found.recheck_seconds}s until `syncctl flow resume {name}` (takes effect within "
        f"{flow_control.CACHE_SECONDS:.0f}s)"
    )


@app.command("resume")
def resume(
    flow: str = typer.Argument(..., help="the flow (its subscription name)"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Start a paused flow again: its postponed messages run at their next recheck."""
    from shared import runtime
    from shared.ops import flow_control
    from shared.ops.console import audit_operator

    name = _flow(flow)
    with runtime.override(settings=app_settings(settings_file)):
        store = runtime.state_store()
        ended = flow_control.resume(store.cursors, name)
        if ended is not None:
            since = ended.since.isoformat()
            audit_operator(store, name, "FlowResumed", f"{actor()}: resumed (paused since {since})")
    if ended is None:
        output().print(f"{name}: was not paused")
        return
    output().print(
        f"{name}: resumed; its postponed messages run within {ended.recheck_seconds}s "
        f"(+{flow_control.CACHE_SECONDS:.0f}s)"
    )
