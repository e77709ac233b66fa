"""Shutdown of the local host (nothing lost, nothing left running) and its command line."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from shared.bus.port import OutgoingMessage
from tests.unit.host.conftest import TOPIC

APP = "tests.unit.host.apps.topic_app"
REPO_ROOT = Path(__file__).resolve().parents[3]


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def host_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sandbox-host")]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def publish(bus, target: str, *ids: str) -> None:
    bus.publish(
        TOPIC,
        [OutgoingMessage(body=b"{}", message_id=i, application_properties={"target": target}) for i in ids],
    )


def test_stop_waits_for_running_invocations_which_then_settle(make_host, bus, clock):
    publish(bus, "slow", "inflight-1")
    host = make_host(APP, bus=bus, clock=clock)
    host.start()
    port = host.port
    wait_for(host.module.SLOW_ENTERED.is_set, "the slow function to start")

    stopper = threading.Thread(target=host.stop, kwargs={"grace": 10.0})
    stopper.start()
    time.sleep(0.1)
    assert stopper.is_alive()  # waiting for the invocation
    host.module.SLOW_RELEASE.set()
    stopper.join(15)

    assert not stopper.is_alive()
    assert host.module.SLOW_SETTLE_ERRORS == []
    assert bus.counts(TOPIC, "slow").active == 0  # completed by the function
    assert host_threads() == []
    assert not port_open(port)


def test_invocations_still_running_after_the_grace_period_release_their_messages(make_host, bus, clock):
    publish(bus, "limited", *[f"wait-{i}" for i in range(5)])
    host = make_host(
        APP, bus=bus, clock=clock, host_json={"extensions": {"serviceBus": {"maxConcurrentCalls": 2}}}
    )
    host.start()
    wait_for(lambda: host.module.LIMIT_STATE["entered"] == 2, "two invocations")

    host.stop(grace=0.2)

    # Nothing lost: all five are available again, the two in flight were abandoned (not completed).
    assert bus.counts(TOPIC, "limited").active == 5
    again = bus.receive(TOPIC, "limited", max_messages=5)
    assert sorted(m.message_id for m in again) == [f"wait-{i}" for i in range(5)]
    assert sorted(m.delivery_count for m in again) == [1, 1, 1, 2, 2]
    # The stuck sync functions end when released; then no host thread is left.
    host.module.LIMIT_RELEASE.set()
    wait_for(lambda: host_threads() == [], "host threads to end")


def test_stop_is_idempotent_and_the_host_cannot_be_used_afterwards(make_host, bus):
    host = make_host(APP, bus=bus)
    host.start()
    host.stop()
    host.stop()
    with pytest.raises(RuntimeError, match="not running"):
        host.wait_idle(1)


CLI_APP = """
import os
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="hello", auth_level=func.AuthLevel.ANONYMOUS)
def hello(req: func.HttpRequest) -> str:
    return os.environ["GREETING"]


@app.route(route="private")
def private(req: func.HttpRequest) -> str:
    return "secret"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "function_app.py").write_text(CLI_APP)
    (tmp_path / "host.json").write_text(
        json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": "api"}}})
    )
    (tmp_path / "local.settings.example.json").write_text(
        json.dumps(
            {"IsEncrypted": False, "Values": {"GREETING": "from-example", "LOCAL_FUNCTION_KEY": "cli-key"}}
        )
    )
    return tmp_path


def start_cli(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("GREETING", "LOCAL_FUNCTION_KEY")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.host", "--project-root", str(project), "--port", "0", *args],
        cwd=REPO_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    assert process.stdout is not None
    for line in process.stdout:
        output += line
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return process, match.group(1), output
    process.wait(10)
    raise AssertionError(f"host did not start:\n{output}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_serves_the_app_and_exits_cleanly_on_a_signal(project, sig):
    process, url, _ = start_cli(project)
    try:
        assert httpx.get(f"{url}/api/hello").text == "from-example"
        assert httpx.get(f"{url}/api/private").status_code == 401
        assert httpx.get(f"{url}/api/private", headers={"x-functions-key": "cli-key"}).text == "secret"
    finally:
        process.send_signal(sig)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    assert "Stopping the local host" in rest
    assert not port_open(int(url.rsplit(":", 1)[1]))


def test_cli_lists_functions_and_real_environment_wins(project):
    (project / "local.settings.json").write_text(
        json.dumps({"Values": {"GREETING": "from-local", "LOCAL_FUNCTION_KEY": "cli-key"}})
    )
    process, url, output = start_cli(project, env={"GREETING": "from-environment"})
    assert "Functions:" in output
    assert f"hello: [GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS] {url}/api/hello (authLevel=ANONYMOUS)" in output
    assert (
        f"private: [GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS] {url}/api/private (authLevel=FUNCTION)" in output
    )
    try:
        assert httpx.get(f"{url}/api/hello").text == "from-environment"
    finally:
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest


def test_cli_refuses_a_non_loopback_address(project):
    process = subprocess.run(
        [sys.executable, "-m", "sandbox.host", "--project-root", str(project), "--host", "0.0.0.0"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 2
    assert "not a loopback address" in process.stderr


def test_cli_reports_a_port_in_use(project):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = subprocess.run(
            [sys.executable, "-m", "sandbox.host", "--project-root", str(project), "--port", str(port)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in process.stderr


def test_cli_default_port_comes_from_local_http_port(project):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings = json.loads((project / "local.settings.example.json").read_text())
    settings["Host"] = {"LocalHttpPort": free_port}
    (project / "local.settings.example.json").write_text(json.dumps(settings))
    environment = {k: v for k, v in os.environ.items() if k not in ("GREETING", "LOCAL_FUNCTION_KEY")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.host", "--project-root", str(project)],
        cwd=REPO_ROOT,
        env={**environment, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if "listening on" in line:
                assert f"http://127.0.0.1:{free_port}" in line
                break
        assert httpx.get(f"http://127.0.0.1:{free_port}/api/hello").text == "from-example"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
