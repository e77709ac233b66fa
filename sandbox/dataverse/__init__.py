"""Dataverse Web API simulator (loopback only): see docs/sandbox-dataverse.md."""

from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import SimulatorConfig
from sandbox.dataverse.server import SimulatorServer

__all__ = ["Simulator", "SimulatorConfig", "SimulatorServer"]
