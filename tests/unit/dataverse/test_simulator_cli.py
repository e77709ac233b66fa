"""`python -m sandbox.dataverse` starts a working simulator; bad flags are refused."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from sandbox.dataverse.__main__ import build_parser, config_from_args
from sandbox.dataverse.server import free_port


def test_cli_serves_the_web_api_and_the_token_endpoint():
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.dataverse",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--seed",
            "--seed-contacts",
            "5",
            "--window-seconds",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/_sandbox/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, proc.stderr.read1().decode() if proc.stderr else ""
            time.sleep(0.1)
        assert httpx.get(f"{base}/_sandbox/config").json()["window_seconds"] == 60.0
        assert httpx.get(f"{base}/_sandbox/tables").json()["contact"] == 5
        assert httpx.get(f"{base}/api/data/v9.2/contacts").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_refuses_non_loopback_hosts():
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.dataverse", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "loopback" in result.stderr


def test_cli_flags_map_to_config():
    args = build_parser().parse_args(
        [
            "--request-limit",
            "10",
            "--concurrency-limit",
            "4",
            "--dop-hint",
            "2",
            "--token-lifetime-seconds",
            "30",
            "--client",
            "abc:def",
            "--fractional-retry-after",
        ]
    )
    config = config_from_args(args)
    assert (config.request_limit, config.concurrency_limit, config.dop_hint) == (10, 4, 2)
    assert config.token_lifetime_seconds == 30 and config.clients == {"abc": "def"}
    assert config.fractional_retry_after is True and config.window_seconds == 300.0


def test_cli_rejects_an_unreadable_schema_file(tmp_path):
    bad = tmp_path / "tables.yaml"
    bad.write_text(
        "tables:\n  contact:\n    entity_set: contacts\n    primary_id: contactid\n    primary_name: x\n"
        "    columns:\n      x: {type: nonsense}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.dataverse", "--port", "1", "--schema", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "unknown type 'nonsense'" in result.stderr
