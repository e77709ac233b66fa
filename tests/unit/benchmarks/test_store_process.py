"""benchmarks/store_process.py: the in-memory state store in a child process answers as the
in-process one does: links made and read back, the store's own errors (a claim another worker
holds) raised in the caller with their fields, and the held link rows counted."""

from __future__ import annotations

import pytest

from benchmarks.store_process import StoreProcess
from shared.store.errors import ClaimTaken


def test_the_remote_store_links_claims_and_raises_as_the_in_memory_one() -> None:
    held = StoreProcess()
    try:
        links = held.store.links
        links.link("order", "brightpearl", "7", "dataverse", "a1", source_hash="s", target_hash="t")
        link = links.get("order", "brightpearl", "7")
        assert link is not None and link.id_in("dataverse") == "a1"
        assert set(links.get_many("order", "brightpearl", ["7", "8"])) == {"7"}

        claim = links.claim("order", "brightpearl", "9", "dataverse")
        with pytest.raises(ClaimTaken) as taken:
            links.claim("order", "brightpearl", "9", "dataverse")
        assert taken.value.row_key and taken.value.link is not None and not taken.value.link.is_linked
        links.complete_claim(claim, "b2")
        with links.keep([claim]) as keeper:
            assert keeper.held(claim)
        assert links.row_count == 4  # each link is held under both of its sides
        with pytest.raises(AttributeError):
            links.no_such_method  # noqa: B018 - only the in-memory store's methods exist
    finally:
        held.close()
    assert not held.process.is_alive()
