"""The in-memory state store in a process of its own, for benchmarks that measure the
integration's memory.

In Azure the state store is Table Storage: its links, claims, ledger and cursors never sit in the
host's memory. A benchmark can run it in Azurite (the real emulator, a node process), but
Azurite keeps its tables in memory and slows down as they grow: a 20,000-order history backfill
(about 100,000 links and 300,000 audit rows) had not finished its first phase after 28 minutes on
two cores, and Azurite reset connections. So large runs keep the state in the tests' in-memory
store (shared/sync/fakes.py MemoryStateStore), held by a child process: the flows call it
through a pipe, one call at a time under a lock, with the same methods, results and exceptions.
Audit rows, which the flows only write, are counted here and not kept (as Azure keeps them in
Table Storage).

Fork it before this process starts any thread (as benchmarks/history.py does its simulators).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
from collections.abc import Iterator
from typing import Any

from shared.sync.fakes import MemoryCursors, MemoryKeeper, MemoryLedger, MemoryLinks

ROWS = "__rows__"  # the pseudo-method: how many link rows the store holds


def _child(conn: Any) -> None:
    from shared.flows.customer_value_store import MemoryCustomerValueStore
    from shared.sync.fakes import MemoryStateStore

    store: Any = MemoryStateStore()
    store.customer_value = MemoryCustomerValueStore()
    while True:
        message = conn.recv()
        if message is None:
            break
        table, method, args, kwargs = message
        try:
            if method == ROWS:
                conn.send(("ok", len(store.links.rows)))
                continue
            value = getattr(getattr(store, table), method)(*args, **kwargs)
            if isinstance(value, Iterator):
                value = list(value)
            conn.send(("ok", value))
        except Exception as exc:  # sent back whole: the store's errors are dataclasses
            conn.send(("raise", (type(exc), dict(exc.__dict__), exc.args)))


class StoreProcess:
    """The child holding the store; `store` is what the flows are given."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child, args=(child,), daemon=True)
        self.process.start()
        self.lock = threading.Lock()
        self.store = RemoteStateStore(self)

    def call(self, table: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self.lock:
            self.conn.send((table, method, args, kwargs))
            status, value = self.conn.recv()
        if status == "raise":
            kind, fields, exc_args = value
            exc = kind.__new__(kind)
            exc.__dict__.update(fields)
            exc.args = exc_args
            raise exc
        return value

    def close(self) -> None:
        if self.process.is_alive():
            with self.lock:
                self.conn.send(None)
        self.process.join(30)


class RemoteTable:
    """One table of the remote store: the methods its in-memory class has, called remotely."""

    def __init__(self, owner: StoreProcess, table: str, kind: type) -> None:
        self._owner, self._table, self._kind = owner, table, kind

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or not callable(getattr(self._kind, name, None)):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._owner.call(self._table, name, args, kwargs)

        return call


class RemoteLinks(RemoteTable):
    def keep(self, claims: Any) -> contextlib.AbstractContextManager[MemoryKeeper]:
        """As the in-memory store: nothing expires, every claim stays held."""
        return contextlib.nullcontext(MemoryKeeper())

    @property
    def row_count(self) -> int:
        return int(self._owner.call("links", ROWS, (), {}))


class RemoteStateStore:
    """links, ledger, cursors and the customer value store in the child; audit set by the caller."""

    def __init__(self, owner: StoreProcess) -> None:
        from shared.flows.customer_value_store import MemoryCustomerValueStore

        self.links = RemoteLinks(owner, "links", MemoryLinks)
        self.ledger = RemoteTable(owner, "ledger", MemoryLedger)
        self.cursors = RemoteTable(owner, "cursors", MemoryCursors)
        self.customer_value = RemoteTable(owner, "customer_value", MemoryCustomerValueStore)
        self.audit: Any = None

    def drop_tables(self) -> None:
        pass

    def close(self) -> None:
        pass
