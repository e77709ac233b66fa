"""Fixtures of the infra checks: one checkov run per session, the function app, settings."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Iterator
from typing import Any

import pytest

from shared.bus.topology import Topology, load_topology
from tests.infra import infra_checks as checks


@pytest.fixture(scope="session")
def checkov_report() -> dict[str, Any]:
    return checks.run_checkov(checks.INFRA_DIR)


@pytest.fixture(scope="session")
def topology() -> Topology:
    return load_topology(checks.INFRA_DIR / "topology.json")


@pytest.fixture(scope="session")
def local_values() -> dict[str, str]:
    return checks.load_local_settings()


@pytest.fixture(scope="session")
def code_settings() -> dict[str, checks.CodeSetting]:
    return checks.code_settings()


@pytest.fixture(scope="session")
def function_app(local_values: dict[str, str]) -> Iterator[Any]:
    """The real FunctionApp of function_app.py, imported with the example settings (its start-up
    validates settings), so get_functions() lists every trigger as the Functions host would."""
    from shared import settings as settings_module

    saved = dict(os.environ)
    os.environ.update(local_values)
    cached = getattr(settings_module.get_settings, "cache_clear", None)
    if isinstance(cached, functools.partial) or callable(cached):
        settings_module.get_settings.cache_clear()
    try:
        module = importlib.import_module("function_app")
        yield module.app
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings_module.get_settings.cache_clear()
