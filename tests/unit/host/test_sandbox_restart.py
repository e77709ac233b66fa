"""`syncctl sandbox up` restarts a crashed Functions host and keeps the simulators (issue 17
item 6): SIGKILL the host child, see it come back with a log line and a restart count, and
find the Brightpearl simulator's data still there."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time

import httpx

from sandbox.up import Service, Supervisor, port_open

# A stand-in for the Functions host: answers GET /api/health like sandbox.host does.
FAKE_HOST = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_killed_host_is_restarted_and_the_simulator_keeps_its_state():
    bp_port, host_port = free_port(), free_port()
    simulator = Service(
        "brightpearl simulator",
        [sys.executable, "-m", "sandbox.brightpearl", "--host", "127.0.0.1", "--port", str(bp_port)],
        bp_port,
        f"http://127.0.0.1:{bp_port}",
        ready_path="/_sandbox/health",
    )
    host = Service(
        "functions host",
        [sys.executable, "-c", FAKE_HOST, str(host_port)],
        host_port,
        f"http://127.0.0.1:{host_port}/api",
        ready_path="/api/health",
        restart=True,
    )
    lines: list[str] = []
    supervisor = Supervisor([simulator, host], echo=lines.append, check_interval=0.05)
    outcome: list[int] = []
    waiter: threading.Thread | None = None
    try:
        supervisor.start(ready_timeout=60)
        base = f"http://127.0.0.1:{bp_port}/_sandbox"
        httpx.post(f"{base}/seed", json={"contacts": 3}, timeout=10).raise_for_status()
        before = httpx.get(f"{base}/state/contacts", timeout=10).json()
        simulator_pid, first_host_pid = simulator.process.pid, host.process.pid
        waiter = threading.Thread(target=lambda: outcome.append(supervisor.wait()))
        waiter.start()

        os.kill(first_host_pid, signal.SIGKILL)
        wait_for(lambda: host.restarts == 1 and any("is back" in line for line in lines), "the restart")

        assert host.process.pid != first_host_pid and host.process.poll() is None
        assert httpx.get(f"http://127.0.0.1:{host_port}/api/health", timeout=5).status_code == 200
        assert simulator.process.pid == simulator_pid and simulator.process.poll() is None
        assert httpx.get(f"{base}/state/contacts", timeout=10).json() == before  # state intact
        assert (
            f"functions host exited with code {-signal.SIGKILL}; restarting it in 1s (restart 1)"
            in "\n".join(lines)
        )
    finally:
        supervisor._stopping = True  # what SIGINT/SIGTERM do in sandbox.up.run
        if waiter is not None:
            waiter.join(10)
        supervisor.stop(grace=5)
    assert outcome == [0]  # the sandbox kept running until asked to stop
    assert not port_open(host_port) and not port_open(bp_port)


def test_a_dead_simulator_still_stops_the_sandbox():
    port = free_port()
    simulator = Service(
        "brightpearl simulator", [sys.executable, "-c", "import time; time.sleep(60)"], port, ""
    )
    supervisor = Supervisor([simulator], echo=lambda line: None, check_interval=0.05)
    simulator.process = __import__("subprocess").Popen(simulator.argv, start_new_session=True)
    os.kill(simulator.process.pid, signal.SIGKILL)
    try:
        assert supervisor.wait() == 1
    finally:
        supervisor.stop(grace=1)
