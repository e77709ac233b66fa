"""`syncctl reconcile <entity> [--heal] [--since DATE] [--json] [--last]`: compare both systems.

One command per entity whose spec names a reconciler (shared/sync/registry.py; customers
today). It reads both systems in bulk, compares them with the links (shared/reconcile/engine.py),
prints the counts per kind and the findings (ids and field names only) or the JSON report, and
stores the report as the entity's last one. `--heal` publishes the change notices a webhook would
have sent (the flows do the writes) and removes orphaned links. `--last` shows the stored report
without reading either system. Exit code 0 when nothing is out of step, 1 when something is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer

from shared.sync import registry
from shared.sync.spec import EntitySpec
from syncctl.backfill import _since
from syncctl.common import app_settings, output
from syncctl.dlq import SettingsOpt, _fail

app = typer.Typer(
    name="reconcile", help="Compare both systems; report and heal what is out of step.", no_args_is_help=True
)


def run_reconcile(
    spec: EntitySpec, heal: bool, since: str | None, as_json: bool, last: bool, settings_file: Path | None
) -> None:
    from shared import runtime
    from shared.reconcile import engine
    from shared.reconcile.report import HEALING, ReconcileReport, last_report

    try:
        since_at = _since(since)
    except typer.BadParameter as exc:
        raise _fail(str(exc)) from None
    if last and (heal or since_at):
        raise _fail("--last shows the stored report: it takes neither --heal nor --since")
    with runtime.override(settings=app_settings(settings_file)):
        report: ReconcileReport | None
        if last:
            report = last_report(runtime.state_store().cursors, spec.name)
            if report is None:
                raise _fail(f"{spec.name} was never reconciled: run syncctl reconcile {spec.name}")
        else:
            report = engine.from_runtime(spec).run(since=since_at, heal=heal)
    if as_json:
        typer.echo(report.to_json())
    else:
        console = output()
        scope = f"since {report.since.isoformat()}" if report.since else "all records"
        scanned = ", ".join(f"{k} {v}" for k, v in report.scanned.items())
        console.print(f"reconcile {spec.name} ({scope}; run {report.run_id}; read {scanned})")
        for kind, count in report.counts.items():
            console.print(f"  {kind:<24} {count}")
        for f in report.items:
            ids = " ".join(
                part
                for part in (
                    f"brightpearl {f.brightpearl_id}" if f.brightpearl_id else "",
                    f"dataverse {f.dataverse_id}" if f.dataverse_id else "",
                )
                if part
            )
            extra = ""
            if f.kind == "drift":
                extra = f" changed in {', '.join(f.changed_in)}: {', '.join(f.fields)}"
            elif f.kind == "orphaned_link":
                extra = f" gone in {', '.join(f.gone_in)}"
            elif f.kind == "duplicate":
                extra = f" ({f.system} duplicate of {f.duplicate_of})"
            console.print(f"  - {f.kind}: {ids}{extra}", overflow="ignore", crop=False)
        if report.items_left_out:
            console.print(f"  ... {report.items_left_out} more findings not listed")
        if report.healing is not None:
            h = report.healing
            console.print(
                f"healed: published {h.notices['brightpearl']} Brightpearl and {h.notices['dataverse']} "
                f"Dataverse record ids as change notices; removed {h.links_removed} orphaned links"
            )
        elif report.total and not last:
            console.print("run with --heal to: " + "; ".join(f"{k}: {v}" for k, v in HEALING.items()))
    if report.total:
        raise typer.Exit(1)


def _command(spec: EntitySpec) -> Callable[..., None]:
    def command(
        heal: bool = typer.Option(False, "--heal", help="publish change notices for what is out of step"),
        since: str | None = typer.Option(None, "--since", help="only records changed since (ISO date/time)"),
        as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
        last: bool = typer.Option(False, "--last", help="show the last stored report; read nothing"),
        settings_file: Path | None = SettingsOpt,
    ) -> None:
        run_reconcile(spec, heal, since, as_json, last, settings_file)

    command.__doc__ = f"Compare {spec.name} in both systems with the links; report (and --heal) differences."
    return command


for _spec in (*registry.ENTITIES, *registry.BUILDING):
    if _spec.reconciler:
        app.command(_spec.name)(_command(_spec))
