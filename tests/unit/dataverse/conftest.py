"""Dataverse unit tests: the simulator runs under uvicorn on a free 127.0.0.1 port in a thread."""

from tests.contract.dataverse.simfixtures import client, dataverse_server, sim

__all__ = ["client", "dataverse_server", "sim"]
