"""The triggers the probe apps use (each probe app declares one function on its own app).

The probes are loaded by the real worker as scripts from this folder (PYTHON_SCRIPT_FILE_NAME)
and by the local host by module name with this folder on sys.path, so they import this module
by its bare name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import azure.functions as func

Decorator = Callable[[Callable[..., Any]], Any]


def new_app() -> func.FunctionApp:
    return func.FunctionApp()


def batch_topic(app: func.FunctionApp) -> Decorator:
    """A batch topic trigger with manual settlement (our flows' trigger) on parameter `msgs`."""
    return app.service_bus_topic_trigger(
        arg_name="msgs",
        topic_name="orders",
        subscription_name="batch",
        connection="ServiceBusConnection",
        cardinality="many",
        auto_complete_messages=False,
    )


def one_topic(app: func.FunctionApp) -> Decorator:
    """A single-message topic trigger on parameter `msg`."""
    return app.service_bus_topic_trigger(
        arg_name="msg", topic_name="orders", subscription_name="one", connection="ServiceBusConnection"
    )


def http(app: func.FunctionApp) -> Decorator:
    """An HTTP trigger on parameter `req`, with the $return HTTP output."""
    return app.route(route="probe")


def timer(app: func.FunctionApp) -> Decorator:
    """A timer trigger on parameter `timer`."""
    return app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
