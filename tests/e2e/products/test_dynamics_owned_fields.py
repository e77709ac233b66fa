"""Dynamics-owned product fields through the whole sandbox (issue 12 item 5): with
`ownership.groups.description: dataverse` a Dynamics user's description edit reaches the
Brightpearl product (product PUT with If-Match, version moved) through the Dataverse webhook
step `syncctl webhooks register` adds; with the default mapping no product step is registered
and the same edit stays in Dynamics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.dataverse.webhook_registration import entity_steps, sync_dataverse_webhooks
from shared.store import AuditResult
from tests.e2e.products.conftest import NEVER, ProductSandbox, product_mapping

BACK = "products-to-brightpearl"
EDIT = "Hand-thrown stoneware, dishwasher safe"


@pytest.fixture(params=["on"])
def sandbox_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """The products conftest's mapping, with Dynamics owning descriptions when "on"."""
    path = product_mapping(tmp_path)
    if request.param == "on":
        text = path.read_text()
        assert "  groups: {}\n\nfamilies:" in text, "mappings/products.yaml ownership changed"
        path.write_text(
            text.replace("  groups: {}\n\nfamilies:", "  groups: {description: dataverse}\n\nfamilies:")
        )
    return {"PRODUCT_MAPPING_PATH": str(path), "BRIGHTPEARL_PRODUCT_POLL_SCHEDULE": NEVER}


def register_dataverse_webhooks(box: ProductSandbox) -> list[str]:
    """`syncctl webhooks register --dataverse` against the host's ingress; the steps' names."""
    steps = entity_steps(box.values)
    sync_dataverse_webhooks(
        box.dvc,
        ingress_url=f"{box.host.api_url}/webhooks/dataverse",
        function_key=box.values["LOCAL_FUNCTION_KEY"],
        secret=box.values["DATAVERSE_WEBHOOK_SECRET"],
        steps=steps,
        dry_run=False,
    )
    return [s.name for s in steps]


def settle(box: ProductSandbox, rounds: int = 4) -> None:
    """Deliver both systems' webhooks and work off what they bring until nothing is left."""
    for _ in range(rounds):
        box.dv.call("POST", "webhooks/drain", {"timeout": 20})
        box.deliver()
        box.host.wait_idle(timeout=60)


def description(box: ProductSandbox, product_id: int) -> Any:
    return box.bp_sim.state.products[product_id]["salesChannels"][0].get("description")


def back_audit(box: ProductSandbox, dv_id: str) -> list[tuple[AuditResult, str | None]]:
    entries = box.store.audit.for_record("product", "dataverse", dv_id)
    return [(e.result, e.reason_code) for e in entries if e.flow == BACK]


def test_a_dynamics_description_edit_reaches_brightpearl_with_the_version_moved(
    products_sandbox: ProductSandbox,
) -> None:
    box = products_sandbox
    steps = register_dataverse_webhooks(box)
    assert "bpi-sync: product Update" in steps
    product_id = box.create("MUG-OWN-1", name="Stoneware Mug")
    version = box.bp_sim.state.products[product_id]["version"]
    settle(box)  # created and published in Dynamics: our own writes, nothing goes back
    assert box.bp_sim.state.products[product_id]["version"] == version
    dv_id = str(box.product(product_id)["productid"])

    box.dv.crm("PATCH", f"products({dv_id})", {"description": EDIT})  # a Dynamics user
    settle(box)

    assert description(box, product_id)["text"] == EDIT
    assert box.bp_sim.state.products[product_id]["version"] > version
    assert box.bp_sim.state.products[product_id]["salesChannels"][0]["productName"] == "Stoneware Mug"
    assert box.product(product_id)["description"] == EDIT  # Brightpearl's product.modified kept it
    assert (AuditResult.SYNCED, None) in back_audit(box, dv_id)
    assert not box.dead_letters("dataverse-changes", BACK)

    # nothing bounces: a further round writes nothing more to Brightpearl
    put_version = box.bp_sim.state.products[product_id]["version"]
    settle(box)
    assert box.bp_sim.state.products[product_id]["version"] == put_version


@pytest.mark.parametrize("sandbox_settings", ["off"], indirect=True)
def test_with_ownership_off_the_same_edit_does_not_reach_brightpearl(
    products_sandbox: ProductSandbox,
) -> None:
    box = products_sandbox
    steps = register_dataverse_webhooks(box)
    assert not [s for s in steps if " product " in s]  # no step on the product table
    product_id = box.create("MUG-OWN-2", name="Stoneware Mug")
    settle(box)
    dv_id = str(box.product(product_id)["productid"])
    before = (description(box, product_id), box.bp_sim.state.products[product_id]["version"])

    box.dv.crm("PATCH", f"products({dv_id})", {"description": EDIT})
    settle(box)

    assert (description(box, product_id), box.bp_sim.state.products[product_id]["version"]) == before
    assert back_audit(box, dv_id) == []
