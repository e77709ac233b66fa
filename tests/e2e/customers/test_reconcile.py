"""Reconciliation against the whole sandbox (issue 16 item 1): drift injected behind the
integration's back on both sides is found by `syncctl reconcile customers` with exact counts,
and `--heal` heals it through change notices the running host works off.

Injected: a field changed in Brightpearl and one in Dynamics without any webhook or poll, a
deleted link, a duplicate Dynamics contact (same e-mail as a linked one) and a Brightpearl
customer never synced. Duplicates are reported, never merged: once an operator removes the
duplicate, a further run reports zero.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tests.e2e.customers.conftest import Sandbox
from tests.e2e.customers.test_sync_both_ways import bp_create_contact


def reconcile(settings: Path, *args: str) -> tuple[int, dict[str, Any]]:
    from syncctl.main import app

    result = CliRunner().invoke(app, ["reconcile", "customers", "--json", "--settings", str(settings), *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def nonzero(report: dict[str, Any]) -> dict[str, int]:
    return {k: v for k, v in report["counts"].items() if v}


def test_reconcile_finds_injected_drift_and_heal_repairs_it(sandbox: Sandbox, tmp_path: Path) -> None:
    sb = sandbox
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sb.values}))
    ids = [bp_create_contact(sb, f"Rec{i}", f"Customer{i}", f"rec{i}@example.org") for i in range(5)]
    sb.settle()
    dv_of = {}
    for i in ids:
        link = sb.store.links.get("customer", "brightpearl", str(i))
        assert link is not None
        dv_of[i] = str(link.id_in("dataverse"))
    code, clean = reconcile(settings)
    assert code == 0 and nonzero(clean) == {} and clean["scanned"]["links"] == 5

    # behind the integration's back: no webhook, no poll
    with sb.bp_sim.state.lock:
        sb.bp_sim.state.contacts[ids[0]]["lastName"] = "Renamed"
    sb.dv.crm("PATCH", f"contacts({dv_of[ids[1]]})", {"firstname": "Edited"})
    assert sb.store.links.unlink("customer", "brightpearl", str(ids[2]))
    twin = sb.dv.crm(
        "POST",
        "contacts",
        {"firstname": "Rec3", "lastname": "Customer3", "emailaddress1": "rec3@example.org"},
    )
    twin_id = (twin["headers"].get("OData-EntityId") or twin["headers"]["odata-entityid"]).rsplit("(", 1)[1][
        :-1
    ]
    unsynced = bp_create_contact(sb, "Never", "Synced", "never@example.org")

    writes = (sb.bp_writes(), sb.dv.writes())
    code, found = reconcile(settings)
    assert (sb.bp_writes(), sb.dv.writes()) == writes  # reconcile itself writes to neither system
    assert code == 1
    assert nonzero(found) == {"drift": 2, "unlinked": 1, "duplicate": 1, "missing_in_dataverse": 1}
    items = {(f["kind"], f["brightpearl_id"] or f["dataverse_id"]): f for f in found["items"]}
    assert items[("drift", str(ids[0]))]["changed_in"] == ["brightpearl"]
    assert "name.last_name" in items[("drift", str(ids[0]))]["fields"]
    assert items[("drift", str(ids[1]))]["changed_in"] == ["dataverse"]
    assert "name.first_name" in items[("drift", str(ids[1]))]["fields"]
    assert items[("unlinked", str(ids[2]))]["dataverse_id"] == dv_of[ids[2]]
    assert items[("duplicate", twin_id.lower())]["duplicate_of"] == dv_of[ids[3]]
    assert ("missing_in_dataverse", str(unsynced)) in items
    assert "example.org" not in json.dumps(found) and "Renamed" not in json.dumps(found)
    from syncctl.main import app

    shown = CliRunner().invoke(app, ["reconcile", "customers", "--last", "--settings", str(settings)])
    assert shown.exit_code == 1, shown.output
    assert f"drift: brightpearl {ids[0]} dataverse {dv_of[ids[0]]} changed in brightpearl: " in shown.output
    assert f"duplicate: dataverse {twin_id.lower()} (dataverse duplicate of {dv_of[ids[3]]})" in shown.output
    assert "example.org" not in shown.output

    code, healed = reconcile(settings, "--heal")  # the host works the notices off at once
    assert nonzero(healed) == nonzero(found)
    assert healed["healing"]["notices"] == {"brightpearl": 3, "dataverse": 1}
    sb.host.wait_idle(timeout=120)
    sb.run_retries()

    code, after = reconcile(settings)
    assert nonzero(after) == {"duplicate": 1}  # an operator's decision: reported, never merged
    assert sb.bp_contacts()[ids[1]]["firstName"] == "Edited"
    assert any(r.get("lastname") == "Renamed" for r in sb.dv_contacts())
    assert any(r.get("bpi_brightpearlid") == str(unsynced) for r in sb.dv_contacts())
    assert sb.store.links.get("customer", "brightpearl", str(ids[2])) is not None

    sb.dv.crm("DELETE", f"contacts({twin_id})")  # the operator removes the duplicate
    code, last = reconcile(settings)
    assert code == 0 and nonzero(last) == {}
    code, stored = reconcile(settings, "--last")
    assert stored["run_id"] == last["run_id"]


def test_reconcile_since_reads_only_what_changed_and_finds_its_drift(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    from sandbox.brightpearl.admin import _change_contact

    sb = sandbox
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sb.values}))
    ids = [bp_create_contact(sb, f"Since{i}", f"Customer{i}", f"since{i}@example.org") for i in range(4)]
    sb.settle()
    link = sb.store.links.get("customer", "brightpearl", str(ids[1]))
    assert link is not None
    since = datetime.now(UTC) + timedelta(seconds=1)
    time.sleep(2.1)  # Dataverse stamps whole seconds
    _change_contact(sb.bp_sim, ids[0], {"lastName": "Later"})  # no webhook: contact_webhooks off
    sb.dv.crm("PATCH", f"contacts({link.id_in('dataverse')})", {"firstname": "Later"})

    code, found = reconcile(settings, "--since", since.isoformat())

    assert code == 1
    assert found["scanned"]["brightpearl"] == 1 and found["scanned"]["dataverse"] == 1
    assert nonzero(found) == {"drift": 2}
    assert {f["brightpearl_id"] for f in found["items"]} == {str(ids[0]), str(ids[1])}
