"""`python -m sandbox.brightpearl` starts a working simulator with the flags given."""

from __future__ import annotations

import subprocess
import sys
import threading

import httpx

from sandbox.brightpearl.server import free_port


def test_module_cli_serves_the_api_with_flag_overrides():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.brightpearl",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--rate-limit",
            "7",
            "--rate-window-seconds",
            "5",
            "--contact-webhooks",
            "true",
            "--seed-contacts",
            "3",
            "--seed-orders",
            "0",
            "--accounts",
            "acme",
            "other",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        health = None
        for _ in range(300):  # start-up poll (an event, not a time assertion)
            try:
                health = httpx.get(f"{base}/_sandbox/health", timeout=1)
                break
            except httpx.TransportError:
                threading.Event().wait(0.05)
        assert health is not None and health.json() == {"ok": True, "accounts": ["acme", "other"]}
        config = httpx.get(f"{base}/_sandbox/config").json()
        assert (config["rate_limit"], config["rate_window_seconds"], config["contact_webhooks"]) == (
            7,
            5.0,
            True,
        )
        answer = httpx.get(
            f"{base}/public-api/acme/contact-service/contact/1-1000",
            headers={
                "brightpearl-app-ref": "sandbox-app",
                "brightpearl-account-token": "sandbox-account-token",
            },
        )
        assert answer.status_code == 200 and len(answer.json()["response"]) == 3
        assert answer.headers["brightpearl-requests-remaining"] == "6"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_module_cli_rejects_bad_options():
    done = subprocess.run(
        [sys.executable, "-m", "sandbox.brightpearl", "--rate-limit", "zero"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "rate_limit" in done.stderr
