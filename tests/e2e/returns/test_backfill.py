"""`syncctl backfill returns [--since DATE]` through the running app (issue 14 item 9): credits
made while the poller was not running become cases, each exactly once, also when the backfill
runs twice; refunded ones are resolved."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.e2e.returns.conftest import ReturnSandbox


def backfill_returns(box: ReturnSandbox, tmp_path: Path) -> str:
    from syncctl.main import app

    settings = tmp_path / "backfill.settings.json"
    settings.write_text(json.dumps({"Values": box.values}))
    result = CliRunner().invoke(
        app, ["backfill", "returns", "--settings", str(settings)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_a_backfill_opens_a_case_for_every_credit_once(returns_sandbox, tmp_path: Path):
    box = returns_sandbox
    order = box.raise_order([("MUG-1", 3)])
    box.work()
    parent = box.bp_order_id(order)
    credits = [box.credit(parent, [("MUG-1", 1)], ref=f"RMA-{i}") for i in range(3)]
    box.refund(credits[0])
    assert box.cases() == []  # nothing announced them (no webhook, the poller did not run)

    said = backfill_returns(box, tmp_path)
    assert "published 3 sales-credit ids" in said
    box.work()
    backfill_returns(box, tmp_path)  # again: the same credits, their cases found by key
    box.work()

    assert sorted(int(c["bpi_brightpearlid"]) for c in box.cases()) == credits
    assert (
        box.case(credits[0])["statecode"] == 1
        and len(box.resolutions(box.case(credits[0])["incidentid"])) == 1
    )
    assert [box.case(c)["statecode"] for c in credits[1:]] == [0, 0]
    assert box.returns_dead_letters() == []
