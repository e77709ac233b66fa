"""`syncctl backfill <entity> --from <system> [--since DATE] [--restart]`: publish every id of the
entity in the source as change notices (the flows do the work), with a progress bar; an
interrupted run resumes from the cursor it saved after each page (--restart starts over).

One command per entity whose spec declares backfill sources (shared/sync/registry.py):
`backfill customers --from brightpearl|dataverse`, `backfill products --from brightpearl`
(Brightpearl is the products' master: `--from dataverse` is refused, naming why),
`backfill orders --since DATE` (Dynamics' orders; `--from brightpearl`: Brightpearl's sales
orders, which the order history copies to Dynamics).
An entity read from one system only takes that system when `--from` is left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shared.sync import registry
from shared.sync.spec import EntitySpec

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


def run_backfill(
    spec: EntitySpec, source: str, since: str | None, restart: bool, settings_file: Path | None
) -> None:
    """Page `spec`'s records in `source` and publish notices through the bus, with a progress bar."""
    from shared import runtime
    from shared.settings import SettingsError, load_settings
    from shared.sync import backfill
    from syncctl.settings_file import load_settings_file

    console = Console(highlight=False, soft_wrap=True)
    try:
        spec.backfill_source(source)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from") from None
    since_at = _since(since)  # a bad date is refused before anything is read
    try:
        values = {**load_settings_file(settings_file), **os.environ}
        settings = load_settings(values)
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    with runtime.override(settings=settings):
        topic = runtime.topic(backfill.topic_setting(spec, source))  # type: ignore[arg-type]
        job = backfill.from_runtime(spec, source)  # type: ignore[arg-type]
        with Progress(
            TextColumn(f"[bold]backfill {spec.name} from {{task.fields[source]}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("backfill", total=None, source=source)

            def tick(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            try:
                report = job.run(since_at, restart=restart, progress=tick)
            except ValueError as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
    resumed = f" (resumed after {report.resumed_from})" if report.resumed_from else ""
    counts = f"{report.published_ids} {report.record} ids in {report.notices} notices"
    console.print(f"published {counts} to {topic}{resumed}")


DEFAULT_FROM = {"orders": "dataverse"}  # entity -> the system read when --from is left out


def _command(spec: EntitySpec) -> Callable[..., None]:
    systems = " or ".join(s.system for s in spec.backfill_sources)
    # one system to read, or a default (orders: Dataverse, as before order history read
    # Brightpearl's too): --from may be left out
    only = DEFAULT_FROM.get(spec.name) or (
        spec.backfill_sources[0].system if len(spec.backfill_sources) == 1 else ...
    )

    def command(
        source: str = typer.Option(only, "--from", help=systems),
        since: str | None = typer.Option(None, "--since", help="only records changed since (ISO date/time)"),
        restart: bool = typer.Option(False, "--restart", help="ignore an unfinished run's cursor"),
        settings_file: Path | None = typer.Option(None, "--settings", help="local.settings.json-style file"),
    ) -> None:
        run_backfill(spec, source, since, restart, settings_file)

    command.__doc__ = f"Page the source's {spec.name} and publish notices in chunks through the bus."
    return command


def _entities() -> list[EntitySpec]:
    """Every entity with a backfill source, wired or still being built (once each)."""
    specs = {s.name: s for s in (*registry.ENTITIES, *registry.BUILDING)}
    return [s for s in specs.values() if s.backfill_sources]


for _spec in _entities():
    app.command(_spec.name)(_command(_spec))
