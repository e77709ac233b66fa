"""StateStore: construction from settings (connection string or identity), tables, health, errors."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from azure.data.tables import TableServiceClient
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from sandbox.azurite import free_port
from shared.settings import StoreSettings
from shared.store import StateStore, StoreConflictError, StoreError, identity_credential


def settings(**values: str) -> StoreSettings:
    return StoreSettings.model_validate(values)


def test_from_settings_with_a_connection_string_works_end_to_end(azurite: str) -> None:
    prefix = f"s{uuid.uuid4().hex[:10]}"
    store = StateStore.from_settings(settings(
        AzureWebJobsStorage=azurite, STATE_TABLE_PREFIX=prefix, LEDGER_RETENTION_DAYS="3",
        AUDIT_RETENTION_DAYS="30", LINK_CLAIM_TIMEOUT_SECONDS="60",
    ), ensure_tables=True)
    try:
        assert store.table_names == {name: f"{prefix}{name}" for name in
                                     ("links", "ledger", "cursors", "audit")}
        assert store.ledger.retention.days == 3 and store.audit.retention_days == 30
        assert store.links.claim_timeout.total_seconds() == 60
        store.ensure_tables()  # idempotent
        assert store.check().ok
        store.cursors.save("x", "1")
        assert store.cursors.get("x").value == "1"  # type: ignore[union-attr]
    finally:
        store.drop_tables()
        store.close()


def test_identity_settings_build_a_client_for_the_account_endpoint() -> None:
    store = StateStore.from_settings(settings(AzureWebJobsStorage__accountName="stsyncprod"))
    assert isinstance(store.service, TableServiceClient)
    assert store.endpoint == "https://stsyncprod.table.core.windows.net"
    assert isinstance(store.service.credential, DefaultAzureCredential)
    assert store.links.table.url == "https://stsyncprod.table.core.windows.net"
    assert store.links.table_name == "links"


def test_user_assigned_identity_and_explicit_table_uri() -> None:
    store = StateStore.from_settings(settings(
        AzureWebJobsStorage__tableServiceUri="https://stsync.table.core.usgovcloudapi.net",
        AzureWebJobsStorage__accountName="ignored",
        AzureWebJobsStorage__clientId="00000000-1111-2222-3333-444444444444",
        STATE_TABLE_PREFIX="prod",
    ))
    assert store.endpoint == "https://stsync.table.core.usgovcloudapi.net"
    assert isinstance(store.service.credential, ManagedIdentityCredential)
    assert store.table_names["audit"] == "prodaudit"
    assert isinstance(identity_credential(None), DefaultAzureCredential)


def test_development_storage_shorthand_points_at_azurite_default_port() -> None:
    store = StateStore.from_settings(settings(AzureWebJobsStorage="UseDevelopmentStorage=true"))
    assert store.endpoint == "http://127.0.0.1:10002/devstoreaccount1"


def test_check_reports_missing_tables(azurite: str) -> None:
    store = StateStore.from_connection_string(azurite, table_prefix=f"m{uuid.uuid4().hex[:10]}")
    health = store.health()
    assert health.ok is False
    assert sorted(health.missing_tables) == sorted(store.table_names.values())
    assert health.error and "missing tables" in health.error
    with pytest.raises(StoreError, match="missing tables"):  # what the health endpoint sees
        store.check()
    store.ensure_tables()
    try:
        assert store.check().ok
    finally:
        store.drop_tables()


def test_check_reports_an_unreachable_account_without_raising() -> None:
    port = free_port()  # nothing listens there
    service = TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;",
        retry_total=0,
    )
    health = StateStore(service).health()
    assert health.ok is False
    assert health.error and "cannot reach Table Storage" in health.error
    with pytest.raises(StoreError, match="cannot reach"):
        StateStore(service).check()
    assert health.endpoint == f"http://127.0.0.1:{port}/devstoreaccount1"


def test_operations_on_missing_tables_say_so(azurite: str) -> None:
    store = StateStore.from_connection_string(azurite, table_prefix=f"n{uuid.uuid4().hex[:10]}")
    with pytest.raises(StoreError, match="does not exist"):
        store.cursors.save("c", "1")
    with pytest.raises(StoreError, match="does not exist"):
        store.ledger.seen("k")


class _Unavailable(BaseHTTPRequestHandler):
    """Answers every request like a storage front end in trouble."""

    def _answer(self) -> None:
        body = b'{"odata.error":{"code":"ServerBusy","message":{"lang":"en-US","value":"busy"}}}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-ms-error-code", "ServerBusy")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_MERGE = _answer

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def unavailable_storage() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/devstoreaccount1"
    finally:
        server.shutdown()
        server.server_close()


def test_server_errors_become_store_errors_naming_table_and_status(unavailable_storage: str) -> None:
    service = TableServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"TableEndpoint={unavailable_storage};",
        retry_total=0,
    )
    store = StateStore(service, table_prefix="x")
    with pytest.raises(StoreError) as failed:
        store.cursors.get("poller")
    assert not isinstance(failed.value, StoreConflictError)
    assert "HTTP 503" in str(failed.value) and "'xcursors'" in str(failed.value)
    health = store.health()
    assert health.ok is False and health.error and "503" in health.error


def test_bad_configuration_is_refused_with_the_setting_name() -> None:
    with pytest.raises(ValueError, match="STATE_TABLE_PREFIX"):
        StateStore(TableServiceClient.from_connection_string("UseDevelopmentStorage=true"),
                   table_prefix="9lives")
    with pytest.raises(StoreError, match="AzureWebJobsStorage"):
        StateStore.from_connection_string("AccountName=only")
