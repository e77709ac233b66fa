"""Runs a Simulator under uvicorn in a background thread (tests, benchmarks, `sandbox up`)."""

from __future__ import annotations

from typing import Any

from sandbox import serving
from sandbox.dataverse.app import REQUEST_HEAD_LIMIT, Simulator
from sandbox.serving import free_port

__all__ = ["SimulatorServer", "free_port"]


class SimulatorServer(serving.SimulatorServer):
    """`with SimulatorServer(config, schema=...) as server: server.url ...` - loopback only,
    stops (and closes the simulator) on exit."""

    label = "Dataverse simulator"
    simulator_class = Simulator
    simulator: Simulator

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        # Long look-up URLs reach the simulator's own 414 check instead of uvicorn's 16 KB cap.
        self._options["h11_max_incomplete_event_size"] = REQUEST_HEAD_LIMIT

    @property
    def token_url(self) -> str:
        return f"{self.url}/{self.simulator.config.tenant_id}/oauth2/v2.0/token"

    def stop(self) -> None:
        super().stop()
        self.simulator.close()


def serve(simulator: Simulator, host: str, port: int) -> None:
    """Serve `simulator` on host:port until interrupted (`python -m sandbox.dataverse`, `sandbox up`),
    taking request heads as long as the simulator's own URL limit allows."""
    import uvicorn  # a dev dependency: only the sandbox runs servers

    uvicorn.run(
        simulator,
        host=host,
        port=port,
        log_level="warning",
        h11_max_incomplete_event_size=REQUEST_HEAD_LIMIT,
    )
