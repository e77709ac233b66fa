"""`syncctl review list|accept|dismiss|accept-sku`: the records a flow would not decide alone.

`list` shows every record whose newest audit row in its flow is `needs-review` (a likely
duplicate, an e-mail matching several records, a link to a record that no longer exists) with
the description saying what to check. `accept KEY` records that the operator fixed the cause
(ReviewAccepted in the audit) and syncs the record again now; `dismiss KEY` records that nothing
is to be done (ReviewDismissed). KEY is `<flow>/<record id>` as listed, or the record id alone
when one flow flags it (shared/ops/review.py). `accept-sku DYNAMICS_PRODUCT BRIGHTPEARL_PRODUCT`
answers an order flagged SkuNeedsReview (SKU candidates, shared/mapping/sku_match.py): it links
the two products (`product` link) and syncs the orders waiting for that product again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from syncctl.base import SettingsOpt, _fail, actor
from syncctl.common import app_settings, echo_json, output

app = typer.Typer(name="review", help="The needs-review list, with accept and dismiss.", no_args_is_help=True)

DaysOpt = typer.Option(30, "--days", min=1, max=365, help="look back this many days")
FlowOpt = typer.Option(None, "--flow", help="only this flow")


def _flows(flow: str | None) -> list[str]:
    from shared.sync import registry

    names = [f.name for f in registry.flows()]
    if flow is not None and flow not in names:
        raise _fail(f"no flow {flow!r}; flows: {', '.join(names)}")
    return [flow] if flow else names


@app.command("list")
def list_items(
    flow: str | None = FlowOpt,
    days: int = DaysOpt,
    as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    settings_file: Path | None = SettingsOpt,
) -> None:
    """Records waiting for a decision, newest first, with what to check."""
    from shared import runtime
    from shared.ops.review import needs_review

    names = _flows(flow)
    with runtime.override(settings=app_settings(settings_file)):
        items = needs_review(runtime.state_store().audit, names, days=days)
    if as_json:
        echo_json([i.as_dict() for i in items])
        return
    table = Table(title=f"needs review ({len(items)})")
    for column in ("key", "flagged", "reason", "what to check"):
        table.add_column(column, overflow="fold")
    for i in items:
        when = i.at.strftime("%Y-%m-%d %H:%M:%SZ") if i.at else ""
        table.add_row(i.key, when, i.reason or "", i.description)
    output().print(table)


def _decide(
    key: str, decision: str, flow: str | None, days: int, note: str, settings_file: Path | None
) -> None:
    from shared import runtime
    from shared.ops.review import decide, find, needs_review

    names = _flows(flow)
    with runtime.override(settings=app_settings(settings_file)):
        audit = runtime.state_store().audit
        try:
            item = find(needs_review(audit, names, days=days), key)
        except ValueError as exc:
            raise _fail(str(exc)) from None
        if item is None:
            raise _fail(f"nothing waits for review under {key!r} (syncctl review list shows the keys)")

        entry = decide(
            audit,
            item,
            decision,  # type: ignore[arg-type]
            actor=actor(),
            note=note,
            resync=_resync,
            now=runtime.clock(),
        )
    output().print(f"{item.key}: {entry.reason_code} ({entry.description})")


def _resync(found: Any) -> str:
    """Publish a change notice for a review item's record (the flow runs it again now)."""
    from shared.ops.review import resync

    return resync(found, actor=actor())


@app.command("accept-sku")
def accept_sku(
    dynamics_product: str = typer.Argument(..., help="the Dynamics productid the review names"),
    brightpearl_product: int = typer.Argument(..., min=1, help="the Brightpearl product id it is"),
    note: str = typer.Option("", "--note", help="why (kept in the audit; no personal data)"),
    days: int = DaysOpt,
    settings_file: Path | None = SettingsOpt,
) -> None:
    """A SKU candidate is the product: link them (product link) and sync its orders again."""
    from shared import runtime
    from shared.brightpearl.errors import BrightpearlError
    from shared.dataverse.odata import guid
    from shared.ops import review

    try:
        product = guid(dynamics_product)
    except ValueError:
        raise _fail(f"{dynamics_product!r} is not a Dynamics productid (a GUID)") from None
    with runtime.override(settings=app_settings(settings_file)):
        try:
            found = runtime.brightpearl().get_products([brightpearl_product])
        except BrightpearlError as exc:
            raise _fail(f"reading Brightpearl product {brightpearl_product} failed: {exc}") from None
        if not found:
            raise _fail(f"Brightpearl has no product {brightpearl_product}")
        store = runtime.state_store()
        try:
            orders = review.accept_sku(
                store.links,
                store.audit,
                product,
                brightpearl_product,
                actor=actor(),
                note=note,
                resync=_resync,
                now=runtime.clock(),
                days=days,
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
    output().print(
        f"Dynamics product {product} is Brightpearl product {brightpearl_product} (SKU {found[0].sku!r}): "
        f"linked; {len(orders)} order(s) waiting for it synced again"
        + "".join(f"\n  {i.key}" for i in orders)
    )


def _command(decision: str, doc: str) -> object:
    def command(
        key: str = typer.Argument(..., help="<flow>/<record id> as `review list` shows it"),
        note: str = typer.Option("", "--note", help="why (kept in the audit; no personal data)"),
        flow: str | None = FlowOpt,
        days: int = DaysOpt,
        settings_file: Path | None = SettingsOpt,
    ) -> None:
        _decide(key, decision, flow, days, note, settings_file)

    command.__doc__ = doc
    return command


app.command("accept")(
    _command("accept", "The cause is fixed: audit ReviewAccepted and sync the record again now.")
)
app.command("dismiss")(
    _command(
        "dismiss", "Nothing is to be done: audit ReviewDismissed; it leaves the list until flagged again."
    )
)
