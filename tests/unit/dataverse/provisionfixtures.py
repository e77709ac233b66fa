"""A bare Dataverse simulator (a stock org: no bpi_ columns, keys or change tracking) on a free
loopback port, reset to bare before each test, with a client and an admin helper."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest

from sandbox.dataverse import SimulatorConfig, SimulatorServer
from sandbox.dataverse.schema import load_schema
from shared.dataverse.client import DataverseClient
from shared.dataverse.provision import Provisioner
from tests.contract.dataverse.simfixtures import Admin, Sim, make_client

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
