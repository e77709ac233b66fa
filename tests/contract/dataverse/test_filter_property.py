"""Property: any string value survives a filter round trip through the simulator (no injection,
no broken query) - for eq, In and contains, with the one escaping helper."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.dataverse import odata
from tests.contract.dataverse.simfixtures import make_client

KEY = "prop-roundtrip"
_clients: dict[str, object] = {}


def _client(sim):
    # one client (one token) for all examples of a run; the simulator is reset once per test
    if sim.url not in _clients:
        _clients[sim.url] = make_client(sim)
    return _clients[sim.url]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=49))
def test_any_string_survives_a_filter_round_trip(sim, value):
    client = _client(sim)
    if True:
        client.upsert(
            "contacts",
            {"bpi_brightpearlid": KEY},
            {"lastname": value, "emailaddress1": value},
            return_id=False,
        )
        decoy = client.upsert(
            "contacts",
            {"bpi_brightpearlid": KEY + "-decoy"},
            {"lastname": value + "x", "emailaddress1": "x" + value},
            return_id=False,
        )
        assert decoy is not None
        mine = odata.eq("bpi_brightpearlid", KEY)

        by_eq = list(
            client.query(
                "contacts",
                select=["lastname", "bpi_brightpearlid"],
                filter=odata.eq("lastname", value) & odata.startswith("bpi_brightpearlid", KEY),
            )
        )
        assert [(r["bpi_brightpearlid"], r["lastname"]) for r in by_eq] == [(KEY, value)]

        by_in = list(
            client.query(
                "contacts",
                select=["emailaddress1"],
                filter=odata.in_("emailaddress1", [value, "\u0000never"]),
            )
        )
        assert [r["emailaddress1"] for r in by_in] == [value]

        by_contains = list(
            client.query("contacts", select=["lastname"], filter=odata.contains("lastname", value) & mine)
        )
        assert [r["lastname"] for r in by_contains] == [value]
