"""The transport's decoding, error ladder and retry rules, over httpx.MockTransport."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from shared.brightpearl.auth import PrivateAppAuth
from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlError,
    BrightpearlNotFound,
    BrightpearlThrottled,
    BrightpearlUnavailable,
    BrightpearlValidationError,
)
from shared.brightpearl.ratebudget import RateBudget
from shared.brightpearl.transport import BrightpearlTransport
from shared.resilience import Action, classify

Handler = Callable[[httpx.Request], httpx.Response]


def transport(handler: Handler, **kwargs: object) -> tuple[BrightpearlTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    t = BrightpearlTransport(
        root="https://euw1.brightpearlconnect.com",
        account="acme",
        auth=PrivateAppAuth("app", "tok"),
        budget=RateBudget(200, 60),
        http=httpx.Client(transport=httpx.MockTransport(record)),
        sleep=lambda s: None,
        **kwargs,
    )  # type: ignore[arg-type]
    return t, seen


def answers(*responses: httpx.Response) -> Handler:
    queue = list(responses)
    return lambda request: queue.pop(0)


def test_success_sends_auth_headers_and_reads_the_envelope():
    t, seen = transport(answers(httpx.Response(200, json={"response": [1], "reference": {"x": {"1": "a"}}})))
    answer = t.request("GET", "/contact-service/contact/1")
    assert answer.response == [1] and answer.reference == {"x": {"1": "a"}}
    assert str(seen[0].url) == "https://euw1.brightpearlconnect.com/public-api/acme/contact-service/contact/1"
    assert (
        seen[0].headers["brightpearl-app-ref"] == "app"
        and seen[0].headers["brightpearl-account-token"] == "tok"
    )


@pytest.mark.parametrize(
    ("status", "body", "error", "action"),
    [
        (
            400,
            {"errors": [{"code": "CMNC-010", "message": "A JSON body is required"}]},
            BrightpearlValidationError,
            Action.DEAD_LETTER,
        ),
        (
            404,
            {"errors": [{"code": "CMNC-404", "message": "No Contact Found"}]},
            BrightpearlNotFound,
            Action.IGNORE,
        ),
        (401, {"response": "Not authenticated."}, BrightpearlError, Action.REFRESH_AUTH_THEN_RETRY),
    ],
)
def test_error_ladder(status: int, body: dict, error: type[Exception], action: Action):
    t, _ = transport(answers(httpx.Response(status, json=body)))
    with pytest.raises(error) as caught:
        t.request("GET", "/contact-service/contact/1")
    verdict = classify(caught.value)
    assert verdict is not None and verdict.action is action
    text = body.get("errors", [{}])[0].get("message") or body.get("response")
    assert text in str(caught.value)


def test_a_non_json_success_is_a_protocol_error():
    t, _ = transport(
        answers(httpx.Response(200, text="<html>gateway</html>", headers={"content-type": "text/html"}))
    )
    with pytest.raises(BrightpearlError, match="non-JSON body") as caught:
        t.request("GET", "/x")
    assert type(caught.value) is BrightpearlError
    assert classify(caught.value).action is Action.DEAD_LETTER  # type: ignore[union-attr]


def test_outage_503_is_retried_for_reads_and_not_mistaken_for_throttling():
    t, seen = transport(
        answers(
            httpx.Response(503, json={"response": "Service Unavailable"}),
            httpx.Response(200, json={"response": []}),
        )
    )
    assert t.request("GET", "/x").response == []
    assert len(seen) == 2 and t.stats.retries == 1 and t.stats.throttled == 0


def test_post_5xx_and_read_timeouts_are_ambiguous_but_connect_errors_are_retried():
    t, seen = transport(answers(httpx.Response(502, json={"response": "Bad gateway"})))
    with pytest.raises(BrightpearlAmbiguousWrite):
        t.request("POST", "/contact-service/contact/", json={})
    assert len(seen) == 1

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    t2, seen2 = transport(timeout)
    with pytest.raises(BrightpearlAmbiguousWrite, match="may have been applied"):
        t2.request("POST", "/contact-service/contact/", json={})
    assert len(seen2) == 1

    calls = iter([httpx.ConnectError("refused"), httpx.Response(200, json={"response": 5})])

    def flaky_connect(request: httpx.Request) -> httpx.Response:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    t3, _ = transport(flaky_connect)
    assert (
        t3.request("POST", "/contact-service/contact/", json={}).response == 5
    )  # never left: safe to resend


def test_patch_is_retried_only_when_declared_idempotent():
    t, seen = transport(
        answers(
            httpx.Response(500, json={"errors": [{"code": "CMNU-003", "message": "boom"}]}),
            httpx.Response(200, json={"response": {}}),
        )
    )
    assert t.request("PATCH", "/x", json=[], idempotent=True).response == {}
    assert len(seen) == 2
    t2, _ = transport(
        answers(httpx.Response(500, json={"errors": [{"code": "CMNU-003", "message": "boom"}]}))
    )
    with pytest.raises(BrightpearlAmbiguousWrite):
        t2.request("PATCH", "/x", json=[])


def test_retries_are_bounded():
    t, seen = transport(
        lambda r: httpx.Response(500, json={"errors": [{"code": "CMNU-003", "message": "x"}]}), max_retries=3
    )
    with pytest.raises(BrightpearlUnavailable):
        t.request("GET", "/x")
    assert len(seen) == 4


def test_throttled_503_is_resent_after_the_period_within_the_wait_budget():
    throttled = httpx.Response(
        503,
        json={"response": "You have sent too many requests. Please wait"},
        headers={"brightpearl-next-throttle-period": "10"},
    )
    t, seen = transport(answers(throttled, httpx.Response(200, json={"response": 1})))
    assert t.request("POST", "/x", json={}).response == 1 and len(seen) == 2 and t.stats.throttled == 1

    slow = httpx.Response(
        503,
        json={"response": "You have sent too many requests."},
        headers={"brightpearl-next-throttle-period": "5000"},
    )
    t2, _ = transport(answers(slow), max_throttle_wait=1.0)
    with pytest.raises(BrightpearlThrottled) as caught:
        t2.request("GET", "/x")
    assert caught.value.retry_after == 5.0


def test_stats_group_paths_without_ids():
    t, _ = transport(lambda r: httpx.Response(200, json={"response": []}))
    for path in (
        "/contact-service/contact/1-200",
        "/contact-service/contact/201,205",
        "/order-service/order/7",
    ):
        t.request("GET", path)
    assert t.stats.by_path == {"GET /contact-service/contact/{ids}": 2, "GET /order-service/order/{ids}": 1}
