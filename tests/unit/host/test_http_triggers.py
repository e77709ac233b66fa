"""HTTP triggers through the local host: routing, route params, methods, auth levels, errors."""

from __future__ import annotations

import logging

import httpx
import pytest

from tests.unit.host.conftest import FUNCTION_KEY, MASTER_KEY

APP = "tests.unit.host.apps.http_app"


@pytest.fixture
def host(make_host):
    with make_host(APP) as running:
        yield running


def test_route_params_query_and_response_are_passed_through(host):
    response = httpx.get(f"{host.api_url}/items/42?colour=red", headers={"x-functions-key": FUNCTION_KEY})

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["x-item"] == "42"
    body = response.json()
    assert body["id"] == "42"
    assert body["q"] == {"colour": "red"}
    assert body["method"] == "GET"
    assert body["url"] == f"{host.api_url}/items/42?colour=red"


def test_literal_route_wins_over_parameter_route(host):
    response = httpx.get(f"{host.api_url}/items/special", headers={"x-functions-key": FUNCTION_KEY})

    assert (response.status_code, response.text) == (203, "special")
    assert host.module.CALLS == ["special_item"]


def test_constrained_and_optional_route_parameters(host):
    headers = {"x-functions-key": FUNCTION_KEY}
    assert httpx.get(f"{host.api_url}/orders/7/lines/3", headers=headers).json() == {"id": "7", "line": "3"}
    assert httpx.get(f"{host.api_url}/orders/7/lines", headers=headers).json() == {"id": "7"}
    # {id:int} does not match a word, so no function answers.
    assert httpx.get(f"{host.api_url}/orders/abc/lines", headers=headers).status_code == 404


def test_method_not_in_the_list_gets_405_and_the_function_is_not_called(host):
    response = httpx.post(f"{host.api_url}/items/42", headers={"x-functions-key": FUNCTION_KEY})

    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert host.module.CALLS == []


def test_unknown_route_and_path_outside_the_prefix_get_404(host):
    assert httpx.get(f"{host.api_url}/nothing-here").status_code == 404
    assert httpx.post(f"{host.base_url}/echo", content=b"x").status_code == 404
    assert host.module.CALLS == []


@pytest.mark.parametrize(
    ("headers", "query"),
    [({}, ""), ({"x-functions-key": "wrong"}, ""), ({}, "?code=wrong"), ({"x-functions-key": ""}, "")],
    ids=["missing", "wrong-header", "wrong-query", "empty"],
)
def test_function_level_without_a_valid_key_is_401_and_not_called(host, headers, query):
    response = httpx.get(f"{host.api_url}/items/1{query}", headers=headers)

    assert response.status_code == 401
    assert host.module.CALLS == []


def test_function_key_in_query_and_master_key_pass_function_level(host):
    assert httpx.get(f"{host.api_url}/items/1?code={FUNCTION_KEY}").status_code == 200
    assert httpx.get(f"{host.api_url}/items/2", headers={"x-functions-key": MASTER_KEY}).status_code == 200
    assert host.module.CALLS == ["get_item", "get_item"]


def test_admin_level_needs_the_master_key(host):
    denied = httpx.post(f"{host.api_url}/admin/reset", headers={"x-functions-key": FUNCTION_KEY})
    assert denied.status_code == 401
    assert host.module.CALLS == []

    allowed = httpx.post(f"{host.api_url}/admin/reset", headers={"x-functions-key": MASTER_KEY})
    assert allowed.status_code == 202
    assert host.module.CALLS == ["admin_reset"]


def test_anonymous_async_function_needs_no_key_and_str_becomes_text(host):
    response = httpx.post(f"{host.api_url}/echo", content=b"hello", headers={"x-test": "abc"})

    assert response.status_code == 200
    assert response.text == "abc:hello"
    assert response.headers["content-type"].startswith("text/plain")


def test_unhandled_exception_is_500_with_only_an_invocation_id(host, caplog):
    with caplog.at_level(logging.ERROR, logger="sandbox.host"):
        response = httpx.get(f"{host.api_url}/boom")

    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"error", "invocationId"}
    assert "secret detail" not in response.text
    failed = [r for r in caplog.records if "Failed" in r.getMessage()]
    assert failed and body["invocationId"] in failed[0].getMessage()
    assert failed[0].exc_info is not None  # the traceback is logged


def test_context_parameter_carries_function_name_and_invocation_id(host):
    body = httpx.get(f"{host.api_url}/ctx").json()

    assert body["name"] == "context_name"
    assert len(body["id"]) == 36


def test_route_prefix_comes_from_host_json(make_host):
    with make_host(APP, host_json={"extensions": {"http": {"routePrefix": "hooks"}}}) as host:
        assert host.api_url.endswith("/hooks")
        assert httpx.post(f"{host.base_url}/hooks/echo", content=b"x").status_code == 200
        assert httpx.post(f"{host.base_url}/api/echo", content=b"x").status_code == 404


def test_start_up_listing_names_routes(make_host):
    host = make_host(APP)
    lines = host.describe()

    assert any(
        line.startswith("get_item: [GET] ") and line.endswith("/api/items/{id} (authLevel=FUNCTION)")
        for line in lines
    )
    assert any(line.startswith("echo: [POST]") for line in lines)


def test_function_timeout_from_host_json_fails_the_invocation(make_host, caplog):
    with (
        caplog.at_level(logging.ERROR, logger="sandbox.host"),
        make_host(APP, host_json={"functionTimeout": "00:00:00.3"}) as host,
    ):
        response = httpx.get(f"{host.api_url}/hang", timeout=30)

    assert response.status_code == 500
    assert host.module.CALLS == ["hang"]
    assert any("Timeout value of 0.3s exceeded" in r.getMessage() for r in caplog.records)


def test_admin_api_does_not_run_http_functions(host):
    response = httpx.post(f"{host.base_url}/admin/functions/echo", headers={"x-functions-key": MASTER_KEY})

    assert response.status_code == 400
    assert host.module.CALLS == []
