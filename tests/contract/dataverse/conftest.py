"""Dataverse contract tests: the real client against the simulator over loopback."""

from tests.contract.dataverse.simfixtures import client, dataverse_server, sim

__all__ = ["client", "dataverse_server", "sim"]
