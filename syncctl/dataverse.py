"""`syncctl dataverse check|provision`: the Dataverse schema the mappings need, checked and created."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

from syncctl.settings_file import apply_settings_file

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient
    from shared.dataverse.schema import SchemaPlan

app = typer.Typer(help="Dataverse environment commands.", no_args_is_help=True)
console = Console()

SETTINGS_HELP = "local.settings.json-style file"
PRODUCTS_HELP = (
    "include (or leave out) the product table of mappings/products.yaml: bpi_brightpearlid, "
    "bpi_availablestock, keys bpi_brightpearlid_key and bpi_productnumber_key, change tracking "
    "(default: included once the products flow is wired)"
)


def _plan(products: bool | None) -> SchemaPlan:
    from shared.dataverse.schema import schema_plan

    return schema_plan(include_products=products)


def _print_plan(plan: SchemaPlan) -> None:
    """The integration's own columns, the alternate keys and change tracking, table by table."""
    from shared.dataverse.schema import products_wired

    console.print("Planned (mappings/*.yaml):")
    for table in plan.tables:
        columns = ", ".join(f"{c.name} ({c.attribute_type})" for c in table.columns if c.custom)
        keys = ", ".join(f"{k.name} ({','.join(k.columns)})" for k in table.keys)
        parts = [f"columns {columns}" if columns else "", f"keys {keys}" if keys else ""]
        parts.append("change tracking" if table.change_tracking else "")
        console.print(f"  {table.table}: {escape('; '.join(p for p in parts if p))}")
    if all(t.table != "product" for t in plan.tables) and not products_wired():
        console.print("  product: not planned (the products flow is not wired yet; --products includes it)")


@contextmanager
def _client(settings: str | None) -> Iterator[tuple[DataverseClient, str]]:
    apply_settings_file(Path(settings) if settings else None)
    from shared.dataverse.client import DataverseClient
    from shared.settings import SettingsError, load_settings

    try:
        app_settings = load_settings()
    except SettingsError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(1) from None
    client = DataverseClient.from_settings(app_settings.dataverse)
    try:
        yield client, app_settings.dataverse.url
    finally:
        client.close()


def _errors() -> tuple[type[Exception], ...]:
    from azure.core.exceptions import ClientAuthenticationError

    from shared.dataverse.errors import DataverseError
    from shared.mapping import MappingError

    return (DataverseError, MappingError, ClientAuthenticationError)


def _failed(what: str, exc: Exception, then: str = "") -> typer.Exit:
    """Print one line naming what failed and why (with the fix for an auth error); exit code 2."""
    from azure.core.exceptions import ClientAuthenticationError

    from shared.dataverse.errors import DataverseAuthError

    line = f"error: {what}: {exc}"
    if isinstance(exc, (DataverseAuthError, ClientAuthenticationError)):
        line += (
            ". Check the DATAVERSE_* settings (or your `az login`); reading and changing the schema needs "
            "the System Customizer or System Administrator role in the environment"
        )
    line += f". {then}" if then else ""
    Console(stderr=True, highlight=False, soft_wrap=True).print(escape(" ".join(line.split())))
    return typer.Exit(2)


@app.command("check")
def check(
    settings: str = typer.Option(None, "--settings", help=SETTINGS_HELP),
    products: bool | None = typer.Option(None, "--products/--no-products", help=PRODUCTS_HELP),
) -> None:
    """Print every column, choice option, alternate key or change-tracking setting the mappings
    need that the environment lacks (exit 1 if any)."""
    from shared.dataverse.environment_check import check_environment

    with _client(settings) as (client, url):
        try:
            plan = _plan(products)
            problems = check_environment(client, plan)
        except _errors() as exc:
            raise _failed("check failed", exc) from None
    _print_plan(plan)
    if not problems:
        console.print(f"[green]{url} has every column, key and setting the mappings need[/green]")
        return
    console.print(f"[red]{len(problems)} problem(s) in {url}:[/red]")
    for problem in problems:
        console.print(f"  • {escape(str(problem))}")
    if any(p.fixable for p in problems):
        console.print("`syncctl dataverse provision` fixes the ones it can (`--dry-run` shows them first).")
    raise typer.Exit(1)


@app.command("provision")
def provision(
    settings: str = typer.Option(None, "--settings", help=SETTINGS_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="only print what would change"),
    solution: str = typer.Option(
        None, "--solution", help="unique name of an unmanaged solution to add the new components to"
    ),
    key_timeout: float = typer.Option(300.0, "--key-timeout", help="seconds to wait for key indexes"),
    products: bool | None = typer.Option(None, "--products/--no-products", help=PRODUCTS_HELP),
) -> None:
    """Create or update the columns, choice options, alternate keys and change tracking the
    mappings need (idempotent: a second run changes nothing). Needs the System Customizer or
    System Administrator role."""
    from shared.dataverse.provision import Provisioner

    with _client(settings) as (client, url):
        try:
            plan = _plan(products)
            report = Provisioner(
                client,
                solution=solution,
                key_timeout=key_timeout,
                echo=lambda line: console.print(f"  {escape(line)}"),
            ).run(plan, dry_run=dry_run)
        except _errors() as exc:
            then = "Changes made before it stay; run the command again after fixing the cause"
            raise _failed("provisioning stopped", exc, then) from None
    _print_plan(plan)
    if dry_run:
        console.print(f"{url}: {len(report.changes)} change(s) to make (dry run, nothing changed)")
        for change in report.changes:
            console.print(f"  • {escape(change)}")
    else:
        console.print(f"{url}: {len(report.changes)} change(s)")
    for key in report.pending_keys:
        console.print(
            f"[yellow]alternate key {key} is still being built; `syncctl dataverse check` "
            "reports when it is Active[/yellow]"
        )
    if report.remaining:
        console.print(f"[red]{len(report.remaining)} problem(s) provisioning cannot fix:[/red]")
        for problem in report.remaining:
            console.print(f"  • {escape(str(problem))}")
        raise typer.Exit(1)
