"""With the app settings Bicep deploys, the Service Bus SDK-type binding extension imports although
the Python 3.11/3.12 worker has already loaded its own, older grpc and protobuf.

The extension needs protobuf >= 6.32 and grpcio >= 1.74 (its generated settlement stubs check
both at import); the worker for Python 3.8-3.12 ships protobuf ~=4.25.3 and grpcio ~=1.59.0
(Azure/azure-functions-python-worker, workers/pyproject.toml). The worker's copies are installed
once into .cache/worker-deps/ (git-ignored) laid out like the host's worker folder, and
worker_path_probe.py reproduces the worker's sys.path handling around them in a subprocess.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.infra import infra_checks as checks
from tests.infra.test_azure_settings import module_params

# What the platform's worker for Python 3.8-3.12 ships (latest releases within its ~= pins).
WORKER_PINS = {"grpcio": "1.59.5", "protobuf": "4.25.9"}
PROBE = Path(__file__).with_name("worker_path_probe.py")
CACHE_ROOT = checks.ROOT / ".cache" / "worker-deps"
PIP_TIMEOUT_SECONDS = 600
ORDERS = {
    # sys.path orders the worker documents (dependency.py); the worker's folder first, as Core Tools
    # does, is the one where its copies win without isolation
    "worker-first": ["worker", "app_packages", "app"],
    "app-first": ["app", "app_packages", "worker"],
}


def _worker_folder() -> Path:
    """The worker's packages, installed once per interpreter and pins, in the host's layout."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    key = hashlib.sha256(json.dumps([version, WORKER_PINS, sys.platform]).encode()).hexdigest()[:12]
    system = {"Windows": "WINDOWS", "Darwin": "OSX"}.get(platform.system(), "LINUX")
    home = CACHE_ROOT / f"py{version}-{key}"
    folder = home / "workers" / "python" / version / system / "X64"
    if (home / ".complete").is_file():
        return folder
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with (CACHE_ROOT / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes build it once
        if (home / ".complete").is_file():
            return folder
        staging = Path(tempfile.mkdtemp(dir=CACHE_ROOT, prefix=".build-"))
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-deps", "--only-binary=:all:", "--target", str(staging),
            *(f"{name}=={pin}" for name, pin in WORKER_PINS.items()),
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
            )
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.fail(
                f"installing the worker's packages {WORKER_PINS} timed out after {PIP_TIMEOUT_SECONDS} s"
            )
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.fail(
                f"could not install the worker's packages {WORKER_PINS} into {folder} "
                f"(pip exit {done.returncode}): {done.stderr.strip()[-1500:]}"
            )
        shutil.rmtree(home, ignore_errors=True)
        folder.parent.mkdir(parents=True)
        staging.rename(folder)
        (home / ".complete").write_text(json.dumps(WORKER_PINS))
    return folder


@pytest.fixture(scope="module")
def hosting(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Paths as the host lays them out: the worker's folder, the app folder (wwwroot) and the app's
    packages under it (.python_packages/lib/site-packages, here a link to this venv's packages)."""
    app = tmp_path_factory.mktemp("wwwroot")
    packages = app / ".python_packages" / "lib" / "site-packages"
    packages.parent.mkdir(parents=True)
    packages.symlink_to(sysconfig.get_paths()["purelib"], target_is_directory=True)
    return {"worker": str(_worker_folder()), "app": str(app), "app_packages": str(packages)}


def run_worker(hosting: dict[str, str], order: str, isolation: str | None) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["AzureWebJobsScriptRoot"] = hosting["app"]
    if isolation is not None:
        env["PYTHON_ISOLATE_WORKER_DEPENDENCIES"] = isolation
    host_order = json.dumps([hosting[part] for part in ORDERS[order]])
    # -I -S: no site-packages of this venv, no user site, no PYTHON* variables; the path is the host's
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(PROBE), host_order],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"the worker probe crashed: {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def deployed_isolation(python_version: str) -> str | None:
    """PYTHON_ISOLATE_WORKER_DEPENDENCIES as the Bicep app settings set it for that Python."""
    params = dict(module_params("private", "managedIdentity"), pythonVersion=python_version)
    return checks.azure_app_settings(checks.INFRA_DIR, params).get("PYTHON_ISOLATE_WORKER_DEPENDENCIES")


def allowed_python_versions() -> list[str]:
    module = checks.parse_bicep(checks.INFRA_DIR / checks.FUNCTION_APP_MODULE)
    decorators = module["parameters"]["pythonVersion"]["decorators"]
    return next(d["argument"] for d in decorators if d["type"] == "allowed")


def test_bicep_and_the_local_example_turn_worker_dependency_isolation_on():
    versions = allowed_python_versions()
    assert {"3.11", "3.12", "3.13"} <= set(versions)
    for version in versions:
        assert deployed_isolation(version) == "1", f"Python {version}: isolation not set by Bicep"
    local = checks.load_local_settings()
    assert local.get("PYTHON_ISOLATE_WORKER_DEPENDENCIES") == "1", "local.settings.example.json"


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_the_extension_imports_over_the_workers_older_grpc_and_protobuf_as_deployed(
    hosting: dict[str, str], order: str
):
    seen = run_worker(hosting, order, deployed_isolation("3.11"))
    # the worker really ran on its old copies first ...
    assert seen["worker_grpc"]["version"] == WORKER_PINS["grpcio"]
    assert seen["worker_protobuf"]["version"] == WORKER_PINS["protobuf"]
    assert seen["worker_grpc"]["file"].startswith(hosting["worker"])
    # ... and the app gets its own: the extension imports, on the app's grpc and protobuf
    assert seen["imported"], seen["error"]
    assert seen["app_grpc"]["version"] == importlib.metadata.version("grpcio")
    assert seen["app_protobuf"]["version"] == importlib.metadata.version("protobuf")
    assert seen["app_grpc"]["file"].startswith(hosting["app_packages"])
    assert seen["sys_path"] == [hosting["app_packages"], hosting["worker"], hosting["app"]]


def test_without_isolation_the_workers_copies_win_and_the_extension_does_not_import(hosting: dict[str, str]):
    seen = run_worker(hosting, "worker-first", None)
    assert not seen["imported"]
    assert "protobuf" in seen["error"] or "grpc" in seen["error"], seen["error"]
    assert seen["app_grpc"]["version"] == WORKER_PINS["grpcio"]
    assert seen["app_protobuf"]["version"] == WORKER_PINS["protobuf"]
