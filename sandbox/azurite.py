"""Installs, starts and stops Azurite's Table service (the real Azure Storage emulator) on loopback.

Used three ways:
- `with AzuriteTable() as azurite: azurite.connection_string` in tests (free port, in memory);
- `python -m sandbox.azurite --port 10002 --location .sandbox/azurite` in the foreground
  (what `syncctl sandbox up` and `make run` start as a subprocess) until Ctrl-C or SIGTERM;
- `is_running(port)` to find out whether an Azurite Table service already answers there.

Azurite comes from the npm registry, pinned in the repo's package.json (`azurite` 3.35.0) and
installed into node_modules/ by `npm install`; if node_modules/.bin/azurite-table is missing it
is installed on first use. The process runs in its own process group, so stopping it (SIGINT,
which makes Azurite save and close, then SIGKILL for the whole group) leaves nothing behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from sandbox.serving import Service, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-table"
ACCOUNT_NAME = "devstoreaccount1"
# The emulator's published well-known key (the same in every Azurite install); not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_PORT = 10002
LOOPBACK = "127.0.0.1"


class AzuriteError(RuntimeError):
    """Azurite could not be installed, started or reached."""


def connection_string(port: int, host: str = LOOPBACK) -> str:
    """Connection string of the Table service of an Azurite listening on host:port."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://{host}:{port}/{ACCOUNT_NAME};"
    )


def is_running(port: int = DEFAULT_PORT, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """True when an Azurite Table service answers on host:port (checked by its Server header)."""
    try:
        response = httpx.get(f"http://{host}:{port}/{ACCOUNT_NAME}/Tables", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.headers.get("server", "").lower().startswith("azurite-table")


def ensure_installed(repo_root: Path = REPO_ROOT) -> Path:
    """Path of azurite-table; runs `npm install` in the repo root first if it is missing."""
    binary = repo_root / "node_modules" / ".bin" / "azurite-table"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise AzuriteError(
            "Azurite is not installed (node_modules/.bin/azurite-table missing) and npm is not on "
            "PATH; install Node.js 18+ with npm, then run `npm install` in " + str(repo_root)
        )
    result = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not binary.exists():
        tail = (result.stderr or result.stdout).strip()[-2000:]
        raise AzuriteError(f"`npm install` in {repo_root} did not install azurite-table:\n{tail}")
    return binary


class AzuriteTable(Service):
    """One Azurite Table service process on loopback; a context manager.

    port: None picks a free port. location: a folder for durable data; None keeps everything
    in memory (lost on stop). log_path: where Azurite's own output goes (a temporary file by
    default; None in `foreground` mode means the console).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        location: str | os.PathLike[str] | None = None,
        host: str = LOOPBACK,
        startup_timeout: float = 60.0,
        quiet: bool = True,
        log_path: str | os.PathLike[str] | None = None,
        inherit_output: bool = False,
    ) -> None:
        if host not in (LOOPBACK, "localhost"):
            raise ValueError(f"host must be loopback (127.0.0.1 or localhost), got {host!r}")
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.location = Path(location) if location is not None else None
        self.startup_timeout = startup_timeout
        self.quiet = quiet
        self.inherit_output = inherit_output
        self._log_path = Path(log_path) if log_path is not None else None
        self._log_file: object | None = None
        self._tmp_log: tempfile.TemporaryDirectory[str] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> AzuriteTable:
        if self.process is not None:
            raise AzuriteError("this Azurite is already started")
        binary = ensure_installed()
        port = self.requested_port or free_port(self.host)
        if self.requested_port and is_running(port, self.host):
            raise AzuriteError(f"an Azurite Table service already listens on {self.host}:{port}")
        argv = [
            str(binary),
            "--tableHost",
            self.host,
            "--tablePort",
            str(port),
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ]
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
            argv += ["--location", str(self.location)]
        else:
            argv += ["--inMemoryPersistence"]
        if self.quiet:
            argv += ["--silent"]
        stdout: int | object
        if self.inherit_output:
            stdout = None
        else:
            if self._log_path is None:
                self._tmp_log = tempfile.TemporaryDirectory(prefix="azurite-")
                self._log_path = Path(self._tmp_log.name) / "azurite.log"
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            stdout = self._log_file = open(self._log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            argv,
            cwd=str(self.location or REPO_ROOT),
            stdin=subprocess.DEVNULL,
            stdout=stdout,  # type: ignore[arg-type]
            stderr=subprocess.STDOUT if stdout is not None else None,
            start_new_session=True,  # own process group: stop() can kill node and any child
        )
        self.port = port
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AzuriteError(
                    f"azurite-table exited with code {self.process.returncode} before answering on "
                    f"{self.host}:{self.port}:\n{self.log_tail()}"
                )
            if is_running(self.port, self.host, timeout=0.5):
                return
            time.sleep(0.05)  # polling for readiness, not timing anything
        raise AzuriteError(
            f"azurite-table did not answer on {self.host}:{self.port} within "
            f"{self.startup_timeout:.0f}s:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT, wait, then SIGKILL the whole process group. Safe to call twice.

        SIGINT, not SIGTERM: Azurite saves its database (with --location) and closes only on
        SIGINT; on SIGTERM node dies at once and the last seconds of writes are lost.
        """
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=timeout)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        if self._tmp_log is not None:
            self._tmp_log.cleanup()
            self._tmp_log = None
            self._log_path = None

    # -- facts -----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self._port()}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return connection_string(self._port(), self.host)

    def _port(self) -> int:
        if self.port is None:
            raise AzuriteError("Azurite is not started")
        return self.port

    def log_tail(self, limit: int = 4000) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no log)"
        return self._log_path.read_bytes()[-limit:].decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.azurite",
        description="Run Azurite's Table service on loopback in the foreground until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="table port (default 10002)")
    parser.add_argument(
        "--location",
        default=None,
        help="folder for durable data (e.g. .sandbox/azurite); omitted: in memory only",
    )
    parser.add_argument("--verbose", action="store_true", help="show Azurite's access log")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535, got {args.port}")
    if is_running(args.port):
        print(f"Azurite Table service already answers on {LOOPBACK}:{args.port}", file=sys.stderr)
        return 1

    stop_requested = threading.Event()

    def _request_stop(signum: int, _frame: object) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    azurite = AzuriteTable(args.port, location=args.location, quiet=not args.verbose, inherit_output=True)
    try:
        azurite.start()
        where = f"data in {args.location}" if args.location else "in memory"
        print(f"Azurite Table service on {azurite.endpoint} ({where}); Ctrl-C stops it", flush=True)
        print(f"AzureWebJobsStorage={azurite.connection_string}", flush=True)
        while not stop_requested.wait(0.5):
            if azurite.process is None or azurite.process.poll() is not None:
                print("azurite-table exited unexpectedly", file=sys.stderr)
                return 1
    except AzuriteError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    finally:
        azurite.stop()
    print("Azurite stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
