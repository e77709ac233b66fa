"""Fixtures of the infra checks: one checkov run per session, the function app, settings."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from typing import Any

import pytest

from shared.bus.topology import Topology, load_topology
from tests.infra import infra_checks as checks
from tests.infra.copies import BREAKS, CLEAN, break_file, copy_infra


@pytest.fixture(scope="session")
def checkov_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """ONE checkov run (it takes tens of seconds) over a copy of infra/ as committed and, per
    rule, a deliberately broken copy of the file that holds it; the report split per copy."""
    root = tmp_path_factory.mktemp("checkov")
    copy_infra(root / CLEAN)
    for name, (file, old, new) in BREAKS.items():
        # only the broken file: checkov's resource checks look at one file at a time, and a
        # smaller scan keeps the suite fast
        (root / name / file).parent.mkdir(parents=True)
        shutil.copy(checks.INFRA_DIR / file, root / name / file)
        break_file(root / name, file, old, new)
    report = checks.run_checkov(root, external_checks_dir=checks.INFRA_DIR / "policies")
    split: dict[str, dict[str, Any]] = {}
    for name in [CLEAN, *BREAKS]:
        prefix = f"/{name}/"
        split[name] = {
            key: [item for item in items if prefix in (item["file_path"] if isinstance(item, dict) else item)]
            for key, items in report.items()
        }
    return split


@pytest.fixture(scope="session")
def checkov_report(checkov_reports: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """checkov's verdict on infra/ as committed."""
    return checkov_reports[CLEAN]


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
def function_app(local_values: dict[str, str]) -> Any:
    """The real FunctionApp of function_app.py, imported with the example settings (its start-up
    validates settings), so get_functions() lists every trigger as the Functions host would.
    The environment is restored right after the import."""
    from shared import settings as settings_module

    saved = dict(os.environ)
    os.environ.update(local_values)
    settings_module.get_settings.cache_clear()
    # A fresh import, as a new worker would do: get_functions() may be called only once per
    # app object, and other tests (the local host's) may have imported and indexed it already.
    sys.modules.pop("function_app", None)
    try:
        module = importlib.import_module("function_app")
    except Exception as exc:
        pytest.fail(
            f"function_app.py does not import with the Values of local.settings.example.json, so its "
            f"triggers cannot be checked: {type(exc).__name__}: {exc}"
        )
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings_module.get_settings.cache_clear()
    return module.app
