"""The sandbox's seeded Brightpearl catalogue (sandbox/brightpearl/catalogue_seed.py: services,
variation groups, archived products) backfilled into Dynamics: every product once, by SKU and
name, live ones Active (the organisation creates them Draft), archived ones Retired, nothing
dead-lettered; a second backfill reads every product and writes none."""

from __future__ import annotations

from sandbox.brightpearl.catalogue_seed import seed_catalogue
from shared.flows.products_spec import PRODUCTS
from shared.store import AuditResult
from shared.sync.backfill import Backfill
from tests.e2e.customers.conftest import BP_TOPIC
from tests.e2e.products.conftest import ACTIVE, RETIRED, ProductSandbox


def backfill(sb: ProductSandbox) -> None:
    Backfill(
        PRODUCTS,
        "brightpearl",
        client=sb.bp,
        cursors=sb.store.cursors,
        publish=lambda envs: sb.bus.publish(BP_TOPIC, [e.to_message() for e in envs]),
        clock=sb.clock,
        source_name="/brightpearl/sandbox",
    ).run()
    sb.host.wait_idle(timeout=120)


def test_the_seeded_catalogue_backfills_into_dynamics(products_sandbox: ProductSandbox) -> None:
    sb = products_sandbox
    seeded = seed_catalogue(sb.bp_sim.state, products=60)
    backfill(sb)

    rows = sb.products()
    assert sorted(int(k) for k in rows) == seeded.products
    assert sb.dead_lettered() == []
    catalogue = sb.bp_sim.state.products
    for pid in seeded.products:
        row = rows[str(pid)]
        assert row["productnumber"] == catalogue[pid]["identity"]["sku"]
        assert row["name"] == catalogue[pid]["salesChannels"][0]["productName"]
        expected = RETIRED if pid in seeded.archived else ACTIVE
        assert (row["statecode"], row["statuscode"]) == expected, pid
    # variations are products of their own (same name, one SKU each)
    for group in seeded.variation_groups.values():
        assert len({rows[str(p)]["productnumber"] for p in group}) == len(group)

    sb.clock.advance(60)  # another run (its notices are new messages, not duplicates)
    backfill(sb)  # again: every product is read and found unchanged, none is written
    for pid in seeded.products:
        assert sb.audited(pid) == [AuditResult.SKIPPED, AuditResult.SYNCED], pid  # newest first
