"""Contract: throttling, faults, retries, safe creates and OAuth token handling over loopback."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from sandbox.brightpearl.app import Simulator
from shared.brightpearl.auth import MemoryTokenStore, TokenSet
from shared.brightpearl.client import BrightpearlClient
from shared.brightpearl.errors import (
    BrightpearlAmbiguousWrite,
    BrightpearlAuthError,
    BrightpearlThrottled,
    BrightpearlUnavailable,
)
from shared.brightpearl.models import ContactCreate
from shared.resilience import Action, classify


def ids(sim: Simulator) -> list[int]:
    with sim.state.lock:
        return sorted(sim.state.contacts)


def emails(sim: Simulator, address: str) -> int:
    with sim.state.lock:
        return sum(
            1
            for c in sim.state.contacts.values()
            if (c["communication"]["emails"].get("PRI") or {}).get("email") == address
        )


def test_throttle_storm_completes_without_errors_and_never_exceeds_the_cap(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    # Real Brightpearl: 200 per rolling 60 s. Here 20 per 0.2 s so the test takes seconds.
    sim.configure(rate_limit=20, rate_window_seconds=0.2)
    client = make_client(
        BRIGHTPEARL_RATE_LIMIT=20, BRIGHTPEARL_RATE_WINDOW_SECONDS=0.2, BRIGHTPEARL_RATE_RESERVE=0
    )
    contact_ids = ids(sim)

    def call(i: int) -> int:
        return client.get_contacts([contact_ids[i % len(contact_ids)]])[0].contact_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(500)))

    assert len(results) == 500  # every call returned a contact: zero errors surfaced
    snapshot = sim.throttle.snapshot()
    assert snapshot["maxInAnyWindow"] <= 20  # from the simulator's own admission log
    assert snapshot["admitted"] >= 500
    # The budget slows callers down before the cap: a naive client would be refused hundreds of times.
    assert snapshot["throttled"] < 50
    assert client.stats.throttled == snapshot["throttled"]


def test_a_throttled_request_waits_out_the_period_and_is_resent_even_for_post(
    client: BrightpearlClient, sim: Simulator
):
    sim.configure(rate_window_seconds=0.3)  # the 503 carries next-throttle-period <= 300 ms
    sim.add_fault("throttle", count=2, path="contact-service/contact", method="POST")
    contact_id = client.create_contact(ContactCreate.build(last_name="Throttled", email="t@example.com"))

    assert client.get_contact(contact_id).last_name == "Throttled"
    assert emails(sim, "t@example.com") == 1  # a 503 over the cap was never processed: safe to resend
    assert client.stats.throttled == 2


def test_throttle_that_outlasts_the_wait_budget_raises_throttled(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    sim.configure(rate_limit=1, rate_window_seconds=30)
    client = make_client(BRIGHTPEARL_MAX_THROTTLE_WAIT_SECONDS=0.5, BRIGHTPEARL_RATE_RESERVE=0)
    client.get_contacts(ids(sim)[:1])
    with pytest.raises(BrightpearlThrottled) as caught:
        client.get_contacts(ids(sim)[:1])
    verdict = classify(caught.value)
    assert verdict is not None and verdict.action is Action.RETRY_AFTER_THROTTLE
    assert verdict.retry_after is not None and verdict.retry_after > 0.5


@pytest.mark.parametrize("kind", ["503", "500", "drop"])
def test_idempotent_reads_are_retried_through_outages(client: BrightpearlClient, sim: Simulator, kind: str):
    sim.add_fault(kind, count=2, path="contact-service/contact", method="GET")
    assert len(client.get_contacts(ids(sim)[:3])) == 3
    assert client.stats.retries == 2


def test_reads_give_up_with_unavailable_after_max_retries(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    client = make_client(BRIGHTPEARL_MAX_RETRIES=2)
    sim.add_fault("500", count=10, method="GET")
    with pytest.raises(BrightpearlUnavailable, match="CMNU-003"):
        client.get_contacts(ids(sim)[:1])
    assert client.stats.calls == 3


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_posts_are_never_blindly_repeated(
    client: BrightpearlClient, sim: Simulator, admin: httpx.Client, kind: str
):
    sim.add_fault(kind, count=1, path="contact-service/contact", method="POST")
    with pytest.raises(BrightpearlAmbiguousWrite):
        client.create_contact(ContactCreate.build(last_name="Once", email="once@example.com"))
    assert admin.get("/requests").json()["byEndpoint"]["POST contact-service/contact"] == 1
    expected = 1 if kind == "drop" else 0  # a dropped answer: the server did create it
    assert emails(sim, "once@example.com") == expected


def test_ensure_contact_survives_a_timed_out_create_without_a_duplicate(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    client = make_client(BRIGHTPEARL_READ_TIMEOUT_SECONDS=0.3)
    sim.add_fault("timeout", count=1, seconds=1.0, path="contact-service/contact", method="POST")
    body = ContactCreate.build(last_name="Timeout", email="slow@example.com")

    contact_id, created = client.ensure_contact(body, email="slow@example.com")
    assert created and client.get_contact(contact_id).primary_email == "slow@example.com"
    assert client.ensure_contact(body, email="slow@example.com") == (contact_id, False)
    assert emails(sim, "slow@example.com") == 1


def test_static_token_failure_is_a_clear_auth_error(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    client = make_client(BRIGHTPEARL_ACCOUNT_TOKEN="revoked-token")
    with pytest.raises(BrightpearlAuthError, match=r"401.*Not authenticated.*BRIGHTPEARL_APP_REF") as caught:
        client.get_contacts(ids(sim)[:1])
    assert caught.value.status == 401
    assert client.stats.calls == 1  # a static token cannot be refreshed: no retry

    good = make_client()
    sim.add_fault("401", count=1)
    with pytest.raises(BrightpearlAuthError):
        good.get_contacts(ids(sim)[:1])


def oauth_client(
    make_client: Callable[..., BrightpearlClient], sim: Simulator, store: MemoryTokenStore, **env: object
) -> BrightpearlClient:
    return make_client(
        token_store=store, BRIGHTPEARL_AUTH_MODE="oauth", BRIGHTPEARL_TOKEN_REFRESH_SKEW_SECONDS=0, **env
    )


def test_oauth_code_exchange_then_transparent_refresh_on_expiry(
    make_client: Callable[..., BrightpearlClient], sim: Simulator, bp_server, admin: httpx.Client
):
    redirect = "https://integration.example/callback"
    with httpx.Client(follow_redirects=False) as http:
        answer = http.get(
            f"{bp_server.url}/oauth/authorize/sandbox",
            params={
                "response_type": "code",
                "client_id": "sandbox-app",
                "redirect_uri": redirect,
                "state": "xyz",
            },
        )
    assert answer.status_code == 302 and answer.headers["location"].startswith(redirect + "?code=")
    code = httpx.URL(answer.headers["location"]).params["code"]

    store = MemoryTokenStore()
    client = oauth_client(make_client, sim, store)
    auth = client.transport.auth
    first = auth.exchange_code(code, redirect)  # type: ignore[attr-defined]
    assert first.api_domain == f"127.0.0.1:{bp_server.port}" and first.installation_instance_id == "1"

    contact_ids = ids(sim)
    assert len(client.get_contacts(contact_ids[:5])) == 5
    admin.post("/tokens/expire")  # every access token dies mid-run
    assert len(client.get_contacts(contact_ids[5:10])) == 5  # 401 -> refresh -> replay, invisibly

    rotated = store.load()
    assert rotated is not None and rotated.refresh_token != first.refresh_token
    assert client.stats.refreshed == 1 and auth.refreshes == 1  # type: ignore[attr-defined]
    with httpx.Client() as http:  # the old refresh token was rotated away
        reuse = http.post(
            f"{bp_server.url}/sandbox/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first.refresh_token,
                "client_id": "sandbox-app",
            },
        )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


def test_oauth_refreshes_before_expiry_and_concurrent_callers_refresh_once(
    make_client: Callable[..., BrightpearlClient], sim: Simulator, bp_server
):
    code = sim.issue_code("sandbox", "https://integration.example/cb")
    store = MemoryTokenStore()
    client = oauth_client(make_client, sim, store)
    client.transport.auth.exchange_code(code, "https://integration.example/cb")  # type: ignore[attr-defined]
    tokens = store.load()
    assert tokens is not None
    store.save(tokens.model_copy(update={"expires_at": datetime(2000, 1, 1, tzinfo=UTC)}))
    client.transport.auth._tokens = None  # type: ignore[attr-defined]  # a new process reads the store

    contact_ids = ids(sim)
    with ThreadPoolExecutor(max_workers=6) as pool:
        found = list(pool.map(lambda i: client.get_contacts([contact_ids[i]])[0].contact_id, range(12)))
    assert found == contact_ids[:12]
    assert client.transport.auth.refreshes == 1  # type: ignore[attr-defined]
    assert sim.oauth.grants == 2  # the code exchange and one refresh


def test_oauth_without_any_refresh_token_names_the_fix(
    make_client: Callable[..., BrightpearlClient], sim: Simulator
):
    client = oauth_client(make_client, sim, MemoryTokenStore())
    with pytest.raises(BrightpearlAuthError, match="BRIGHTPEARL_OAUTH_REFRESH_TOKEN"):
        client.get_contacts(ids(sim)[:1])
    bad_refresh = oauth_client(make_client, sim, MemoryTokenStore(TokenSet(refresh_token="forged")))
    with pytest.raises(BrightpearlAuthError, match=r"invalid_grant|rotated"):
        bad_refresh.get_contacts(ids(sim)[:1])


def test_a_fault_path_covers_whole_segments_only(client: BrightpearlClient, sim: Simulator):
    """`contact-service/contact` faults contact GETs, not `contact-service/contact-search`."""
    sim.add_fault("500", count=1, path="contact-service/contact", method="GET")
    assert list(client.search_contacts(columns=["contactId"]))  # untouched by the fault
    assert client.stats.retries == 0
    assert len(client.get_contacts(ids(sim)[:2])) == 2  # this one met the fault and retried
    assert client.stats.retries == 1


def test_the_simulator_keeps_what_a_lost_answer_created(client: BrightpearlClient, sim: Simulator):
    """A dropped answer to an applied multi-message: the simulator records the addresses it made
    (the chaos test tells such orphans from any other kind by these ids)."""
    address = {"addressLine1": "1 Lost Lane", "postalCode": "BS1 4DJ", "countryIsoCode": "GBR"}
    sim.add_fault("drop", count=1, path="multi-message", method="POST")
    answers = client.create_many("/contact-service/postal-address/", [address, address])
    assert all(isinstance(a, BrightpearlAmbiguousWrite) for a in answers)
    [lost] = sim.lost_answers
    made = lost.created_ids("contact-service/postal-address")
    with sim.state.lock:
        assert len(made) == 2 and all(sim.state.addresses[i]["addressLine1"] == "1 Lost Lane" for i in made)
    assert lost.created_ids("contact-service/contact") == []
