"""The local host enforces the request body limit while reading the stream, as the real host
does: an oversized body gets 413, the function is not called, the rest is never read."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

from sandbox.host.config import HostConfigError
from sandbox.host.http import BODY_LIMIT_SETTING, DEFAULT_BODY_LIMIT, FunctionKeys, body_limit, build_http_app
from sandbox.host.index import index_functions
from sandbox.host.invocation import InvocationResult

CHUNK = b"x" * 1024
APP_SOURCE = """
import azure.functions as func

app = func.FunctionApp()


@app.route(route="echo", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> str:
    return req.get_body().decode()
"""


def _app_module() -> types.ModuleType:
    module = types.ModuleType("body_limit_app")
    exec(compile(APP_SOURCE, "body_limit_app.py", "exec"), module.__dict__)  # noqa: S102 - our own code
    return module


FUNCTIONS = index_functions(_app_module(), {})


def serve(monkeypatch, limit: str, chunks: int, *, content_length: int | None = None) -> dict[str, Any]:
    """POST `chunks` KiB to the anonymous /api/echo through the ASGI app; count what was read."""
    monkeypatch.setenv(BODY_LIMIT_SETTING, limit)
    functions = FUNCTIONS
    invoked: list[str] = []

    async def invoke(function, arguments, reason) -> InvocationResult:
        invoked.append(function.name)
        return InvocationResult(invocation_id="1", function_name=function.name, succeeded=True, result="ok")

    app = build_http_app(
        functions,
        "api",
        FunctionKeys({"LOCAL_FUNCTION_KEY": "k", "LOCAL_MASTER_KEY": "m"}, functions),
        invoke,
    )
    received = {"chunks": 0}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received["chunks"] += 1
        return {"type": "http.request", "body": CHUNK, "more_body": received["chunks"] < chunks}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"text/plain")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/echo",
        "raw_path": b"/api/echo",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 7071),
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return {"status": status, "read": received["chunks"], "invoked": invoked}


def test_an_endless_body_is_cut_off_at_the_limit_without_reading_the_rest(monkeypatch):
    out = serve(monkeypatch, limit="4096", chunks=100_000)  # about 100 MB, chunked
    assert out["status"] == 413 and out["invoked"] == []
    assert out["read"] <= 5  # 4 KiB allowed: the fifth chunk crosses it, nothing more is read


def test_a_declared_oversized_body_is_refused_before_reading(monkeypatch):
    out = serve(monkeypatch, limit="4096", chunks=10, content_length=10 * 1024)
    assert out["status"] == 413 and out["read"] == 0 and out["invoked"] == []


def test_a_body_within_the_limit_reaches_the_function(monkeypatch):
    out = serve(monkeypatch, limit="4096", chunks=4)
    assert out["status"] == 200 and out["invoked"] == ["echo"]


def test_the_limit_setting_defaults_to_the_hosts_and_rejects_nonsense():
    assert body_limit({}) == DEFAULT_BODY_LIMIT == 100 * 1024 * 1024
    assert body_limit({BODY_LIMIT_SETTING: "2048"}) == 2048
    with pytest.raises(HostConfigError, match=BODY_LIMIT_SETTING):
        body_limit({BODY_LIMIT_SETTING: "lots"})
