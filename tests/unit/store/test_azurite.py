"""sandbox.azurite: start, readiness, durable data across restarts, clean stop, the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from sandbox import azurite as azurite_module
from sandbox.azurite import AzuriteError, AzuriteTable, free_port, is_running
from shared.store import StateStore

REPO_ROOT = Path(__file__).resolve().parents[3]


def port_of(connection_string: str) -> int:
    endpoint = next(p for p in connection_string.split(";") if p.startswith("TableEndpoint="))
    return int(endpoint.split(":")[-1].split("/")[0])


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_session_azurite_answers_and_a_free_port_does_not(azurite: str) -> None:
    assert is_running(port_of(azurite))
    assert not is_running(free_port())


def test_data_survives_a_restart_with_a_location_and_stop_leaves_no_process(tmp_path: Path) -> None:
    location = tmp_path / "azurite"
    with AzuriteTable(location=location) as first:
        pid = first.pid
        assert pid is not None
        group = [p.pid for p in psutil.Process(pid).children(recursive=True)] + [pid]
        store = StateStore.from_connection_string(first.connection_string, table_prefix="keep")
        store.ensure_tables()
        store.cursors.save("brightpearl:contact", "2026-03-01T00:00:00Z")
        store.close()
        port = first.port
    assert_gone(group)
    assert port is not None and not is_running(port)
    assert any(location.iterdir())  # Azurite wrote its database there

    with AzuriteTable(location=location) as second:
        store = StateStore.from_connection_string(second.connection_string, table_prefix="keep")
        assert store.cursors.get("brightpearl:contact").value == "2026-03-01T00:00:00Z"  # type: ignore[union-attr]
        store.close()


def test_in_memory_azurite_starts_empty(azurite: str) -> None:
    with AzuriteTable() as fresh:
        assert fresh.port != port_of(azurite)
        store = StateStore.from_connection_string(fresh.connection_string, table_prefix="keep")
        assert store.health().missing_tables == list(store.table_names.values())
        store.close()


def test_refuses_a_port_where_azurite_already_runs(azurite: str) -> None:
    with pytest.raises(AzuriteError, match="already listens"):
        AzuriteTable(port_of(azurite)).start()


def test_refuses_a_non_loopback_host() -> None:
    with pytest.raises(ValueError, match="loopback"):
        AzuriteTable(host="0.0.0.0")


def test_missing_install_without_npm_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(azurite_module.shutil, "which", lambda name: None)
    with pytest.raises(AzuriteError, match="npm is not on PATH"):
        azurite_module.ensure_installed(tmp_path)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_runs_in_the_foreground_until_stopped(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = free_port()
    cli = subprocess.Popen(
        [sys.executable, "-m", "sandbox.azurite", "--port", str(port),
         "--location", str(tmp_path / "data")],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not is_running(port):  # readiness polling, not timing
            assert cli.poll() is None, cli.stdout.read() if cli.stdout else ""
            assert time.monotonic() < deadline, "the CLI's Azurite never answered"
            time.sleep(0.1)
        family = [p.pid for p in psutil.Process(cli.pid).children(recursive=True)]
        assert family, "Azurite should run as a child of the CLI"
        os.kill(cli.pid, stop_signal)
        output, _ = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, output
    assert f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1" in output
    assert "Azurite stopped" in output
    assert not is_running(port)
    assert_gone(family)
