"""Authentication: the credential checks of every API call (reference §2) and the OAuth
authorization-code and refresh-token endpoints."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from sandbox.brightpearl.config import SimulatorConfig
from sandbox.brightpearl.envelope import NOT_AUTHENTICATED
from sandbox.brightpearl.errors import ApiError
from shared.brightpearl.auth import sign_token


@dataclass
class OAuthState:
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    grants: int = 0


class OAuthEndpoints:
    config: SimulatorConfig
    oauth: OAuthState

    def _authenticate(self, request: Request, account: str) -> str:
        h = request.headers
        config = self.config
        app_ref = h.get("brightpearl-app-ref")
        auth = h.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            with self.oauth.lock:
                info = self.oauth.access.get(token)
            if (
                info is None
                or info["expires"] <= time.time()
                or info["account"] != account
                or app_ref != config.app_ref
                or h.get("brightpearl-dev-ref") != config.dev_ref
            ):
                raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)
            return f"{account}|dev:{config.dev_ref}"
        if app_ref != config.app_ref:
            raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)
        account_token = h.get("brightpearl-account-token")
        staff_token = h.get("brightpearl-staff-token")
        dev = h.get("brightpearl-dev-ref")
        if dev and config.developer_secret:
            # public app: the account token must be signed with the developer secret (§2.3)
            expected = sign_token(config.account_token, config.developer_secret)
            if dev == config.dev_ref and account_token and hmac.compare_digest(account_token, expected):
                return f"{account}|dev:{dev}"
            raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)
        if account_token == config.account_token or (
            config.staff_token and staff_token == config.staff_token
        ):
            return f"{account}|dev:{dev}" if dev else account
        raise ApiError(401, "GWY-401", NOT_AUTHENTICATED)

    async def _authorize(self, request: Request) -> Response:
        """Authorization-code grant, step 1-3: the sandbox 'user' approves at once."""
        account = request.path_params["account"]
        q = request.query_params
        if account not in self.config.accounts:
            return JSONResponse({"error": "invalid_request", "error_description": "unknown account"}, 404)
        if (
            q.get("response_type") != "code"
            or q.get("client_id") != self.config.app_ref
            or not q.get("redirect_uri")
        ):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "response_type=code, client_id and redirect_uri are required",
                },
                400,
            )
        code = self.issue_code(account, q["redirect_uri"])
        params = {"code": code}
        if q.get("state"):
            params["state"] = q["state"]
        sep = "&" if "?" in q["redirect_uri"] else "?"
        return RedirectResponse(f"{q['redirect_uri']}{sep}{urlencode(params)}", status_code=302)

    def issue_code(self, account: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        with self.oauth.lock:
            self.oauth.codes[code] = {
                "account": account,
                "redirect_uri": redirect_uri,
                "expires": time.time() + 600,
            }
        return code

    def _tokens(self, account: str, host: str) -> dict[str, Any]:
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        ttl = self.config.access_token_ttl_seconds
        self.oauth.access[access] = {"account": account, "expires": time.time() + ttl}
        self.oauth.refresh[refresh] = {"account": account}
        self.oauth.grants += 1
        return {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": int(ttl) if ttl >= 1 else ttl,
            "installation_instance_id": self.config.accounts.index(account) + 1,
            "api_domain": host,
        }

    async def _token(self, request: Request) -> Response:
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return JSONResponse(
                {
                    "error": "invalid_request",
                    "error_description": "the token endpoint takes application/x-www-form-urlencoded",
                },
                400,
            )
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        account = request.path_params.get("account") or form.get("account_code") or self.config.accounts[0]

        def refuse(error: str, description: str, status: int = 400) -> Response:
            return JSONResponse({"error": error, "error_description": description}, status)

        if account not in self.config.accounts:
            return refuse("invalid_request", f"unknown account {account!r}")
        if form.get("client_id") != self.config.app_ref:
            return refuse("invalid_client", "client_id is not an app of this account", 401)
        if self.config.oauth_client_secret and form.get("client_secret") != self.config.oauth_client_secret:
            return refuse("invalid_client", "client_secret is wrong or missing", 401)
        host = request.headers.get("host", "127.0.0.1")
        grant = form.get("grant_type")
        with self.oauth.lock:
            if grant == "authorization_code":
                info = self.oauth.codes.pop(str(form.get("code")), None)
                if info is None or info["expires"] < time.time() or info["account"] != account:
                    return refuse("invalid_grant", "code is invalid, used or expired")
                if form.get("redirect_uri") != info["redirect_uri"]:
                    return refuse("invalid_grant", "redirect_uri does not match the authorization request")
                return JSONResponse(self._tokens(account, host))
            if grant == "refresh_token":
                token = str(form.get("refresh_token"))
                info = self.oauth.refresh.get(token)
                if info is None or info["account"] != account:
                    return refuse("invalid_grant", "refresh_token is invalid or was rotated")
                body = self._tokens(account, host)
                if self.config.rotate_refresh_tokens:
                    del self.oauth.refresh[token]
                else:
                    del self.oauth.refresh[body["refresh_token"]]
                    body["refresh_token"] = token
                return JSONResponse(body)
        return refuse("unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def expire_tokens(self) -> int:
        with self.oauth.lock:
            for info in self.oauth.access.values():
                info["expires"] = 0
            return len(self.oauth.access)
