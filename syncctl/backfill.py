"""`syncctl backfill customers --from brightpearl|dataverse [--since DATE]`: publish every
customer id of the source as change notices (the flows do the work), with a progress bar;
an interrupted run resumes from the cursor it saved after each page (--restart starts over)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

app = typer.Typer(name="backfill", help="Publish change notices for existing records.", no_args_is_help=True)


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = datetime.combine(date.fromisoformat(value), datetime.min.time())
        except ValueError:
            raise typer.BadParameter(f"--since {value!r} is not an ISO date or date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command("customers")
def customers(
    source: str = typer.Option(..., "--from", help="brightpearl or dataverse"),
    since: str | None = typer.Option(None, "--since", help="only records changed since (ISO date/time)"),
    restart: bool = typer.Option(False, "--restart", help="ignore an unfinished run's cursor"),
    settings_file: Path | None = typer.Option(None, "--settings", help="local.settings.json-style file"),
) -> None:
    """Page the source's customers and publish notices in chunks through the bus."""
    from shared import runtime
    from shared.flows.customers_backfill import CustomerBackfill
    from shared.settings import SettingsError, load_settings
    from shared.sync.spec import TOPIC_SETTINGS
    from syncctl.settings_file import load_settings_file

    if source not in ("brightpearl", "dataverse"):
        raise typer.BadParameter("--from must be brightpearl or dataverse")
    console = Console(highlight=False)
    try:
        values = {**load_settings_file(settings_file), **os.environ}
        settings = load_settings(values)
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    with runtime.override(settings=settings):
        topic = runtime.topic(TOPIC_SETTINGS[source])  # type: ignore[index]
        job = CustomerBackfill.from_runtime(source)  # type: ignore[arg-type]
        with Progress(
            TextColumn("[bold]backfill customers from {task.fields[source]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("backfill", total=None, source=source)

            def tick(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            try:
                report = job.run(_since(since), restart=restart, progress=tick)
            except ValueError as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
    resumed = f" (resumed after {report.resumed_from})" if report.resumed_from else ""
    console.print(
        f"published {report.published_ids} customer ids in {report.notices} notices to {topic}{resumed}"
    )
