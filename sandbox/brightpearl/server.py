"""Run the simulator with uvicorn in a background thread (tests, benchmarks, syncctl)."""

from __future__ import annotations

from typing import Any

from sandbox import serving
from sandbox.brightpearl.app import Simulator
from sandbox.serving import free_port

__all__ = ["SimulatorServer", "free_port"]


class SimulatorServer(serving.SimulatorServer):
    """`with SimulatorServer(rate_limit=20) as server: server.url ...` — starts and stops.

    Keyword arguments besides host and port override the SimulatorConfig (see Simulator).
    """

    label = "Brightpearl simulator"
    simulator_class = Simulator
    lifespan = "on"
    simulator: Simulator

    def asgi_app(self) -> Any:
        return self.simulator.app

    @property
    def account(self) -> str:
        return self.simulator.config.accounts[0]
