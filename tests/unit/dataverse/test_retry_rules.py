"""The Dataverse client's retry rules, over httpx.MockTransport: Retry-After honoured on 429,
5xx and network errors retried only where a repeat is safe, one token refresh on 401, and the
configured limits (max_retries, max_retry_after)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import (
    DataverseAuthError,
    DataverseThrottled,
    DataverseUnavailable,
    DataverseValidationError,
)

Step = httpx.Response | Exception
ROOT = "https://contoso.crm.dynamics.com/api/data/v9.2/"


class Credential:
    def __init__(self) -> None:
        self.issued = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.issued += 1
        return AccessToken(f"token-{self.issued}", int(time.time()) + 3600)


def throttled(retry_after: str | None = "2") -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"code": "0x80072322", "message": "Number of requests exceeded the limit"}}
    return httpx.Response(429, json=body, headers=headers)


def ok() -> httpx.Response:
    return httpx.Response(200, json={"value": []})


def client_answering(
    *steps: Step, **options: Any
) -> tuple[DataverseClient, list[float], list[httpx.Request]]:
    queue = list(steps)
    seen: list[httpx.Request] = []
    slept: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    client = DataverseClient(
        "https://contoso.crm.dynamics.com",
        Credential(),
        transport=httpx.MockTransport(handle),
        sleep=slept.append,
        **options,
    )
    return client, slept, seen


def test_retry_after_of_a_429_is_the_wait_then_the_call_succeeds() -> None:
    client, slept, seen = client_answering(throttled("2"), throttled("7"), ok())
    assert client.request("GET", "contacts").status_code == 200
    assert slept == [2.0, 7.0] and len(seen) == 3
    assert (client.calls, client.retries) == (3, 2)


def test_a_429_is_retried_for_a_create_too() -> None:
    created = httpx.Response(
        204, headers={"OData-EntityId": f"{ROOT}contacts(00000000-0000-0000-0000-000000000001)"}
    )
    client, slept, _ = client_answering(throttled("1"), created)
    assert client.create("contacts", {"lastname": "x"}) == "00000000-0000-0000-0000-000000000001"
    assert slept == [1.0]


def test_a_retry_after_beyond_the_limit_is_raised_at_once() -> None:
    client, slept, seen = client_answering(throttled("90"), ok(), max_retry_after=60)
    with pytest.raises(DataverseThrottled) as raised:
        client.request("GET", "contacts")
    assert raised.value.retry_after == 90 and slept == [] and len(seen) == 1


def test_a_429_without_retry_after_backs_off_exponentially() -> None:
    client, slept, _ = client_answering(
        throttled(None), throttled(None), throttled(None), ok(), backoff_base=1.0, backoff_cap=30.0
    )
    client.request("GET", "contacts")
    assert all(0.8 * b <= s <= 1.2 * b for s, b in zip(slept, [1, 2, 4], strict=True))


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_gateway_error_is_retried_for_reads(status: int) -> None:
    client, slept, seen = client_answering(httpx.Response(status), ok())
    assert client.request("GET", "contacts").status_code == 200
    assert len(seen) == 2 and len(slept) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_is_not_repeated_for_a_create(status: int) -> None:
    client, slept, seen = client_answering(httpx.Response(status), ok())
    with pytest.raises(DataverseUnavailable):
        client.request("POST", "contacts", json_body={"lastname": "x"})
    assert len(seen) == 1 and slept == []


def test_a_500_is_not_retried_even_for_reads() -> None:
    client, _, seen = client_answering(httpx.Response(500), ok())
    with pytest.raises(DataverseUnavailable):
        client.request("GET", "contacts")
    assert len(seen) == 1


def test_a_read_timeout_is_retried_for_reads_but_not_for_creates() -> None:
    client, _, seen = client_answering(httpx.ReadTimeout("slow"), ok())
    assert client.request("GET", "contacts").status_code == 200 and len(seen) == 2
    client, _, seen = client_answering(httpx.ReadTimeout("slow"), ok())
    with pytest.raises(DataverseUnavailable, match="ReadTimeout"):
        client.request("POST", "contacts", json_body={"lastname": "x"})
    assert len(seen) == 1


def test_a_connection_that_never_opened_is_retried_for_creates() -> None:
    client, _, seen = client_answering(httpx.ConnectError("refused"), httpx.Response(204))
    assert client.request("POST", "contacts", json_body={"lastname": "x"}).status_code == 204
    assert len(seen) == 2


def test_max_retries_bounds_the_attempts_and_the_last_error_is_raised() -> None:
    client, slept, seen = client_answering(*[httpx.Response(503)] * 5, max_retries=2)
    with pytest.raises(DataverseUnavailable) as raised:
        client.request("GET", "contacts")
    assert raised.value.status == 503
    assert len(seen) == 3 and len(slept) == 2 and client.retries == 2


def test_a_401_refreshes_the_token_once_without_using_a_retry() -> None:
    client, slept, seen = client_answering(httpx.Response(401), ok(), max_retries=0)
    assert client.request("GET", "contacts").status_code == 200
    assert [r.headers["authorization"] for r in seen] == ["Bearer token-1", "Bearer token-2"]
    assert slept == []
    client, _, seen = client_answering(httpx.Response(401), httpx.Response(401), ok())
    with pytest.raises(DataverseAuthError):
        client.request("GET", "contacts")
    assert len(seen) == 2


def test_a_4xx_is_raised_without_a_retry() -> None:
    client, _, seen = client_answering(httpx.Response(400, json={"error": {"message": "bad"}}), ok())
    with pytest.raises(DataverseValidationError):
        client.request("GET", "contacts")
    assert len(seen) == 1
