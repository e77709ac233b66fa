"""The real Azure Functions Python worker, in a cached Python 3.13 virtual environment.

The platform's Python 3.13 worker is the library worker `azure-functions-runtime` (pinned in
requirements-worker.txt beside this file) driven by a proxy worker that hands it the protobuf
messages of the host contract. This module finds a Python 3.13 interpreter (pyenv or PATH),
builds once a venv with the pinned worker plus the app's requirements.txt and the compiled
contract (worker_rpc.proto), and runs worker_driver.py in it on an app directory.

The venv lives under .cache/worker-env/ (git-ignored), in a folder named by a hash of
everything that goes into it, so a changed pin or requirements.txt builds a new one; a file lock
keeps parallel test processes from building it twice. By hand,
`.venv/bin/python -m tests.platform.worker_env` builds it and prints the worker's index of
function_app.py (or the worker's refusal).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
CACHE_DIR = PROJECT_ROOT / ".cache" / "worker-env"
WORKER_REQUIREMENTS = HERE / "requirements-worker.txt"
APP_REQUIREMENTS = PROJECT_ROOT / "requirements.txt"
PROTO = HERE / "worker_rpc.proto"
DRIVER = HERE / "worker_driver.py"
PYTHON_VERSION = (3, 13)
PIP_TIMEOUT_SECONDS = 900
DRIVER_TIMEOUT_SECONDS = 120


class WorkerEnvError(RuntimeError):
    """The worker environment could not be built (the message says which step and why)."""


def _pyenv_roots() -> Iterator[Path]:
    if os.environ.get("PYENV_ROOT"):
        yield Path(os.environ["PYENV_ROOT"])
    pyenv = shutil.which("pyenv")
    if pyenv:
        try:
            out = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            yield Path(out.stdout.strip())
    yield Path.home() / ".pyenv"


def _patch_level(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.name)[:3])


def _candidates() -> Iterator[Path]:
    wanted = "{}.{}".format(*PYTHON_VERSION)
    for root in _pyenv_roots():
        versions = sorted(
            (p for p in (root / "versions").glob(f"{wanted}*") if re.fullmatch(rf"{wanted}\.\d+", p.name)),
            key=_patch_level,
            reverse=True,
        )
        for version in versions:
            yield version / "bin" / f"python{wanted}"
    on_path = shutil.which(f"python{wanted}")
    if on_path:
        yield Path(on_path)


def _version_of(python: Path) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [str(python), "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2:
        return None  # e.g. a pyenv shim for a version that is not selected
    return int(parts[0]), int(parts[1])


def find_python313() -> Path | None:
    """A working Python 3.13 interpreter: pyenv's newest 3.13.x first, then python3.13 on PATH."""
    seen: set[Path] = set()
    for candidate in _candidates():
        if candidate in seen or not candidate.exists():
            continue
        seen.add(candidate)
        if _version_of(candidate) == PYTHON_VERSION:
            return candidate
    return None


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (WORKER_REQUIREMENTS, APP_REQUIREMENTS, PROTO):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update("{}.{}".format(*PYTHON_VERSION).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class WorkerEnv:
    """A ready environment: its interpreter and the folder of the compiled contract."""

    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def protos_dir(self) -> Path:
        return self.root / "worker-protos"

    def index(
        self, app_dir: Path, settings: Mapping[str, str], script_file: str | None = None
    ) -> dict[str, Any]:
        """Run the worker's init and functions-metadata requests on `app_dir` (a fresh process,
        as on the platform) and return what worker_driver.py reports."""
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", ""),
            **settings,
            "WORKER_CHECK_PROTOS_DIR": str(self.protos_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if script_file:
            env["PYTHON_SCRIPT_FILE_NAME"] = script_file
        with tempfile.TemporaryDirectory(prefix="worker-index-") as tmp:
            out = Path(tmp) / "outcome.json"
            proc = subprocess.run(
                [str(self.python), str(DRIVER), str(app_dir), str(out)],
                env=env,
                cwd=str(app_dir),
                capture_output=True,
                text=True,
                timeout=DRIVER_TIMEOUT_SECONDS,
                check=False,
            )
            if proc.returncode != 0 or not out.exists():
                raise WorkerEnvError(
                    f"worker_driver.py exited {proc.returncode} on {app_dir}:\n"
                    f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
                )
            outcome: dict[str, Any] = json.loads(out.read_text())
            return outcome


def _run(step: str, args: list[str], timeout: int = PIP_TIMEOUT_SECONDS) -> None:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WorkerEnvError(f"{step}: no result after {timeout}s ({' '.join(args)})") from exc
    if proc.returncode != 0:
        raise WorkerEnvError(
            f"{step} failed (exit {proc.returncode}): {' '.join(args)}\n{proc.stdout[-3000:]}\n"
            f"{proc.stderr[-3000:]}"
        )


def _build(python: Path, target: Path) -> None:
    _run("creating the venv", [str(python), "-m", "venv", str(target)])
    pip = [str(target / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(
        "installing the worker and requirements.txt",
        [*pip, "install", "--quiet", "-r", str(WORKER_REQUIREMENTS), "-r", str(APP_REQUIREMENTS)],
    )
    protos = target / "worker-protos"
    protos.mkdir()
    _run(
        "compiling worker_rpc.proto",
        [
            str(target / "bin" / "python"),
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO.parent}",
            f"--python_out={protos}",
            str(PROTO),
        ],
        timeout=120,
    )


def ensure_worker_env(python: Path) -> WorkerEnv:
    """The cached environment for this fingerprint, built now if missing (under a file lock)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    name = f"py{PYTHON_VERSION[0]}{PYTHON_VERSION[1]}-{_fingerprint()}"
    ready = CACHE_DIR / name
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (ready / ".complete").exists():
            return WorkerEnv(ready)
        shutil.rmtree(ready, ignore_errors=True)
        try:
            # Built where it will stay: a venv's scripts carry its absolute path.
            _build(python, ready)
        except BaseException:
            shutil.rmtree(ready, ignore_errors=True)
            raise
        (ready / ".complete").write_text(json.dumps({"python": str(python)}))
        for stale in CACHE_DIR.iterdir():  # environments of older pins
            if stale.is_dir() and stale.name != name:
                shutil.rmtree(stale, ignore_errors=True)
        return WorkerEnv(ready)


def main() -> None:
    """Build (or reuse) the environment and show how the real worker indexes function_app.py."""
    from sandbox.host.config import LOCAL_SETTINGS_EXAMPLE_FILE, load_local_settings

    python = find_python313()
    if python is None:
        sys.exit("no Python 3.13 interpreter found (pyenv versions, PYENV_ROOT, ~/.pyenv, PATH)")
    env = ensure_worker_env(python)
    print(f"worker environment: {env.root} (from {python})")
    settings, _ = load_local_settings(PROJECT_ROOT, PROJECT_ROOT / LOCAL_SETTINGS_EXAMPLE_FILE)
    outcome = env.index(PROJECT_ROOT, settings)
    print(f"azure-functions-runtime {outcome['worker_version']}: init {outcome['init']['status']}")
    if outcome["init"]["status"] != "Success":
        sys.exit(f"the worker refuses function_app.py: {outcome['init']['message']}")
    for fn in outcome["functions"]:
        print(f"  {fn['name']}")
        for binding in fn["raw_bindings"]:
            print(f"    {json.dumps(binding, sort_keys=True)}")


if __name__ == "__main__":
    main()
