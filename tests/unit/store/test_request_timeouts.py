"""A storage call that never gets an answer fails after the store's read timeout (and the SDK's
retries) instead of hanging for the transport's 300 s default, which froze a whole batch for
five minutes in a chaos run."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from shared.store import state
from shared.store.state import StateStore

KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and reads requests but never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.timeout(60)
def test_a_store_call_without_an_answer_fails_instead_of_hanging(
    silent_server: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(state.REQUEST_TIMEOUTS, "read_timeout", 0.3)
    store = StateStore.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        f"TableEndpoint=http://127.0.0.1:{silent_server}/devstoreaccount1;"
    )
    with pytest.raises(Exception, match=r"(?i)timed? ?out"):
        store.ensure_tables()


def test_both_ways_of_connecting_bound_each_request() -> None:
    assert 0 < state.REQUEST_TIMEOUTS["read_timeout"] <= 60
    assert 0 < state.REQUEST_TIMEOUTS["connection_timeout"] <= 30
