"""`python -m sandbox.dataverse --bare` is a stock org without the integration's schema;
`python -m sandbox.customers_solution` (what `syncctl sandbox up` runs) starts bare and is
provisioned by the provisioning code before it serves."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_TENANT_ID
from sandbox.dataverse.server import free_port
from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential
from shared.dataverse.environment_check import check_environment


@contextmanager
def simulator(module: str, *flags: str) -> Iterator[DataverseClient]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port), *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/_sandbox/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "simulator did not start"
            time.sleep(0.1)
        token_url = f"{base}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token"
        with DataverseClient(
            base, SandboxCredential(token_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
        ) as c:
            yield c
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bare_simulator_has_no_integration_schema():
    with simulator("sandbox.dataverse", "--bare") as client:
        definition = client.request(
            "GET",
            "EntityDefinitions(LogicalName='contact')",
            params={"$select": "ChangeTrackingEnabled", "$expand": "Attributes($select=LogicalName),Keys"},
        ).json()
        assert definition["ChangeTrackingEnabled"] is False and definition["Keys"] == []
        columns = {a["LogicalName"] for a in definition["Attributes"]}
        assert "lastname" in columns and not any(c.startswith("bpi_") for c in columns)
        assert {p.kind for p in check_environment(client)} == {
            "missing_column",
            "missing_key",
            "change_tracking_off",
        }


def test_the_sandbox_dataverse_is_provisioned_before_it_serves():
    with simulator("sandbox.customers_solution") as client:
        assert check_environment(client) == []
        tags = client.request(
            "GET", "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='bpi_tags')"
        )
        label = tags.json()["DisplayName"]["LocalizedLabels"][0]["Label"]
        assert label == "Brightpearl tags"  # created through the metadata API by the provisioning code
