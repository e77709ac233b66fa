"""The sandbox's local Azure Functions host: HTTP, Service Bus topic and timer triggers.

Programmatic use: `with LocalHost("function_app", bus=bus) as host: ...`;
command line: `python -m sandbox.host` (see sandbox/host/__main__.py).
"""

from sandbox.host.config import HostConfigError
from sandbox.host.index import FunctionInfo
from sandbox.host.invocation import InvocationResult
from sandbox.host.runtime import LocalHost
from sandbox.host.settlement import LocalMessageActions

__all__ = ["FunctionInfo", "HostConfigError", "InvocationResult", "LocalHost", "LocalMessageActions"]
