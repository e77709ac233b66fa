"""Fixtures of the platform checks: the real Python worker (a cached 3.13 venv) and the app's
settings as the example settings file gives them."""

from __future__ import annotations

import pytest

from sandbox.host.config import LOCAL_SETTINGS_EXAMPLE_FILE, load_local_settings
from tests.platform.worker_env import (
    PROJECT_ROOT,
    WorkerEnv,
    WorkerEnvError,
    ensure_worker_env,
    find_python313,
)

NO_PYTHON_313 = (
    "NO PYTHON 3.13 INTERPRETER FOUND (looked in $PYENV_ROOT, `pyenv root`, ~/.pyenv and PATH): "
    "the check against the REAL Azure Functions Python worker DID NOT RUN, so nothing here shows "
    "that the app indexes in Azure. Install Python 3.13 (e.g. `pyenv install 3.13`) and rerun."
)


@pytest.fixture(scope="session")
def worker() -> WorkerEnv:
    """The real worker's environment, built on first use (a minute or so) and cached after."""
    python = find_python313()
    if python is None:
        pytest.skip(NO_PYTHON_313)
    try:
        return ensure_worker_env(python)
    except WorkerEnvError as exc:
        pytest.fail(f"could not build the real worker's environment: {exc}")


@pytest.fixture(scope="session")
def app_settings() -> dict[str, str]:
    """The Values of local.settings.example.json (function_app.py validates them at import)."""
    values, _ = load_local_settings(PROJECT_ROOT, PROJECT_ROOT / LOCAL_SETTINGS_EXAMPLE_FILE)
    return values
