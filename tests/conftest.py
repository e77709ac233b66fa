"""Root fixtures shared by every test folder: one Azurite per session and a fresh state store.

Keep this file small: fixtures of one area belong in that folder's own conftest.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from sandbox.azurite import AzuriteTable
from shared.store import StateStore


@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Whatever a test puts into os.environ (CLI commands load settings files into it, the
    local host adds settings) is gone before the next test."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Connection string of an in-memory Azurite Table service on a free loopback port."""
    with AzuriteTable() as server:
        yield server.connection_string


@pytest.fixture
def state_store(azurite: str) -> Iterator[StateStore]:
    """A StateStore on the session's Azurite, with its own tables (unique prefix), dropped after."""
    store = StateStore.from_connection_string(azurite, table_prefix=f"t{uuid.uuid4().hex[:12]}")
    store.ensure_tables()
    try:
        yield store
    finally:
        store.drop_tables()
        store.close()
