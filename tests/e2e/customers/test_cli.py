"""`syncctl mapping check` and `syncctl mapping preview` against the running sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from syncctl.main import app
from tests.e2e.customers.conftest import Sandbox
from tests.e2e.customers.test_sync_both_ways import bp_create_contact, dv_create_contact


def test_mapping_check_accepts_the_shipped_mapping_and_names_a_broken_one(tmp_path: Path):
    runner = CliRunner()
    ok = runner.invoke(app, ["mapping", "check"])
    assert ok.exit_code == 0 and "mapping OK" in ok.output
    broken = tmp_path / "customers.yaml"
    text = (Path(__file__).resolve().parents[3] / "mappings" / "customers.yaml").read_text()
    broken.write_text(text.replace("    addresses: brightpearl", "    adresses: brightpearl"))
    bad = runner.invoke(app, ["mapping", "check", str(broken)])
    assert bad.exit_code == 1 and "adresses" in bad.output


def test_mapping_preview_fetches_the_record_from_either_side(sandbox: Sandbox, tmp_path: Path):
    sb = sandbox
    bp_id = bp_create_contact(sb, "Preview", "Person", "preview@example.org", phone="0117 496 0555")
    dv_id = dv_create_contact(sb, firstname="Dee", lastname="Vee", emailaddress1="DEE@example.org")
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": sb.values}))
    runner = CliRunner()
    out = runner.invoke(
        app,
        ["mapping", "preview", "--from", "brightpearl", "--id", str(bp_id), "--settings", str(settings)],
        env={"COLUMNS": "240"},
    )
    assert out.exit_code == 0, out.output
    assert "+441174960555" in out.output and "OK: would be written" in out.output
    out = runner.invoke(
        app,
        ["mapping", "preview", "--from", "dataverse", "--id", dv_id, "--settings", str(settings)],
        env={"COLUMNS": "240"},
    )
    assert out.exit_code == 0, out.output
    assert "dee@example.org" in out.output
    missing = runner.invoke(
        app, ["mapping", "preview", "--from", "brightpearl", "--id", "999999", "--settings", str(settings)]
    )
    assert missing.exit_code == 1 and "not found" in missing.output
