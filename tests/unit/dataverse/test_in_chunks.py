"""Look-ups sized to the URL: `odata.in_chunks` / `odata.fit_chunks` split values into as few
`In` filters as fit the percent-encoded budget, and the client refuses a GET over 32,768."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence

import httpx
import pytest

from shared.dataverse import odata
from shared.dataverse.client import DataverseClient
from shared.dataverse.errors import DataverseValidationError


def sent_length(text: str) -> int:
    """How long `text` is in the query string httpx actually sends."""
    return len(str(httpx.QueryParams({"$filter": text}))) - len("%24filter=")


def guids(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def values_of(flt: odata.Filter, name: str) -> list[str]:
    """The values of the In list on `name` inside `flt` (JSON-quoted items)."""
    head = f"Microsoft.Dynamics.CRM.In(PropertyName='{name}',PropertyValues="
    start = flt.text.index(head) + len(head)
    decoder = json.JSONDecoder()
    items, _ = decoder.raw_decode(flt.text[start:])
    return items


@pytest.mark.parametrize(
    "text",
    ["plain", "O'Brien & Sons + co", "100% [x] #1", "ünïcødé €", 'quote " and \\ backslash', "a b,c=d"],
)
def test_encoded_length_is_what_httpx_sends(text: str) -> None:
    flt = odata.in_("name", [text, text.upper()]) & odata.eq("city", text)
    assert odata.encoded_length(flt.text) == sent_length(flt.text)


def test_a_thousand_guids_take_two_queries_each_within_the_budget() -> None:
    ids = guids(1000)
    filters = list(odata.in_chunks("salesorderid", ids))
    assert len(filters) == 2  # 100 a query before: 10
    assert all(sent_length(f.text) <= odata.IN_FILTER_BUDGET for f in filters)
    assert [v for f in filters for v in values_of(f, "salesorderid")] == ids


def test_every_value_once_in_first_seen_order_and_each_chunk_as_full_as_the_budget_allows() -> None:
    rng = random.Random(7)
    words = ["O'Neil", "ü€", "a b", "x+y", "100%", "[z]", '"q"', "plain"]
    values = [f"{rng.choice(words)}-{rng.randint(0, 400)}" * rng.randint(1, 6) for _ in range(3000)]
    budget = 4000
    filters = list(odata.in_chunks("name", values, budget=budget))
    seen = [v for f in filters for v in values_of(f, "name")]
    assert seen == list(dict.fromkeys(values))  # each distinct value once, order kept
    for i, f in enumerate(filters):
        assert sent_length(f.text) <= budget
        if i + 1 < len(filters):  # one more value would not have fitted
            longer = odata.in_("name", [*values_of(f, "name"), values_of(filters[i + 1], "name")[0]])
            assert sent_length(longer.text) > budget


def test_the_extra_filter_is_in_every_query_and_counts_against_the_budget() -> None:
    lists = odata.in_("_pricelevelid_value", guids(3, seed=2))
    filters = list(odata.in_chunks("_productid_value", guids(900), also=lists, budget=8000))
    assert len(filters) > 1
    for f in filters:
        assert f.text.endswith(f"and ({lists.text})")
        assert sent_length(f.text) <= 8000


def test_short_keys_stop_at_the_value_cap() -> None:
    keys = [str(n) for n in range(2500)]
    filters = list(odata.in_chunks("bpi_brightpearlid", keys))
    assert [len(values_of(f, "bpi_brightpearlid")) for f in filters] == [1000, 1000, 500]
    assert [f.in_values for f in filters] == [1000, 1000, 500]


def test_no_values_no_query_and_a_value_longer_than_the_budget_is_refused() -> None:
    assert list(odata.in_chunks("name", [])) == []
    with pytest.raises(odata.ODataValueError, match=r"a value of 'emailaddress1' is \d+ characters"):
        list(odata.in_chunks("emailaddress1", ["short", "x" * 500], budget=300))


def test_the_refusal_does_not_show_the_value() -> None:
    with pytest.raises(odata.ODataValueError) as caught:
        list(odata.in_chunks("emailaddress1", ["someone@example.com" * 30], budget=300))
    assert "someone" not in str(caught.value) and "emailaddress1" in str(caught.value)


def test_fit_chunks_sizes_a_combined_filter_by_the_same_budget() -> None:
    records = [(str(n), f"person{n}@example.com", f"AB{n % 90} {n % 9}CD") for n in range(1200)]

    def render(chunk: Sequence[tuple[str, str, str]]) -> odata.Filter:
        return odata.any_of(
            odata.in_("bpi_brightpearlid", [r[0] for r in chunk]),
            odata.in_("emailaddress1", [r[1] for r in chunk]),
            odata.in_("address1_postalcode", sorted({r[2] for r in chunk})),
        )

    pairs = list(odata.fit_chunks(records, render, budget=10_000))
    assert [r for chunk, _ in pairs for r in chunk] == records  # every record once, in order
    for i, (chunk, flt) in enumerate(pairs):
        assert flt == render(chunk) and sent_length(flt.text) <= 10_000
        if i + 1 < len(pairs):
            assert sent_length(render([*chunk, pairs[i + 1][0][0]]).text) > 10_000
    assert len(pairs) < len(records) / 100  # fewer queries than 100 records a query


def test_fit_chunks_counts_in_values_and_refuses_an_item_that_cannot_fit() -> None:
    pairs = list(odata.fit_chunks(list(range(10)), lambda c: odata.in_("n", list(c)), max_values=4))
    assert [list(chunk) for chunk, _ in pairs] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    with pytest.raises(odata.ODataValueError, match="cannot fit 50 characters"):
        list(odata.fit_chunks(["y" * 100], lambda c: odata.in_("n", list(c)), budget=50))


# --- the client's guard ----------------------------------------------------------------------
class _Credential:
    def get_token(self, *scopes: str, **kwargs: object) -> object:
        from azure.core.credentials import AccessToken

        return AccessToken("t", 2**31)


def _client(sent: list[httpx.Request]) -> DataverseClient:
    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"value": []})

    return DataverseClient(
        "https://org.crm.dynamics.com", _Credential(), transport=httpx.MockTransport(handle), max_retries=0
    )


def test_the_client_refuses_a_get_longer_than_dataverse_accepts_before_sending_it() -> None:
    sent: list[httpx.Request] = []
    with _client(sent) as client:
        too_long = odata.in_("salesorderid", guids(800))
        with pytest.raises(
            DataverseValidationError, match=r"GET salesorders: the URL is 3\d,\d{3} characters"
        ):
            list(client.query("salesorders", select=["salesorderid"], filter=too_long))
        assert sent == []
        for flt in odata.in_chunks("salesorderid", guids(800)):
            list(client.query("salesorders", select=["salesorderid"], filter=flt))
    assert len(sent) == 2
    assert all(len(str(r.url)) <= odata.MAX_URL_LENGTH for r in sent)


def test_the_guard_passes_a_url_of_exactly_the_limit() -> None:
    sent: list[httpx.Request] = []
    with _client(sent) as client:
        base = len(str(client._http.build_request("GET", "contacts", params={"$filter": "x eq ''"}).url))
        pad = odata.MAX_URL_LENGTH - base
        client.request("GET", "contacts", params={"$filter": f"x eq '{'a' * pad}'"})
        with pytest.raises(DataverseValidationError, match="32,769 characters"):
            client.request("GET", "contacts", params={"$filter": f"x eq '{'a' * (pad + 1)}'"})
    assert [len(str(r.url)) for r in sent] == [odata.MAX_URL_LENGTH]
