"""Token stores (memory, file, Key Vault via the real SecretClient) and OAuth refresh logic."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.keyvault.secrets import SecretClient

from shared.brightpearl.auth import (
    FileTokenStore,
    KeyVaultTokenStore,
    MemoryTokenStore,
    OAuthAuth,
    PrivateAppAuth,
    PublicAppAuth,
    TokenSet,
    sign_token,
)
from shared.brightpearl.errors import BrightpearlAuthError, BrightpearlUnavailable

from .conftest import FakeCredential, InMemoryKeyVault

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def token_endpoint(answers: list[httpx.Response], seen: list[dict[str, str]]) -> httpx.Client:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(dict(httpx.QueryParams(request.content.decode())))
        return answers.pop(0)

    return httpx.Client(transport=httpx.MockTransport(handle))


def oauth(store: MemoryTokenStore, http: httpx.Client, **kwargs: object) -> OAuthAuth:
    return OAuthAuth(
        token_url="https://bp.example/acme/oauth/token",
        client_id="app",
        app_ref="app",
        dev_ref="dev",
        store=store,
        account="acme",
        http=http,
        now=lambda: NOW,
        **kwargs,
    )


def test_file_store_round_trip_is_owner_only(tmp_path):
    store = FileTokenStore(tmp_path / "tokens" / "bp.json")
    assert store.load() is None
    tokens = TokenSet(
        access_token="a", refresh_token="r", expires_at=NOW, api_domain="ws-eu1.brightpearl.com"
    )
    store.save(tokens)
    assert store.load() == tokens
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.path.write_text('{"access_token": "a"}')
    with pytest.raises(BrightpearlAuthError, match=r"bp\.json is not a valid token set"):
        store.load()


def test_key_vault_store_through_the_real_secret_client(key_vault: InMemoryKeyVault):
    client = SecretClient("https://unit.vault.azure.net", FakeCredential(), transport=key_vault)
    store = KeyVaultTokenStore(client, "brightpearl-oauth-token")
    assert store.load() is None  # SecretNotFound -> empty store

    first = TokenSet(access_token="a1", refresh_token="r1", expires_at=NOW)
    store.save(first)
    store.save(first.model_copy(update={"refresh_token": "r2"}))
    assert store.load() is not None and store.load().refresh_token == "r2"  # type: ignore[union-attr]
    assert len(key_vault.secrets["brightpearl-oauth-token"]) == 2  # a new version per rotation
    assert json.loads(key_vault.secrets["brightpearl-oauth-token"][-1]["value"])["refresh_token"] == "r2"
    assert key_vault.secrets["brightpearl-oauth-token"][-1]["contentType"] == "application/json"


def test_refresh_rotates_and_saves_before_use():
    store = MemoryTokenStore(
        TokenSet(access_token="old", refresh_token="r1", expires_at=NOW - timedelta(seconds=1))
    )
    seen: list[dict[str, str]] = []
    http = token_endpoint(
        [
            httpx.Response(
                200,
                json={
                    "access_token": "new",
                    "refresh_token": "r2",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "api_domain": "ws-use.brightpearl.com",
                    "installation_instance_id": 7,
                },
            )
        ],
        seen,
    )
    auth = oauth(store, http, client_secret="shh")

    headers = auth.headers()

    assert headers == {
        "Authorization": "Bearer new",
        "brightpearl-app-ref": "app",
        "brightpearl-dev-ref": "dev",
    }
    assert seen == [
        {
            "grant_type": "refresh_token",
            "refresh_token": "r1",
            "client_id": "app",
            "client_secret": "shh",
            "account_code": "acme",
        }
    ]
    saved = store.load()
    assert saved is not None and saved.refresh_token == "r2" and saved.expires_at == NOW + timedelta(hours=1)
    assert auth.api_domain() == "ws-use.brightpearl.com" and auth.installation_instance_id() == "7"
    assert auth.headers()["Authorization"] == "Bearer new"  # still valid: no second refresh
    assert store.saves == 1


def test_refresh_without_rotation_keeps_the_refresh_token():
    store = MemoryTokenStore(TokenSet(refresh_token="keep-me"))
    http = token_endpoint([httpx.Response(200, json={"access_token": "a", "expires_in": 60})], [])
    auth = oauth(store, http)
    auth.headers()
    assert store.load().refresh_token == "keep-me"  # type: ignore[union-attr]


def test_refused_and_failing_token_endpoint():
    refused = oauth(
        MemoryTokenStore(TokenSet(refresh_token="dead")),
        token_endpoint(
            [
                httpx.Response(
                    400,
                    json={
                        "error": "invalid_grant",
                        "error_description": "refresh_token is invalid or was rotated",
                    },
                )
            ],
            [],
        ),
    )
    with pytest.raises(BrightpearlAuthError, match=r"refused the refresh_token grant.*was rotated"):
        refused.headers()
    down = oauth(MemoryTokenStore(TokenSet(refresh_token="r")), token_endpoint([httpx.Response(502)], []))
    with pytest.raises(BrightpearlUnavailable):
        down.headers()


def test_on_unauthorized_refreshes_once_per_stale_token():
    store = MemoryTokenStore(
        TokenSet(access_token="t1", refresh_token="r1", expires_at=NOW + timedelta(hours=1))
    )
    http = token_endpoint(
        [httpx.Response(200, json={"access_token": "t2", "refresh_token": "r2", "expires_in": 3600})], []
    )
    auth = oauth(store, http)
    sent = auth.headers()
    assert auth.on_unauthorized(sent) is True and auth.refreshes == 1
    assert auth.on_unauthorized(sent) is True and auth.refreshes == 1  # already refreshed by someone else


def test_private_app_headers_and_no_refresh():
    auth = PrivateAppAuth("app", "token")
    assert auth.headers() == {"brightpearl-app-ref": "app", "brightpearl-account-token": "token"}
    assert auth.on_unauthorized(auth.headers()) is False
    with pytest.raises(ValueError, match="app_ref and account_token"):
        PrivateAppAuth("app", "")


def test_public_app_token_signing_matches_brightpearls_test_vector():
    # reference §2.3 / S14
    unsigned = "MlcTe8zimMPgYf/batW+ckJEAj467bbapA0cQBx6WwM="
    secret = "irhkVURWuLDYZwziDKhCsSGYrczWtfL7Pz5oX2GRDXo="
    assert sign_token(unsigned, secret) == "llWnSJurpSUUTLNOtVd8Ik/ox6+4OVY/TdLSvE1+VWg="
    headers = PublicAppAuth("app", "dev", unsigned, secret).headers()
    assert headers == {
        "brightpearl-app-ref": "app",
        "brightpearl-dev-ref": "dev",
        "brightpearl-account-token": "llWnSJurpSUUTLNOtVd8Ik/ox6+4OVY/TdLSvE1+VWg=",
    }
    with pytest.raises(ValueError, match="developer secret"):
        PublicAppAuth("app", "dev", unsigned, "")
