"""`syncctl mapping check` and `syncctl mapping preview --from brightpearl|dataverse --id ID`."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(name="mapping", help="Validate and preview the customer mapping.", no_args_is_help=True)


@app.command("check")
def check(
    path: Path | None = typer.Argument(None, help="mapping file (default: CUSTOMER_MAPPING_PATH)"),
) -> None:
    """Validate the mapping YAML; print each problem with its YAML path."""
    from shared.mapping.preview import check_mapping

    console = Console(highlight=False)
    problems = check_mapping(path or _default_path())
    if problems:
        console.print(f"[red]{len(problems)} problem(s) in the mapping:[/red]")
        for problem in problems:
            console.print(f"  • {problem}")
        raise typer.Exit(1)
    console.print("[green]mapping OK[/green]")


def _default_path() -> Path:
    root = Path(__file__).resolve().parents[1]
    configured = Path(os.environ.get("CUSTOMER_MAPPING_PATH", "mappings/customers.yaml"))
    return configured if configured.is_absolute() else root / configured


@app.command("preview")
def preview(
    source: str = typer.Option(..., "--from", help="brightpearl or dataverse"),
    record_id: str = typer.Option(..., "--id", help="Brightpearl contactId or Dataverse contactid"),
    settings_file: Path | None = typer.Option(None, "--settings", help="local.settings.json-style file"),
) -> None:
    """Fetch one record with the client and print source, canonical and target side by side."""
    from shared import runtime
    from shared.dataverse.errors import DataverseNotFound
    from shared.mapping import contact_query, load_customer_mapping
    from shared.mapping.preview import render_preview
    from shared.settings import SettingsError, load_settings
    from syncctl.settings_file import load_settings_file

    console = Console(highlight=False)
    if source not in ("brightpearl", "dataverse"):
        raise typer.BadParameter("--from must be brightpearl or dataverse")
    try:
        settings = load_settings({**load_settings_file(settings_file), **os.environ})
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    mapping = load_customer_mapping(_default_path())
    with runtime.override(settings=settings):
        if source == "brightpearl":
            if not record_id.isdigit():
                raise typer.BadParameter("--id: a Brightpearl contactId is a positive integer")
            client = runtime.brightpearl()
            raw = client.get_by_ids(
                "/contact-service/contact/{ids}",
                [int(record_id)],
                params={"includeOptional": "postalAddresses"},
            )
            if not raw:
                console.print(f"[red]Brightpearl contact {record_id} not found[/red]")
                raise typer.Exit(1)
            record = raw[0]
        else:
            query = contact_query(mapping)
            try:
                row = runtime.dataverse().get(
                    "contacts", record_id, select=query["$select"].split(","), expand=query.get("$expand")
                )
            except DataverseNotFound:
                console.print(f"[red]Dataverse contact {record_id} not found[/red]")
                raise typer.Exit(1) from None
            record = dict(row.values)
    console.print(render_preview(source, record, mapping))  # type: ignore[arg-type]
