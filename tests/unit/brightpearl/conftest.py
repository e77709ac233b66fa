"""Fixtures for Brightpearl unit tests: a controllable clock and an in-memory Key Vault."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import HttpRequest, HttpResponse, HttpTransport


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


class _Response(HttpResponse):
    def __init__(
        self,
        request: HttpRequest,
        status: int,
        payload: dict[str, Any] | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(request, None)
        self.status_code = status
        self.reason = "OK" if status < 400 else "Error"
        self.headers = {"content-type": "application/json", **(headers or {})}
        self.content_type = "application/json"
        self._body = json.dumps(payload).encode() if payload is not None else b""

    def body(self) -> bytes:
        return self._body

    # the generated SDK code reads responses through the azure.core.rest interface
    def read(self) -> bytes:
        return self._body

    def json(self) -> Any:
        return json.loads(self._body) if self._body else None

    @property
    def content(self) -> bytes:
        return self._body


class InMemoryKeyVault(HttpTransport):
    """Answers the Key Vault secrets REST API (GET/PUT /secrets/{name}) from a dict,
    including the 401 bearer challenge the SDK expects first."""

    def __init__(self) -> None:
        self.secrets: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []

    def __enter__(self) -> InMemoryKeyVault:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: HttpRequest, **kwargs: Any) -> HttpResponse:
        self.requests.append((request.method, request.url))
        if "Authorization" not in request.headers:
            return _Response(
                request,
                401,
                None,
                {
                    "WWW-Authenticate": 'Bearer authorization="https://login.microsoftonline.com/tenant", '
                    'resource="https://vault.azure.net"'
                },
            )
        match = re.search(r"/secrets/([^/?]+)", request.url)
        assert match, request.url
        name = match.group(1)
        versions = self.secrets.setdefault(name, [])
        if request.method == "PUT":
            body = json.loads(request.body)
            version = f"v{len(versions) + 1}"
            item = {
                "value": body["value"],
                "contentType": body.get("contentType"),
                "id": f"https://unit.vault.azure.net/secrets/{name}/{version}",
                "attributes": {"enabled": True},
            }
            versions.append(item)
            return _Response(request, 200, item)
        if not versions:
            return _Response(
                request, 404, {"error": {"code": "SecretNotFound", "message": f"{name} not found"}}
            )
        return _Response(request, 200, versions[-1])


class FakeCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("unit-test-token", 4_102_444_800)


@pytest.fixture
def key_vault() -> InMemoryKeyVault:
    return InMemoryKeyVault()
