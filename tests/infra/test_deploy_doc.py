"""docs/deploy.md names only outputs, parameters, secrets and settings that really exist."""

from __future__ import annotations

import re

from tests.infra import infra_checks as checks

DOC = (checks.ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
MAIN = checks.parse_bicep(checks.INFRA_DIR / "main.bicep")


def test_every_output_the_guide_reads_exists():
    read = set(re.findall(r"\$\(out (\w+)\)", DOC))
    read |= set(re.findall(r"properties\.outputs\.(\w+)\.value", DOC))
    assert read, "the guide reads no outputs?"
    assert read <= set(MAIN["outputs"]), f"unknown outputs: {sorted(read - set(MAIN['outputs']))}"


def test_every_parameter_the_guide_names_exists():
    table = DOC.split("| Parameter | Default | Meaning |", 1)[1].split("\n\n", 1)[0]
    cells = re.findall(r"^\| ([^|]+) \|", table, flags=re.M)
    named = {n for cell in cells for n in re.findall(r"`(\w+)`", cell)}
    named |= set(re.findall(r"param (\w+) =", DOC))
    assert {"brightpearlAuthMode", "dataverseAuthMode", "serviceBusSku"} <= named
    assert named <= set(MAIN["parameters"]), f"unknown params: {sorted(named - set(MAIN['parameters']))}"


def test_secret_table_matches_key_vault_names_and_app_settings(code_settings):
    secret_names = set(MAIN["variables"]["secretNames"]["value"].values())
    rows = re.findall(r"^\| `([a-z-]+)` \| \(?`([A-Z_]+)`\)? \|", DOC, flags=re.M)
    assert {name for name, _ in rows} == secret_names
    for _, setting in rows:
        assert setting in code_settings, f"{setting} is not a setting the code reads"
    set_commands = set(re.findall(r"secret set --vault-name \"\$KV\" --name ([a-z-]+)", DOC))
    assert set_commands <= secret_names


def test_settings_not_set_in_azure_are_documented():
    for name in checks.NOT_SET_IN_AZURE:
        assert f"| `{name}` |" in DOC, f"{name} is excluded from Bicep but not explained in deploy.md"


def test_the_deploy_command_matches_the_files():
    command = "az deployment group create -g \"$RG\" -n bpsync -f infra/main.bicep -p infra/main.bicepparam"
    assert command in DOC
    assert (checks.INFRA_DIR / "main.bicepparam").read_text(encoding="utf-8").count("using 'main.bicep'") == 1
