"""A bare Dataverse simulator (a stock org: no bpi_ columns, keys or change tracking) on a free
loopback port, reset to bare before each test, with a client and an admin helper."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from sandbox.dataverse import SimulatorConfig, SimulatorServer
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from sandbox.dataverse.schema import load_schema
from shared.dataverse.client import DataverseClient
from shared.dataverse.provision import Provisioner
from tests.contract.dataverse.simfixtures import Admin, Sim, make_client

ROOT = Path(__file__).resolve().parents[3]
KEY_SECONDS = 0.3  # index jobs finish this long after a key is created


def bare_config() -> SimulatorConfig:
    return SimulatorConfig(fractional_retry_after=True, key_activation_seconds=KEY_SECONDS)


@pytest.fixture(scope="module")
def bare_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(bare_config(), schema=load_schema().bare()) as server:
        yield server


@pytest.fixture
def bare(bare_server: SimulatorServer) -> Iterator[Sim]:
    admin = Admin(bare_server)
    defaults = asdict(bare_config())
    defaults.pop("clients")
    admin.call("POST", "reset", {"config": defaults})
    yield Sim(bare_server, admin)
    admin.http.close()


@pytest.fixture
def bare_client(bare: Sim) -> Iterator[DataverseClient]:
    with make_client(bare) as client:
        yield client


def provisioner(client: DataverseClient, **options: Any) -> Provisioner:
    return Provisioner(client, **{"poll_interval": 0.05, "key_timeout": 20.0, **options})


def writes(sim: Sim) -> int:
    """Web API calls other than GET so far (metadata writes included)."""
    calls = sim.admin.counters()["calls"]
    return sum(v for k, v in calls.items() if not k.startswith("GET"))


def settings_file(server: SimulatorServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """`--settings <file>` for syncctl pointing at `server` (the example settings otherwise)."""
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    values = {k: v for k, v in values.items() if v != ""}
    values.update(
        DATAVERSE_URL=server.url,
        DATAVERSE_TOKEN_URL=server.token_url,
        DATAVERSE_CLIENT_ID=DEFAULT_CLIENT_ID,
        DATAVERSE_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
    )
    for key, value in values.items():  # the CLI puts the file into os.environ; undo it after
        monkeypatch.setenv(key, str(value))
    path = folder / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    return ["--settings", str(path)]
