"""`syncctl backfill orders --since DATE` through the running app (issue 13 item 7): Dynamics
orders raised while the host was down (their webhooks lost) reach Brightpearl after the
backfill, each exactly once, also when the backfill runs twice; an order synced before is
published again and left as it is; orders last modified before --since are not published."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.e2e.orders.conftest import OrderSandbox
from tests.e2e.orders.test_exactly_once import assert_exactly_once
from tests.unit.cli.test_backfill_orders_cli import days_ago


def backfill_orders(box: OrderSandbox, tmp_path: Path, since: str) -> str:
    """`syncctl backfill orders --since` with the sandbox's settings; its output."""
    from syncctl.main import app

    settings = tmp_path / "backfill.settings.json"
    settings.write_text(json.dumps({"Values": box.values}))
    result = CliRunner().invoke(
        app, ["backfill", "orders", "--since", since, "--settings", str(settings)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_orders_raised_while_the_host_was_down_arrive_after_a_backfill_exactly_once(
    orders_sandbox: OrderSandbox, dv_server: Any, tmp_path: Path
) -> None:
    box = orders_sandbox
    synced = box.raise_order([("MUG-1", 1)])
    box.work()
    assert len(box.bp_orders_of(synced)) == 1

    box.host.stop()  # webhooks of what follows are lost
    with days_ago(dv_server, 3):
        old = [box.raise_order([("CAP-1", 1)]) for _ in range(2)]
    missed = [box.raise_order([("MUG-1", 2), ("TEE-1", 1)]) for _ in range(3)]
    box.dv.call("POST", "webhooks/drain", {"timeout": 20})
    box.start_host()
    box.work()
    assert [o for o in old + missed if box.bp_orders_of(o)] == []  # nothing announced them

    since = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    said = backfill_orders(box, tmp_path, since)
    assert "backfill orders from dataverse" in said  # the progress line
    assert "published 4 order ids in 1 notices to dataverse-changes" in said
    box.work()

    assert_exactly_once(box, [synced, *missed])  # the old orders: none
    assert [o for o in old if box.bp_orders_of(o)] == []

    backfill_orders(box, tmp_path, since)  # again: nothing new
    box.work()
    assert_exactly_once(box, [synced, *missed])
