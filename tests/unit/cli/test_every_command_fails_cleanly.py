"""Issue 15: every `syncctl` command, with its services down or given malformed input, ends in
one line naming the problem and exit code 2, never a traceback.

The commands are enumerated from the typer app, so a new command fails
`test_every_command_has_a_case` until it is given its cases here.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shared.sync import registry
from syncctl.main import app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
GUID = "5b0d9a6e-2f3c-4d1e-9a8b-7c6d5e4f3a21"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def down_values(tmp: Path) -> dict[str, str]:
    """The example settings with every service on a loopback port nobody listens on."""
    port = closed_port()
    dead = f"http://127.0.0.1:{port}"
    values = {k: v for k, v in EXAMPLE.items() if v != ""}
    values.update(
        AzureWebJobsStorage=(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
            f"TableEndpoint={dead}/devstoreaccount1;"
        ),
        LOCAL_BUS_PATH=str(tmp / "not-started" / "bus.sqlite3"),
        BRIGHTPEARL_BASE_URL=dead,
        BRIGHTPEARL_APP_REF="sandbox-app",
        BRIGHTPEARL_ACCOUNT_TOKEN="sandbox-account-token",
        BRIGHTPEARL_MAX_RETRIES="0",
        DATAVERSE_URL=dead,
        DATAVERSE_TOKEN_URL=f"{dead}/tenant/oauth2/v2.0/token",
        DATAVERSE_MAX_RETRIES="0",
    )
    return values


def command_paths() -> list[str]:
    def walk(command, path: list[str]) -> Iterator[str]:  # type: ignore[no-untyped-def]
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                yield from walk(sub, [*path, name])
        else:
            yield " ".join(path)

    return list(walk(typer.main.get_command(app), []))


def cases(s: str, tmp: str) -> dict[str, list[list[str]]]:
    """Per command: invocations with the services down (settings file `s`) or malformed input."""
    port = str(closed_port())
    out: dict[str, list[list[str]]] = {
        "sandbox up": [["--port", "not-a-port"]],
        "sandbox demo": [["--port", port, "--settings", s], ["--port", "x"]],
        "settings check": [["--file", f"{tmp}/missing.json"], ["--file", f"{tmp}/broken.json"]],
        "settings docs": [["unexpected"]],
        "dlq list": [["--settings", s], ["--topic", "no-such-topic", "--settings", s]],
        "dlq show": [["some-message-id", "--settings", s]],
        "dlq resubmit": [["--all", "--settings", s], ["--settings", s]],
        "dlq purge": [["--all", "--yes", "--settings", s]],
        "dlq triage": [["--settings", s], ["--json", "--settings", s], ["--resubmit", "1", "--settings", s]],
        "webhooks register": [
            ["--ingress-url", "not a url", "--brightpearl", "--function-key", "k", "--settings", s],
            [
                "--ingress-url",
                "https://x.example/api",
                "--brightpearl",
                "--function-key",
                "k",
                "--settings",
                s,
            ],
            ["--ingress-url", "https://x.example/api", "--dataverse", "--function-key", "k", "--settings", s],
        ],
        "mapping check": [["--entity", "no-such-entity"]],
        "mapping preview": [
            ["--from", "dataverse", "--id", "not-a-guid", "--settings", s],
            ["--from", "brightpearl", "--id", "215", "--settings", s],
            ["--from", "dataverse", "--id", GUID, "--settings", s],
        ],
        "mapping suggest": [
            ["--entity", "customer", "--settings", s],
            ["--entity", "widget", "--settings", s],
        ],
        "mapping drift": [
            ["--settings", s],
            ["--run", "--settings", s],
            ["--entity", "product", "--settings", s],
        ],
        "dataverse check": [["--settings", s]],
        "dataverse provision": [["--dry-run", "--settings", s]],
        "bus status": [["--settings", s]],
        "bus messages": [["--settings", s], ["--queue", "nowhere", "--settings", s]],
        "orders show": [["SO-1001", "--settings", s], [GUID, "--settings", s], ["  ", "--settings", s]],
        "customers show": [
            ["ada@example.org", "--settings", s],
            ["215", "--json", "--settings", s],
            [GUID, "--settings", s],
            ["  ", "--settings", s],
        ],
        "customer-value show": [["215", "--settings", s], ["ada@example.org", "--settings", s]],
        "customer-value last": [["--settings", s]],
        "customer-value recompute": [["--settings", s], ["--customer", "215", "--json", "--settings", s]],
        "history": [
            ["brightpearl", "contact", "215", "--settings", s],
            ["dataverse", "contact", "215", "--settings", s],
            ["brightpearl", "contact", "-3", "--settings", s],
            ["nowhere", "contact", "215", "--settings", s],
            ["brightpearl", "widget", "215", "--settings", s],
        ],
        "sync": [
            ["contact", "215", "--from", "brightpearl", "--settings", s],
            ["contact", "not-a-guid", "--from", "dataverse", "--settings", s],
            ["product", GUID, "--from", "dataverse", "--settings", s],
        ],
        "review list": [["--settings", s], ["--flow", "no-such-flow", "--settings", s]],
        "review accept": [["customers-to-dataverse/215", "--settings", s]],
        "review dismiss": [["customers-to-dataverse/215", "--settings", s], ["x", "--days", "0"]],
        "review accept-sku": [
            [GUID, "1001", "--settings", s],
            ["not-a-guid", "1001", "--settings", s],
            [GUID, "0", "--settings", s],
        ],
        "flow list": [["--settings", s]],
        "flow pause": [["customers-to-dataverse", "--settings", s], ["no-such-flow", "--settings", s]],
        "flow resume": [["customers-to-dataverse", "--settings", s], ["x", "--recheck", "1"]],
    }
    for spec in registry.ENTITIES + registry.BUILDING:
        if getattr(spec, "reconciler", None):
            out[f"reconcile {spec.name}"] = [["--settings", s], ["--since", "yesterday", "--settings", s]]
        if spec.backfill_sources:
            source = spec.backfill_sources[0].system
            out[f"backfill {spec.name}"] = [
                ["--from", source, "--settings", s],
                ["--from", source, "--since", "yesterday", "--settings", s],
                ["--from", "nowhere", "--settings", s],
            ]
    return out


@pytest.fixture
def down(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    values = down_values(tmp_path)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": values}))
    (tmp_path / "broken.json").write_text("{not json")
    return settings, values


def test_every_command_has_a_case(tmp_path: Path):
    missing = set(command_paths()) - set(cases("s", str(tmp_path)))
    assert not missing, f"give these commands their services-down / malformed-input cases: {missing}"


@pytest.mark.parametrize("command", command_paths())
def test_command_ends_in_one_line_and_exit_2(command: str, down: tuple[Path, dict[str, str]], tmp_path):
    settings, values = down
    runner = CliRunner()
    for args in cases(str(settings), str(tmp_path))[command]:
        argv = [*command.split(), *args]
        # the process environment wins over a settings file: give it the same dead services
        result = runner.invoke(app, argv, env={**values, "COLUMNS": "200"})
        text = result.output
        lines = [line for line in text.splitlines() if line.strip()]
        where = f"syncctl {' '.join(argv)}"
        assert result.exit_code == 2, f"{where}: exit {result.exit_code}\n{text}"
        assert "Traceback" not in text, f"{where}:\n{text}"
        assert len(lines) == 1, f"{where}: {len(lines)} lines\n{text}"
        assert len(lines[0]) > 20, f"{where}: {text}"
