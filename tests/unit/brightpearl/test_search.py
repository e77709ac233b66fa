"""Search paging without `morePagesAvailable`, string cells, 404 as empty; PERIOD values;
the client following the OAuth api_domain."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import pytest

from shared.brightpearl.auth import PrivateAppAuth
from shared.brightpearl.errors import BrightpearlError
from shared.brightpearl.ratebudget import RateBudget
from shared.brightpearl.search import SearchPaginator, period
from shared.brightpearl.transport import BrightpearlTransport

COLUMNS = [{"name": "contactId"}, {"name": "primaryEmail"}]
ROWS = [["4", "a@x.example"], ["5", "b@x.example"], ["6", "c@x.example"], ["7", "d@x.example"], ["8", "e@x"]]


def paged_server(requests: list[httpx.Request]) -> httpx.MockTransport:
    """A 2014-style search: no morePagesAvailable, ids as strings, a reference map."""

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        first = int(request.url.params["firstResult"])
        size = int(request.url.params["pageSize"])
        page = ROWS[first - 1 : first - 1 + size]
        meta = {
            "resultsAvailable": len(ROWS),
            "resultsReturned": len(page),
            "firstResult": first,
            "lastResult": first + len(page) - 1,
            "columns": COLUMNS,
        }
        return httpx.Response(
            200,
            json={
                "response": {"metaData": meta, "results": page},
                "reference": {"tags": {r[0]: "t" for r in page}},
            },
        )

    return httpx.MockTransport(handle)


def transport_over(mock: httpx.MockTransport, auth: object | None = None) -> BrightpearlTransport:
    return BrightpearlTransport(
        root="https://euw1.brightpearlconnect.com",
        account="acme",
        auth=auth or PrivateAppAuth("a", "t"),
        budget=RateBudget(200, 60),  # type: ignore[arg-type]
        http=httpx.Client(transport=mock),
        sleep=lambda s: None,
    )


def test_pages_by_last_result_when_more_pages_is_absent():
    seen: list[httpx.Request] = []
    pager = SearchPaginator(
        transport_over(paged_server(seen)),
        "/contact-service/contact-search",
        filters={"isCustomer": True, "contactId": [4, 5, 6, 7, 8]},
        columns=["contactId", "primaryEmail"],
        sort="contactId.ASC",
        page_size=2,
    )
    rows = list(pager)
    assert [r["contactId"] for r in rows] == ["4", "5", "6", "7", "8"]
    assert [r.url.params["firstResult"] for r in seen] == ["1", "3", "5"]
    assert seen[0].url.params["isCustomer"] == "true" and seen[0].url.params["contactId"] == "4,5,6,7,8"
    assert seen[0].url.params["columns"] == "contactId,primaryEmail"
    assert pager.reference["tags"].keys() == {"4", "5", "6", "7", "8"} and pager.pages_fetched == 3


def test_404_means_no_rows_and_a_shapeless_answer_is_a_protocol_error():
    empty = transport_over(
        httpx.MockTransport(
            lambda r: httpx.Response(404, json={"errors": [{"code": "CMNC-404", "message": "none"}]})
        )
    )
    assert list(SearchPaginator(empty, "/x-search")) == []
    odd = transport_over(httpx.MockTransport(lambda r: httpx.Response(200, json={"response": [1, 2]})))
    with pytest.raises(BrightpearlError, match="without metaData"):
        list(SearchPaginator(odd, "/x-search"))
    with pytest.raises(ValueError, match="page_size"):
        SearchPaginator(empty, "/x-search", page_size=501)


def test_period_values():
    since = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert period(since) == "2026-07-01T10:00:00.000Z/"
    assert period(None, date(2026, 7, 2)) == "/2026-07-02"
    assert period(since, since) == "2026-07-01T10:00:00.000Z/2026-07-01T10:00:00.000Z"
    with pytest.raises(ValueError, match="no time zone"):
        period(datetime(2026, 7, 1))
    with pytest.raises(ValueError, match="start, an end"):
        period()


class DomainAuth(PrivateAppAuth):
    def api_domain(self) -> str | None:
        return "ws-use.brightpearl.com"


def test_requests_follow_the_oauth_api_domain():
    seen: list[httpx.Request] = []
    mock = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={"response": []}))
    transport_over(mock, DomainAuth("a", "t")).request("GET", "/order-service/order/1")
    assert str(seen[0].url) == "https://ws-use.brightpearl.com/public-api/acme/order-service/order/1"
