"""Conformance: the simulator's wire shapes against the reference (brightpearl-api.md §1, §4,
§6.4, §13), checked with plain HTTP so nothing in our client can hide a difference."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from sandbox.brightpearl import SimulatorServer
from sandbox.brightpearl.app import Simulator

PRIVATE = {"brightpearl-app-ref": "sandbox-app", "brightpearl-account-token": "sandbox-account-token"}
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}(Z|[+-]\d{2}:\d{2})$")


@pytest.fixture
def api(bp_server: SimulatorServer, sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{bp_server.url}/public-api/sandbox", headers=PRIVATE, timeout=10) as http:
        yield http


def envelope(resp: httpx.Response) -> dict:
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body, dict)
    assert ("response" in body) != ("errors" in body)  # never both, never neither
    if "errors" in body:
        assert body["errors"] and all(set(e) == {"code", "message"} for e in body["errors"])
        assert all(re.fullmatch(r"[A-Z]{3,4}-\d{3}", e["code"]) for e in body["errors"])
    return body


def first_contact(sim: Simulator) -> int:
    return min(sim.state.contacts)


def test_envelopes_and_throttle_headers_on_every_answer(api: httpx.Client, sim: Simulator):
    answers = [
        api.get(f"/contact-service/contact/{first_contact(sim)}"),  # 200
        api.get("/contact-service/contact/999999"),  # 404
        api.post(
            "/contact-service/contact/", content=b"{not json", headers={"content-type": "application/json"}
        ),
        api.get("/contact-service/nothing-here"),  # unknown resource
    ]
    assert [a.status_code for a in answers] == [200, 404, 400, 404]
    for answer in answers:
        envelope(answer)
        remaining = int(answer.headers["brightpearl-requests-remaining"])
        assert 0 <= remaining <= 199
        assert int(answer.headers["brightpearl-next-throttle-period"]) >= 0
    assert envelope(answers[1])["errors"][0] == {"code": "CMNC-404", "message": "No Contact Found"}
    assert envelope(answers[2])["errors"][0]["code"] == "CMNC-010"
    created = api.post("/contact-service/contact/", json={"lastName": "Shape"})
    assert created.status_code == 200 and isinstance(envelope(created)["response"], int)


def test_authentication_answers(api: httpx.Client, bp_server: SimulatorServer):
    bare = httpx.get(f"{bp_server.url}/public-api/sandbox/contact-service/contact/200")
    assert bare.status_code == 401
    assert bare.json() == {"response": "Not authenticated. You must provide a valid authentication token."}
    assert bare.headers["brightpearl-requests-remaining"] == "200"  # refused before the throttle: not counted
    unknown = api.get(f"{bp_server.url}/public-api/nosuchaccount/contact-service/contact/200")
    assert unknown.status_code == 404 and envelope(unknown)["errors"][0]["code"] == "CMNC-404"


def test_contact_get_shape_and_paging_above_the_limit(api: httpx.Client, sim: Simulator):
    sim.state.seed(contacts=200)
    body = envelope(api.get("/contact-service/contact/1-1000"))  # more than 200: one page, not an error
    assert len(body["response"]) == 200
    assert body["pagination"]["morePagesAvailable"] is True and body["pagination"]["resultsAvailable"] == 250
    contact = body["response"][0]
    assert {
        "contactId",
        "postAddressIds",
        "communication",
        "relationshipToAccount",
        "financialDetails",
        "createdByid",
        "createdOn",
        "updatedOn",
        "contactTags",
    } <= set(contact)
    assert isinstance(contact["contactTags"], str)
    assert set(contact["postAddressIds"]) == {"DEF", "BIL", "DEL"}
    assert TIME.match(contact["updatedOn"]) and TIME.match(
        contact["contactStatus"]["history"][0]["occuredOn"]
    )
    assert "isCustomer" not in contact["relationshipToAccount"]
    nxt = envelope(api.get("/contact-service/contact/1-1000", params={"firstResult": 201}))
    assert len(nxt["response"]) == 50 and nxt["pagination"]["firstResult"] == 201


def test_time_stamps_carry_the_configured_offset(api: httpx.Client, sim: Simulator):
    sim.configure(time_offset="-05:00")
    stamp = envelope(api.get(f"/contact-service/contact/{first_contact(sim)}"))["response"][0]["updatedOn"]
    assert stamp.endswith("-05:00") and TIME.match(stamp)


def test_search_shape(api: httpx.Client):
    resp = api.get(
        "/order-service/order-search",
        params={"columns": "orderId,orderStatusId,updatedOn", "pageSize": 4, "firstResult": 3},
    )
    body = envelope(resp)
    assert set(body) == {"response", "reference"}  # reference sits beside response
    meta = body["response"]["metaData"]
    assert (meta["resultsAvailable"], meta["resultsReturned"], meta["firstResult"], meta["lastResult"]) == (
        10,
        4,
        3,
        6,
    )
    assert meta["morePagesAvailable"] is True
    assert [c["name"] for c in meta["columns"]] == ["orderId", "orderStatusId", "updatedOn"]
    assert {"name", "sortable", "filterable", "reportDataType", "required"} <= set(meta["columns"][0])
    assert meta["columns"][1]["referenceData"] == ["orderStatusNames"]
    results = body["response"]["results"]
    assert all(isinstance(row, list) and len(row) == 3 for row in results)
    assert body["reference"]["orderStatusNames"] == {"2": "New web order"}
    assert set(envelope(api.get("/order-service/order-search/meta-data"))["response"]) == {
        "columns",
        "sorting",
    }
    count = envelope(api.get("/contact-service/contact-search", params={"countOnly": "true"}))
    assert count["response"]["metaData"]["resultsAvailable"] == 50
    bad = api.get("/contact-service/contact-search", params={"primaryEmal": "x"})
    assert bad.status_code == 400 and "primaryEmal" in envelope(bad)["errors"][0]["message"]


def test_order_get_shape(api: httpx.Client, sim: Simulator):
    order_id = min(sim.state.orders)
    order = envelope(api.get(f"/order-service/order/{order_id}"))["response"][0]
    assert order["orderTypeCode"] == "SO" and order["parentOrderId"] == 0
    assert order["stockStatusCode"] in {"SON", "SOP", "SOA", "NON"}
    assert order["allocationStatusCode"] in {"ANR", "ANA", "APA", "AAA"}
    assert order["shippingStatusCode"] in {"NST", "SNS", "SPS", "ASS"}
    assert order["orderPaymentStatus"] == "UNPAID"
    rows = order["orderRows"]
    assert isinstance(rows, dict) and all(k.isdigit() for k in rows)  # keyed by row id
    row = next(iter(rows.values()))
    assert re.fullmatch(r"\d+\.\d{4}", row["quantity"]["magnitude"])
    assert re.fullmatch(r"-?\d+\.\d{4}", row["rowValue"]["rowNet"]["value"])
    assert re.fullmatch(r"\d+\.\d{2}", order["totalValue"]["total"])
    assert len(order["parties"]["delivery"]["countryIsoCode"]) == 2
    assert len(order["parties"]["delivery"]["countryIsoCode3"]) == 3
    sales = envelope(api.get(f"/order-service/sales-order/{order_id}"))["response"]
    assert isinstance(sales, list) and sales[0]["id"] == order_id


def test_empty_results(api: httpx.Client, sim: Simulator):
    # Recorded real answer for a missing order: 200 with []; the docs say 404 (configurable).
    missing = api.get("/order-service/order/999999")
    assert missing.status_code == 200 and envelope(missing) == {"response": []}
    sim.configure(order_get_empty="404")
    assert api.get("/order-service/order/999999").status_code == 404
    assert api.get("/product-service/product/1-5").status_code == 404
    some = envelope(api.get(f"/product-service/product/1-5,{min(sim.state.products)}"))
    assert len(some["response"]) == 1  # 200 when at least one matched
    too_many = api.get("/product-service/product/1000-1300")
    assert too_many.status_code == 400 and "at most 200" in envelope(too_many)["errors"][0]["message"]


def test_if_match_412_uri_414_and_options(api: httpx.Client, sim: Simulator):
    product_id = min(sim.state.products)
    version = envelope(api.get(f"/product-service/product/{product_id}"))["response"][0]["version"]
    stale = api.put(
        f"/product-service/product/{product_id}",
        json={"stock": {"weight": {"magnitude": 1}}},
        headers={"If-Match": str(version - 1)},
    )
    assert stale.status_code == 412 and envelope(stale)["errors"]
    fresh = api.put(
        f"/product-service/product/{product_id}",
        json={"stock": {"weight": {"magnitude": 1}}},
        headers={"If-Match": str(version)},
    )
    assert fresh.status_code == 200

    sim.configure(max_uri_length=200)
    long_set = ",".join(str(i) for i in range(200, 300, 2))
    assert api.get(f"/contact-service/contact/{long_set}").status_code == 414

    plan = envelope(api.request("OPTIONS", "/product-service/product/1-2000"))["response"]["getUris"]
    assert plan == ["/product/1000-1019"]  # missing ids packed out, within the 200 limit
    sim.state.seed(products=250)
    plan = envelope(api.request("OPTIONS", "/product-service/product/1-5000"))["response"]["getUris"]
    assert plan == ["/product/1000-1199", "/product/1200-1269"]


def test_throttled_answer(api: httpx.Client, sim: Simulator):
    sim.configure(rate_limit=3, rate_window_seconds=30)
    answers = [api.get(f"/contact-service/contact/{first_contact(sim)}") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 503]
    assert [a.headers["brightpearl-requests-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[3].json() == {
        "response": "You have sent too many requests. Please wait before sending another request"
    }
    assert 0 < int(answers[3].headers["brightpearl-next-throttle-period"]) <= 30_000


def test_private_and_oauth_apps_draw_from_separate_pools(
    api: httpx.Client, bp_server: SimulatorServer, sim: Simulator
):
    sim.configure(rate_limit=2, rate_window_seconds=30)
    code = sim.issue_code("sandbox", "https://x.example/cb")
    tokens = httpx.post(
        f"{bp_server.url}/sandbox/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "sandbox-app",
            "redirect_uri": "https://x.example/cb",
        },
    ).json()
    assert set(tokens) == {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "installation_instance_id",
        "api_domain",
    }
    bearer = {
        "Authorization": f"Bearer {tokens['access_token']}",
        "brightpearl-app-ref": "sandbox-app",
        "brightpearl-dev-ref": "sandbox-dev",
    }
    cid = first_contact(sim)
    private = [api.get(f"/contact-service/contact/{cid}").status_code for _ in range(3)]
    public = [
        httpx.get(
            f"{bp_server.url}/public-api/sandbox/contact-service/contact/{cid}", headers=bearer
        ).status_code
        for _ in range(3)
    ]
    assert private == [200, 200, 503] and public == [200, 200, 503]
    no_dev = dict(bearer, **{"brightpearl-dev-ref": "someone-else"})
    assert (
        httpx.get(
            f"{bp_server.url}/public-api/sandbox/contact-service/contact/{cid}", headers=no_dev
        ).status_code
        == 401
    )


def test_id_set_forms(api: httpx.Client, sim: Simulator):
    ids = sorted(sim.state.contacts)[:6]
    mixed = f"{ids[0]}-{ids[2]},{ids[4]}"
    assert [c["contactId"] for c in envelope(api.get(f"/contact-service/contact/{mixed}"))["response"]] == [
        ids[0],
        ids[1],
        ids[2],
        ids[4],
    ]
    dotted = f"{ids[1]}.{ids[3]}.{ids[5]}"  # period list (UNCONFIRMED form, accepted)
    assert len(envelope(api.get(f"/contact-service/contact/{dotted}"))["response"]) == 3
    descending = api.get(f"/contact-service/contact/{ids[3]}-{ids[0]}")
    assert descending.status_code == 400 and "descending" in envelope(descending)["errors"][0]["message"]
    orders = envelope(api.get("/warehouse-service/order/*/goods-note/goods-out"))  # "*" = every order
    assert orders == {"errors": [{"code": "CMNC-404", "message": "No Goods Out Note Found"}]}


def test_multi_status_207(api: httpx.Client, sim: Simulator):
    order_id = min(sim.state.orders)
    customer = sim.state.orders[order_id]["parties"]["customer"]["contactId"]
    credit = envelope(
        api.post(
            "/order-service/sales-credit/",
            json={
                "customer": {"id": customer},
                "parentId": order_id,
                "statusId": 8,
                "rows": [{"name": "refund", "quantity": 1, "taxCode": "T0", "net": "5.00", "tax": "0"}],
            },
        )
    )["response"]
    partial = api.get(f"/order-service/sales-credit/{credit},{credit + 5000}")
    assert partial.status_code == 207 and len(envelope(partial)["response"]) == 1
    assert api.get(f"/order-service/sales-credit/{credit}").status_code == 200
    batch = api.post(
        "/multi-message",
        json={
            "processingMode": "SEQUENTIAL",
            "onFail": "CONTINUE",
            "messages": [
                {
                    "label": "ok",
                    "uri": "/contact-service/tag",
                    "httpMethod": "POST",
                    "body": {"tagName": "t-207"},
                },
                {"label": "bad", "uri": "/contact-service/tag", "httpMethod": "POST", "body": {}},
            ],
        },
    )
    assert batch.status_code == 207
    processed = envelope(batch)["response"]["processedMessages"]
    assert [(p["label"], p["statusCode"]) for p in processed] == [("ok", 200), ("bad", 400)]
    assert isinstance(processed[1]["body"]["content"], str)  # the inner envelope travels as a JSON string


def test_public_apps_must_sign_the_account_token(bp_server: SimulatorServer, sim: Simulator):
    from shared.brightpearl.auth import PublicAppAuth

    sim.configure(developer_secret="dev-secret-123")
    url = f"{bp_server.url}/public-api/sandbox/contact-service/contact/{first_contact(sim)}"
    signed = PublicAppAuth("sandbox-app", "sandbox-dev", "sandbox-account-token", "dev-secret-123").headers()
    assert httpx.get(url, headers=signed).status_code == 200
    unsigned = dict(signed, **{"brightpearl-account-token": "sandbox-account-token"})
    assert httpx.get(url, headers=unsigned).status_code == 401
    assert httpx.get(url, headers=PRIVATE).status_code == 200  # private apps send no dev ref
