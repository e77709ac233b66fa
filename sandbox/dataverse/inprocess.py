"""A DataverseClient wired to a Simulator in the same process, without a socket.

The sandbox provisions the integration's schema into a bare simulator before it serves
(sandbox/customers_solution.py) with the same code a real deployment runs
(`syncctl dataverse provision`). Requests go through the engine exactly as over HTTP, as the
default application user; the token check, service protection and fault injection of the
HTTP front door are skipped.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

import httpx
from azure.core.credentials import AccessToken

from sandbox.dataverse.app import API_ROOT, Simulator, url_too_long
from sandbox.dataverse.config import DEFAULT_CLIENT_ID
from sandbox.dataverse.protocol import SimRequest, User
from sandbox.dataverse.seed import app_user_id
from shared.dataverse.client import DataverseClient

BASE_URL = "http://dataverse.in-process"


class InProcessCredential:
    """A TokenCredential for the in-process transport (which checks no token)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("in-process", int(time.time()) + 3600)


class InProcessTransport(httpx.BaseTransport):
    def __init__(self, simulator: Simulator, client_id: str = DEFAULT_CLIENT_ID) -> None:
        self.simulator = simulator
        self.user = User(app_user_id(client_id), f"app {client_id[:8]}")

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith(API_ROOT):
            return httpx.Response(404, json={"error": {"code": "", "message": f"no route {path}"}})
        query = request.url.query.decode("latin-1")
        too_long = url_too_long(request.url.raw_path.split(b"?")[0].decode("latin-1"), query)
        response = too_long or self.simulator.dispatch(
            SimRequest(
                method=request.method,
                path=unquote(path[len(API_ROOT) :].lstrip("/")),
                query=query,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=request.read(),
                user=self.user,
                base_url=BASE_URL,
            )
        )
        return httpx.Response(
            response.status, headers={"OData-Version": "4.0", **response.headers}, content=response.body
        )


def in_process_client(simulator: Simulator) -> DataverseClient:
    return DataverseClient(
        BASE_URL, InProcessCredential(), transport=InProcessTransport(simulator), max_retries=0
    )
