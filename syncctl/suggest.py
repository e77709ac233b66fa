"""`syncctl mapping suggest` and `syncctl mapping drift` (issue 16 item 5; logic in shared/suggest).

- `suggest --entity customer|product|order [--sample N] [--write FILE]` reads both schemas
  and a sample of records, prints the proposed `custom_fields` lines with their confidence and
  evidence, and whether the mapping with them passes `syncctl mapping check`. `--write FILE`
  writes that mapping (the current file with the lines added, its comments kept) only when
  the check passes; otherwise it prints the problems and exits 1.
- `drift [--entity customer] [--run] [--json]` shows the last scheduled schema check (every
  custom field on either side the mapping ignores, each with a suggested line, and which are
  new); `--run` checks now and stores the report as the timer does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from syncctl.base import SettingsOpt, _fail
from syncctl.common import app_settings, output

if TYPE_CHECKING:
    from shared.suggest.service import DriftReport, SuggestResult

ENTITY_FILES = {"customer": "customers", "product": "products", "order": "orders"}


def _mapping_file(entity: str, mapping: Path | None) -> Path:
    from syncctl.mapping import _default_path, _spec

    if entity not in ENTITY_FILES:
        raise typer.BadParameter(f"{entity!r}: one of {', '.join(ENTITY_FILES)}", param_hint="--entity")
    return mapping or _default_path(_spec(ENTITY_FILES[entity]))


def suggest(
    entity: str = typer.Option(..., "--entity", help="customer, product or order"),
    sample: int = typer.Option(
        200, "--sample", min=0, max=5000, help="records read per system (0: schema only)"
    ),
    write: Path | None = typer.Option(None, "--write", help="write the mapping with the proposal here"),
    mapping: Path | None = typer.Option(None, "--mapping", help="the mapping file (default: the entity's)"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Propose mapping lines for the custom fields the mapping leaves out, with the evidence."""
    from shared import runtime
    from shared.suggest.service import suggest_mapping

    file = _mapping_file(entity, mapping)
    with runtime.override(settings=app_settings(settings_file)):
        result = suggest_mapping(entity, runtime.brightpearl(), runtime.dataverse(), file, sample=sample)
    _print_result(result)
    if write is None:
        return
    if not result.writable or result.text is None:
        raise typer.Exit(1)
    if not result.proposal.suggestions:
        raise _fail("nothing to write: no suggestion")
    write.write_text(result.text, encoding="utf-8")
    output().print(f"written to {escape(str(write))} (passes syncctl mapping check)")


def _print_result(result: SuggestResult) -> None:
    console = output()
    proposal = result.proposal
    read = ", ".join(f"{k} {v}" for k, v in result.sampled.items())
    console.print(
        f"{proposal.entity}: {len(proposal.suggestions)} suggestion(s) from {proposal.considered} "
        f"type-compatible pair(s); records read: {read or 'none'}; mapping {escape(str(result.mapping_path))}"
    )
    if proposal.suggestions:
        console.print("custom_fields:")
        console.print(escape(proposal.block()), end="")
    for label, fields in (
        ("Brightpearl fields without a match", proposal.unmatched_brightpearl),
        ("Dataverse columns without a match", proposal.unmatched_dataverse),
    ):
        if fields:
            console.print(
                f"{label}: " + ", ".join(escape(f"{f.code} ({f.label}, {f.raw_type})") for f in fields)
            )
    if result.problems and result.text is None:
        for problem in result.problems:
            console.print(f"[yellow]not written:[/yellow] {escape(problem)}")
    elif result.problems:
        console.print(
            f"[red]the mapping with these lines does not pass mapping check ({len(result.problems)}):[/red]"
        )
        for problem in result.problems:
            console.print(f"  • {escape(problem)}")
    elif result.text is not None:
        console.print("[green]the mapping with these lines passes syncctl mapping check[/green]")


def drift(
    entity: str = typer.Option(
        "customer", "--entity", help="customer (the entity whose mapping maps custom fields)"
    ),
    run: bool = typer.Option(
        False, "--run", help="check now (and store the report) instead of showing the last"
    ),
    as_json: bool = typer.Option(False, "--json", help="the report as JSON"),
    mapping: Path | None = typer.Option(None, "--mapping", help="the mapping file (default: the entity's)"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Show the last schema check: custom fields the mapping ignores, with suggested lines."""
    from shared import runtime
    from shared.suggest.service import check_drift, drift_entities, last_drift

    if entity not in drift_entities():
        raise _fail(f"--entity {entity}: the schema check covers {', '.join(drift_entities())}")
    with runtime.override(settings=app_settings(settings_file)):
        cursors = runtime.state_store().cursors
        if run:
            file = _mapping_file(entity, mapping)
            report = check_drift(entity, runtime.brightpearl(), runtime.dataverse(), file, cursors)
        else:
            found = last_drift(cursors, entity)
            if found is None:
                raise _fail(f"no schema check of {entity} yet: run syncctl mapping drift --run")
            report = found
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    _print_drift(report)


def _print_drift(report: DriftReport) -> None:
    console = output()
    console.print(f"{report.summary()} (checked {report.checked_at.isoformat()}, mapping {report.mapping})")
    for item in report.ignored:
        new = "[yellow]new[/yellow] " if item.key in report.new else ""
        console.print(f"- {new}{item.system} {escape(item.field)} ({escape(item.label)}, {item.type})")
        if item.note:
            console.print(f"    {escape(item.note)}")
        for line in item.suggested.splitlines():
            console.print(f"    {escape(line)}")


def register(app: typer.Typer) -> None:
    """Add the commands to `syncctl mapping`."""
    app.command("suggest")(suggest)
    app.command("drift")(drift)
