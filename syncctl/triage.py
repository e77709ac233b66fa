"""`syncctl dlq triage`: dead letters grouped by flow, reason, field and likely cause, with the fix
and whether resubmitting a whole group is safe; `--resubmit <group>` resubmits one group.

The grouping is shared/ops/triage.py (the console shows the same); listing and resubmitting go
through `syncctl dlq`'s own code (the copies' fates, the operator rows in the audit).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from shared.bus.deadletters import DeadLetter, Selection
from shared.ops.triage import TriageGroup, find, mapping_file_of
from shared.ops.triage import triage as group_dead_letters
from syncctl import dlq


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at else ""


def _table(groups: list[TriageGroup]) -> Table:
    table = Table(title="dead letters by cause", show_lines=True)
    for column in ("#", "group", "count", "oldest", "likely cause", "bulk resubmit", "fix"):
        table.add_column(column, overflow="fold")
    for number, g in enumerate(groups, 1):
        safe = ("[green]safe[/green]: " if g.safety.safe else "[yellow]not yet[/yellow]: ") + g.safety.why
        table.add_row(str(number), g.key, str(g.count), _when(g.oldest), g.cause, safe, g.fix)
    return table


def groups_now(
    settings: Path | None,
    topology: Path | None,
    topic: str | None,
    subscription: str | None,
    max_messages: int,
) -> list[TriageGroup]:
    """The dead letters of the targets, grouped (exit 2 naming the problem when the bus is down)."""
    ctx = dlq._open(settings, topology, topic, subscription)
    everything = Selection(all=True)
    items = dlq._run(ctx, "list", lambda t, s: ctx.ops.list(t, s, everything, max_messages=max_messages))
    env, _ = dlq._environment(settings)
    return group_dead_letters(
        [i for i in items if isinstance(i, DeadLetter)],
        mapping_file=lambda name: mapping_file_of(name, env, dlq.ROOT),
    )


def triage(
    topic: str | None = dlq.TopicOpt,
    subscription: str | None = dlq.SubscriptionOpt,
    as_json: bool = typer.Option(False, "--json", help="print the groups as JSON"),
    resubmit_group: str | None = typer.Option(
        None, "--resubmit", help="resubmit every dead letter of this group (its name or number)"
    ),
    force: bool = typer.Option(False, "--force", help="resubmit a group even when it is not safe"),
    dry_run: bool = dlq.DryRunOpt,
    wait: float = typer.Option(
        10.0, "--wait", min=0, max=600, help="seconds to wait for the copies' outcomes (0: do not wait)"
    ),
    settings: Path | None = dlq.SettingsOpt,
    topology: Path | None = dlq.TopologyOpt,
    max_messages: int = dlq.MaxOpt,
) -> None:
    """Group dead letters by flow, reason, field and likely cause: count, oldest, the fix from
    docs/operations.md, and whether a bulk resubmit is safe (a transient reason, or a mapping
    changed since). --resubmit GROUP resubmits that whole group (a group not safe needs --force)."""
    groups = groups_now(settings, topology, topic, subscription, max_messages)
    if resubmit_group is None:
        if as_json:
            typer.echo(json.dumps({"groups": [g.as_dict() for g in groups]}, indent=2))
            return
        console = dlq._console()
        if not groups:
            console.print("no dead letters")
            return
        console.print(_table(groups))
        total = sum(g.count for g in groups)
        console.print(f"{total} dead letter(s) in {len(groups)} group(s); resubmit one: --resubmit <group>")
        return
    try:
        group = find(groups, resubmit_group)
    except KeyError as exc:
        raise dlq._fail(str(exc.args[0])) from None
    if not group.safety.safe and not force:
        raise dlq._fail(
            f"group {group.key} is not safe to resubmit in bulk: {group.safety.why} "
            "(fix it, or pass --force to resubmit anyway)"
        )
    dlq._console().print(f"resubmitting group {group.key}: {group.count} dead letter(s)")
    dlq.resubmit(
        topic=group.topic,
        subscription=group.subscription,
        all_messages=False,
        reason=None,
        message_id=list(group.message_ids),
        dry_run=dry_run,
        wait=wait,
        settings=settings,
        topology=topology,
        max_messages=max_messages,
    )
