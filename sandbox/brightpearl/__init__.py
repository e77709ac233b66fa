"""Brightpearl API simulator: `python -m sandbox.brightpearl --host 127.0.0.1 --port 8101`."""

from sandbox.brightpearl.app import Simulator, create_app
from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.server import SimulatorServer

__all__ = ["Simulator", "SimulatorConfig", "SimulatorServer", "create_app"]
