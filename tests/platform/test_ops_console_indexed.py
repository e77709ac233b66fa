"""The operations console as the real Azure Functions Python worker indexes function_app.py:
every page and action is an HTTP function under /api/ops at the admin auth level."""

from __future__ import annotations

from typing import Any

import pytest

from tests.platform.worker_env import PROJECT_ROOT, WorkerEnv

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the first run builds the worker venv

CONSOLE = {
    "ops_console": ("ops", ["GET"]),
    "ops_data": ("ops/data", ["GET"]),
    "ops_dead_letters": ("ops/deadletters", ["GET"]),
    "ops_dead_letter": ("ops/deadletter", ["GET"]),
    "ops_dead_letter_action": ("ops/deadletters/{action:alpha}", ["POST"]),
    "ops_triage": ("ops/triage", ["GET"]),
    "ops_triage_resubmit": ("ops/triage/resubmit", ["POST"]),
    "ops_static": ("ops/static/{name}", ["GET"]),
    "ops_history": ("ops/history", ["GET"]),
    "ops_sync": ("ops/sync", ["POST"]),
    "ops_review": ("ops/review", ["GET"]),
    "ops_review_decision": ("ops/review/{decision:alpha}", ["POST"]),
    "ops_flow_action": ("ops/flows/{action:alpha}", ["POST"]),
}


def test_the_worker_indexes_the_console_at_admin_level(worker: WorkerEnv, app_settings: dict[str, str]):
    indexed: dict[str, Any] = worker.index(PROJECT_ROOT, app_settings)
    assert indexed["init"]["status"] == "Success", indexed["init"]["message"]
    triggers = {
        fn["name"]: next(b for b in fn["raw_bindings"] if b["type"] == "httpTrigger")
        for fn in indexed["functions"]
        if fn["name"] in CONSOLE
    }
    assert {
        name: (b["route"], [m.upper() for m in b["methods"]], str(b["authLevel"]).upper())
        for name, b in triggers.items()
    } == {name: (route, methods, "ADMIN") for name, (route, methods) in CONSOLE.items()}
