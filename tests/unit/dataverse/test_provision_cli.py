"""`syncctl dataverse check` and `syncctl dataverse provision [--dry-run]` against a bare
simulator on loopback, as an operator runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncctl.main import app
from tests.unit.dataverse.provisionfixtures import bare, bare_server, settings_file
from tests.unit.dataverse.test_provision import EXPECTED_CHANGES

__all__ = ["bare", "bare_server"]

ALL = len(EXPECTED_CHANGES)  # every change a bare environment needs


@pytest.fixture
def settings(bare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return settings_file(bare.server, tmp_path, monkeypatch)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


def test_provision_a_bare_environment_then_check_passes_and_a_second_run_changes_nothing(bare, settings):
    code, out = run("dataverse", "check", *settings)
    assert code == 1 and f"{ALL} problem(s)" in out
    assert "contact: column 'bpi_tags' is missing. Fix: Run `syncctl dataverse provision`." in out
    assert "solution" not in out

    code, out = run("dataverse", "provision", "--dry-run", *settings)
    assert code == 0 and f"{ALL} change(s) to make (dry run, nothing changed)" in out
    assert "contact: create column bpi_segment (Picklist)" in out
    assert run("dataverse", "check", *settings)[0] == 1  # the dry run changed nothing

    code, out = run("dataverse", "provision", *settings)
    assert code == 0, out
    assert "contact: enable change tracking" in out and f"{bare.url}: {ALL} change(s)" in out

    code, out = run("dataverse", "check", *settings)
    assert code == 0 and "has every column, key and setting the mappings need" in out

    code, out = run("dataverse", "provision", *settings)
    assert code == 0 and f"{bare.url}: 0 change(s)" in out


def test_check_names_a_mapped_column_removed_from_the_environment(bare, settings):
    assert run("dataverse", "provision", *settings)[0] == 0
    admin = bare.admin
    out = admin.crm(
        "DELETE", "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='bpi_customergroup')"
    )
    assert out["status"] == 204
    code, out = run("dataverse", "check", *settings)
    assert code == 1 and "1 problem(s)" in out
    assert "contact: column 'bpi_customergroup' is missing." in out


def test_provision_reports_what_it_cannot_fix(bare, settings):
    bare.admin.crm(
        "POST",
        "EntityDefinitions(LogicalName='contact')/Attributes",
        {
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "SchemaName": "bpi_vip",
            "DisplayName": {"LocalizedLabels": [{"Label": "VIP", "LanguageCode": 1033}]},
        },
    )
    code, out = run("dataverse", "provision", *settings)
    assert code == 1 and "1 problem(s) provisioning cannot fix" in out
    assert "column 'bpi_vip' is String, the mapping needs Boolean" in out


def test_bad_credentials_are_explained_without_a_traceback(bare, settings, monkeypatch):
    monkeypatch.setenv("DATAVERSE_CLIENT_SECRET", "wrong")
    for command in ("check", "provision"):
        code, out = run("dataverse", command, *settings)
        # exit 2: a service refusing us, like one that is down (every syncctl command, issue 15)
        assert code == 2 and "Traceback" not in out
        assert "System Customizer or System Administrator" in out and "DATAVERSE_" in out
