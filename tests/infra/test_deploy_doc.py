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


README = (checks.ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDER = "## Checking that the platform accepts the app (real-worker check)"


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```(?:sh|bash)\n(.*?)```", text, flags=re.S)


def test_the_readme_deploy_section_defines_every_variable_it_uses():
    section = README.split("## Deploy\n", 1)[1].split("\n## ", 1)[0]
    block = "\n".join(_shell_blocks(section))
    assert "az deployment group create" in block
    code = "\n".join(line.split(" #", 1)[0] for line in block.splitlines())  # comments may say anything
    used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", code))
    defined = set(re.findall(r"(?:^|[\s;&(])([A-Za-z_]\w*)=", code, flags=re.M))
    assert used, "the README's deploy commands use no variables?"
    assert used <= defined, f"used but never set in the README's deploy section: {sorted(used - defined)}"


def test_the_guide_names_the_python_version_and_the_isolation_setting():
    default = MAIN["parameters"]["pythonVersion"]["default"]
    assert f"**Python {default}**" in DOC
    assert f"| `pythonVersion` | `{default}` |" in DOC
    assert "az functionapp list-flexconsumption-runtimes" in DOC  # how to see today's versions
    assert "`PYTHON_ISOLATE_WORKER_DEPENDENCIES=1`" in DOC
    assert PLACEHOLDER in DOC, "the real-worker check section is missing (its heading is fixed)"


def test_every_syncctl_command_and_option_shown_exists():
    import typer.main

    from syncctl.main import app

    root = typer.main.get_command(app)
    lines = [
        line
        for text in (DOC, README)
        for block in _shell_blocks(text)
        for line in block.splitlines()
        if "syncctl " in line.split("#", 1)[0]
    ]
    assert any("syncctl dataverse provision --dry-run" in line for line in lines)
    assert any("syncctl backfill customers --from brightpearl" in line for line in lines)
    for line in lines:
        for call in re.findall(r"syncctl ([^&|;#]+)", line.split(" #", 1)[0]):
            words = call.split()
            group = root.commands.get(words[0])  # type: ignore[attr-defined]
            assert group is not None, f"{line!r}: no syncctl command {words[0]!r}"
            command = group.commands.get(words[1]) if hasattr(group, "commands") else group
            assert command is not None, f"{line!r}: no syncctl {words[0]} {words[1]!r}"
            options = {opt for param in command.params for opt in param.opts}
            for word in words[2:]:
                if word.startswith("--"):
                    assert word in options, f"{line!r}: syncctl {words[0]} {words[1]} has no option {word}"


def test_the_operator_role_commands_match_the_bicep():
    main_text = (checks.INFRA_DIR / "main.bicep").read_text(encoding="utf-8")
    assert "roleName: 'Table catalog (${names.functionApp})'" in main_text
    assert '--role "Table catalog ($APP)"' in DOC  # APP is the output functionAppName = names.functionApp
    tables = MAIN["variables"]["stateTableNames"]["value"]
    assert [t.replace("${stateTablePrefix}", "") for t in tables] == ["links", "ledger", "cursors", "audit"]
    assert "for table in links ledger cursors audit; do" in DOC
