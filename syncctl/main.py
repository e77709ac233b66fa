"""syncctl: the operator's command line (sandbox, settings, dead letters, webhooks, mapping)."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from shared.telemetry import quiet_http_client_loggers
from syncctl import (
    backfill,
    bus,
    customer_value,
    customers_show,
    dataverse,
    dlq,
    flow,
    history,
    mapping,
    orders,
    reconcile,
    review,
    suggest,
    sync,
    triage,
    webhooks,
)
from syncctl.errors import SafeGroup
from syncctl.settings_file import load_settings_file

# SafeGroup: whatever a command raises ends as one line naming the problem, exit code 2.
app = typer.Typer(
    help="Operate the Brightpearl ⇄ Dynamics 365 integration.", no_args_is_help=True, cls=SafeGroup
)
sandbox_app = typer.Typer(help="Run the local sandbox.", no_args_is_help=True)
settings_app = typer.Typer(help="Check app settings.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(settings_app, name="settings")
console = Console(soft_wrap=True)  # messages stay on one line (copy-paste, logs, tests)
quiet_http_client_loggers()  # request URLs carry query strings (e-mails, names): never log them


@sandbox_app.command("up")
def sandbox_up(
    port: int = typer.Option(7071, help="port of the local Functions host"),
    seed: bool = typer.Option(True, "--seed/--no-seed", help="register webhooks, seed customers, backfill"),
    catalogue: bool = typer.Option(
        True, "--catalogue/--no-catalogue", help="seed a product catalogue and bring it into Dynamics"
    ),
    catalogue_products: int | None = typer.Option(
        None,
        "--catalogue-products",
        help="products in the seeded catalogue (at least 40; default 300, or SANDBOX_CATALOGUE_PRODUCTS)",
    ),
    keep_state: bool = typer.Option(
        False,
        "--keep-state",
        help="keep the earlier run's tables and bus in .sandbox/ (the simulators start afresh either way)",
    ),
) -> None:
    """Start Azurite, the simulators and the local Functions host; Ctrl-C stops everything."""
    from sandbox.up import run

    products = catalogue_products if catalogue else 0
    raise typer.Exit(
        run(host_port=port, echo=console.print, prepare=seed, catalogue=products, keep_state=keep_state)
    )


@sandbox_app.command("demo")
def sandbox_demo(
    port: int = typer.Option(7071, help="port of the running local Functions host"),
    file: Path | None = typer.Option(None, "--settings", help="local.settings.json-style file"),
) -> None:
    """Run a scripted customer scenario against a running `syncctl sandbox up` and print what happened."""
    from sandbox.demo import run_demo

    values = {**load_settings_file(file), **{k: v for k, v in os.environ.items() if k.isupper()}}
    raise typer.Exit(run_demo(values, host_port=port, echo=console.print))


@settings_app.command("check")
def settings_check(
    file: Path | None = typer.Option(None, "--file", help="local.settings.json-style file to check"),
    env_only: bool = typer.Option(False, "--env", help="check the process environment only"),
) -> None:
    """Validate every app setting; print each problem by setting name."""
    from shared.settings import SettingsError, load_settings

    environ = dict(os.environ) if env_only else {**load_settings_file(file), **os.environ}
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        console.print("[red]settings are not valid:[/red]")
        for problem in exc.problems:
            console.print(f"  • {problem}")
        raise typer.Exit(1) from None
    console.print(f"[green]settings OK[/green] (bus: {settings.bus.backend})")


@settings_app.command("docs")
def settings_docs() -> None:
    """Print the configuration reference (docs/configuration.md) generated from the code."""
    from shared.settings_doc import render

    typer.echo(render(), nl=False)


# Sub-apps that live with their subject; each module exports a typer app named `app`.
for command, module in (
    ("dlq", dlq),
    ("webhooks", webhooks),
    ("mapping", mapping),
    ("dataverse", dataverse),
    ("backfill", backfill),
    ("bus", bus),
    ("orders", orders),
    ("customers", customers_show),
    ("review", review),
    ("flow", flow),
    ("reconcile", reconcile),
    ("customer-value", customer_value),
):
    app.add_typer(module.app, name=command)

app.command("history")(history.history)
app.command("sync")(sync.sync)
dlq.app.command("triage")(triage.triage)  # syncctl dlq triage (its own module: dlq.py stays the bus side)
suggest.register(mapping.app)  # syncctl mapping suggest / drift (suggest.py reads mapping.py's helpers)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
