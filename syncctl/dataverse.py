"""`syncctl dataverse check`: does the environment have our columns, keys and change tracking?"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from syncctl.main import apply_settings_file

app = typer.Typer(help="Dataverse environment commands.", no_args_is_help=True)
console = Console()


@app.command("check")
def check(settings: str = typer.Option(None, "--settings", help="local.settings.json-style file")) -> None:
    """Print every missing custom column, alternate key or change-tracking setting (exit 1 if any)."""
    apply_settings_file(Path(settings) if settings else None)
    from shared.dataverse.client import DataverseClient
    from shared.dataverse.environment_check import check_environment
    from shared.settings import SettingsError, load_settings

    try:
        app_settings = load_settings()
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    client = DataverseClient.from_settings(app_settings.dataverse)
    try:
        problems = check_environment(client)
    finally:
        client.close()
    if not problems:
        url = app_settings.dataverse.url
        console.print(f"[green]{url} has every column, key and setting we need[/green]")
        return
    console.print(f"[red]{len(problems)} problem(s) in {app_settings.dataverse.url}:[/red]")
    for problem in problems:
        console.print(f"  • {problem}")
    raise typer.Exit(1)
