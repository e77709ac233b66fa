"""`syncctl webhooks register`: point Brightpearl and Dataverse webhooks at our ingress."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from syncctl.settings_file import apply_settings_file

app = typer.Typer(help="Register the webhooks the flows need.", no_args_is_help=True)
console = Console()


def dataverse_steps() -> list:  # type: ignore[type-arg]
    """The Dataverse steps the entity specs need (shared/dataverse/webhook_registration.py)."""
    from shared.dataverse.webhook_registration import entity_steps

    return entity_steps()


@app.command("register")
def register(
    ingress_url: str = typer.Option(
        ..., "--ingress-url", help="base URL of the ingress, e.g. https://<app>.azurewebsites.net/api"
    ),
    function_key: str = typer.Option(
        None,
        "--function-key",
        envvar="SYNC_FUNCTION_KEY",
        help="function key of the webhook functions (or env SYNC_FUNCTION_KEY)",
    ),
    brightpearl: bool = typer.Option(False, "--brightpearl", help="register Brightpearl webhooks"),
    dataverse: bool = typer.Option(
        False, "--dataverse", help="register the Dataverse service endpoint and steps"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would change; change nothing"),
    settings: str = typer.Option(None, "--settings", help="local.settings.json-style file"),
) -> None:
    """Create missing webhooks, update changed ones, remove stale ones (idempotent)."""
    from pathlib import Path

    apply_settings_file(Path(settings) if settings else None)
    if not (brightpearl or dataverse):
        raise typer.BadParameter("choose --brightpearl and/or --dataverse")
    if not function_key:
        raise typer.BadParameter("--function-key is required (az functionapp keys list ...)")
    from shared.settings import SettingsError, load_settings

    try:
        app_settings = load_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    base = ingress_url.rstrip("/")
    table = Table("system", "action", "what", "where")
    if brightpearl:
        from shared.brightpearl.client import BrightpearlClient
        from shared.brightpearl.webhook_registration import DEFAULT_EVENTS, sync_brightpearl_webhooks

        secret = app_settings.webhooks.brightpearl_secret
        if not secret:
            raise typer.BadParameter("BRIGHTPEARL_WEBHOOK_SECRET is not set")
        with BrightpearlClient.from_settings(app_settings.brightpearl) as client:
            for action in sync_brightpearl_webhooks(
                client,
                ingress_url=f"{base}/webhooks/brightpearl",
                function_key=function_key,
                secret=secret,
                events=list(DEFAULT_EVENTS),
                dry_run=dry_run,
            ):
                table.add_row("brightpearl", action.kind, action.event, action.uri)
    if dataverse:
        from shared.dataverse.client import DataverseClient
        from shared.dataverse.webhook_registration import sync_dataverse_webhooks

        secret = app_settings.webhooks.dataverse_secret
        if not secret:
            raise typer.BadParameter("DATAVERSE_WEBHOOK_SECRET is not set")
        client = DataverseClient.from_settings(app_settings.dataverse)
        try:
            for action in sync_dataverse_webhooks(
                client,
                ingress_url=f"{base}/webhooks/dataverse",
                function_key=function_key,
                secret=secret,
                steps=dataverse_steps(),
                dry_run=dry_run,
            ):
                table.add_row(
                    "dataverse",
                    action.kind,
                    f"{action.resource} {action.name}",
                    ", ".join(f"{k}={v}" for k, v in action.changes.items()),
                )
        finally:
            client.close()
    console.print(table)
    if dry_run:
        console.print("[yellow]dry run: nothing was changed[/yellow]")
