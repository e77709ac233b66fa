"""The details errors carry beside their message (status, code, the contested row, ...)."""

import pytest

from shared.dataverse.errors import DataverseError, DataverseThrottled
from shared.store.errors import ClaimTaken, StoreConflictError, StoreError


def test_dataverse_errors_carry_status_code_and_retry_after():
    error = DataverseThrottled("429 too many", status=429, code="0x80072322", retry_after=5.0)
    assert isinstance(error, DataverseError)
    assert str(error) == "429 too many" and error.args == ("429 too many",)
    assert repr(error) == "DataverseThrottled('429 too many')"
    assert (error.status, error.code, error.retry_after) == (429, "0x80072322", 5.0)
    assert error.request_id is None and error.server_message == "429 too many"
    plain = DataverseError("odd answer")
    assert (plain.status, plain.code, plain.retry_after) == (None, None, None)


def test_store_conflicts_name_the_contested_row():
    error = StoreConflictError("lost the race", table="links", partition_key="p", row_key="7")
    assert isinstance(error, StoreError) and str(error) == "lost the race"
    assert (error.table, error.partition_key, error.row_key) == ("links", "p", "7")
    assert StoreConflictError("lost").table is None


def test_a_taken_claim_carries_the_link_and_the_wait():
    error = ClaimTaken("taken", link=None, table="links", partition_key="p", row_key="7", retry_after=3.0)
    assert isinstance(error, StoreConflictError) and str(error) == "taken"
    assert (error.link, error.retry_after, error.row_key) == (None, 3.0, "7")
    with pytest.raises(TypeError):
        ClaimTaken("taken", table="links", partition_key="p", row_key="7")  # type: ignore[call-arg]
