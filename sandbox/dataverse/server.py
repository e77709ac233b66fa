"""Runs a Simulator under uvicorn in a background thread (tests, benchmarks, `sandbox up`)."""

from __future__ import annotations

from sandbox import serving
from sandbox.dataverse.app import Simulator
from sandbox.serving import free_port

__all__ = ["SimulatorServer", "free_port"]


class SimulatorServer(serving.SimulatorServer):
    """`with SimulatorServer(config, schema=...) as server: server.url ...` - loopback only,
    stops (and closes the simulator) on exit."""

    label = "Dataverse simulator"
    simulator_class = Simulator
    simulator: Simulator

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.simulator.config.tenant_id}/oauth2/v2.0/token"

    def stop(self) -> None:
        super().stop()
        self.simulator.close()
