"""`syncctl customer-value ...`: the customer value figures as the integration keeps them.

- `show <Brightpearl contact id>`: the customer's figures and each transaction's contribution
  with the exchange rate used, its date and source (what the flush writes to Dynamics);
- `last`: the last nightly recompute's report (drift found and fixed: customer ids, contact ids
  and column or transaction names, no personal data), as stored by the timer;
- `recompute [--customer ID ...]`: recompute now (the named customers, else tonight's share),
  report drift and fix it, as the nightly timer does.
Exit 1 when a report holds drift.
"""

from __future__ import annotations

from pathlib import Path

import typer

from syncctl.common import app_settings, echo_json, output
from syncctl.dlq import SettingsOpt, _fail

app = typer.Typer(
    name="customer-value",
    help="Customer value figures: per-transaction contributions and rates, the nightly recompute.",
    no_args_is_help=True,
)


@app.command("show")
def show(
    customer: str = typer.Argument(..., help="Brightpearl contact id"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """The customer's figures and every contribution with the rate used."""
    from shared import runtime
    from shared.flows.customer_value_store import CustomerValue, store_for

    if not customer.isdigit():
        raise _fail(f"customer must be a Brightpearl contact id (digits), not {customer!r}")
    with runtime.override(settings=app_settings(settings_file)):
        contributions = store_for(runtime.state_store()).contributions(customer)
    value = CustomerValue.of(contributions.values())
    if as_json:
        echo_json(
            {
                "customer": customer,
                "figures": value.model_dump(mode="json"),
                "contributions": [c.model_dump(mode="json") for c in contributions.values()],
            }
        )
        return
    console = output()
    console.print(
        f"customer {customer}: lifetime value {value.lifetime_value}, orders {value.order_count}, "
        f"average {value.average_order_value}, last purchase {value.last_purchase}, "
        f"open returns {value.open_returns}"
    )
    for c in sorted(contributions.values(), key=lambda c: (c.rate_on, c.txn)):
        counted = "counted" if c.counted else "not counted"
        rate = f" at {c.rate} ({c.rate_source}, {c.rate_on})" if c.counted and c.rate != 1 else ""
        console.print(
            f"  {c.txn}: {c.amount} {c.currency} -> {c.net}{rate}, {counted}"
            + (", open return" if c.open_return else "")
        )


@app.command("last")
def last(
    as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """The last nightly recompute's report."""
    from shared import runtime
    from shared.reconcile.report import last_report

    with runtime.override(settings=app_settings(settings_file)):
        report = last_report(runtime.state_store().cursors, "customer-value")
    if report is None:
        raise _fail("customer values were never recomputed: run syncctl customer-value recompute")
    _print(report, as_json)


@app.command("recompute")
def recompute(
    customers: list[str] = typer.Option(
        [], "--customer", help="Brightpearl contact id (repeat); default: tonight's share"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the JSON report"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Recompute from Brightpearl now; report and fix drift."""
    from shared import runtime
    from shared.flows.customer_value_recompute import CustomerValueRecompute
    from shared.reconcile.report import save_report

    with runtime.override(settings=app_settings(settings_file)):
        job = CustomerValueRecompute.from_runtime()
        if customers:
            report = job.run(customers)
            save_report(runtime.state_store().cursors, report)
        else:
            report = job.poll()
    _print(report, as_json)


def _print(report: object, as_json: bool) -> None:
    from shared.reconcile.report import ReconcileReport

    assert isinstance(report, ReconcileReport)
    if as_json:
        typer.echo(report.to_json())
    else:
        console = output()
        scanned = ", ".join(f"{k} {v}" for k, v in report.scanned.items())
        console.print(f"customer value recompute (run {report.run_id}, {report.finished_at}; {scanned})")
        console.print(f"  drift {report.counts['drift']} (fixed)")
        for f in report.items:
            where = "the integration's store" if f.changed_in == ["brightpearl"] else "Dynamics"
            fields = ", ".join(f.fields)
            console.print(
                f"  - customer {f.brightpearl_id} (contact {f.dataverse_id}) in {where}: {fields}",
                overflow="ignore",
                crop=False,
            )
    if report.counts["drift"]:
        raise typer.Exit(1)
