"""A write or read rejected because the environment lacks a column or key is a configuration
problem (DataverseSchemaMissing: retried, named, fixed by provisioning), not a bad record."""

from __future__ import annotations

import pytest

from shared.dataverse.errors import DataverseSchemaMissing, DataverseValidationError, error_from_response
from shared.dataverse.provision import schema_plan
from shared.outcomes import DeadLetter, RetryLater
from shared.resilience import Action, classify, outcome_for_error
from tests.unit.dataverse.provisionfixtures import bare, bare_client, bare_server, provisioner

__all__ = ["bare", "bare_client", "bare_server"]

CONTACT_COLUMNS = "EntityDefinitions(LogicalName='contact')/Attributes"


@pytest.fixture
def provisioned_without_tags(bare, bare_client):
    provisioner(bare_client).run(schema_plan())
    bare_client.request("DELETE", f"{CONTACT_COLUMNS}(LogicalName='bpi_tags')")
    return bare_client


def assert_names_column_and_fix(error: BaseException, column: str) -> None:
    assert isinstance(error, DataverseSchemaMissing) and error.column == column and error.table == "contact"
    verdict = classify(error)
    assert (
        verdict is not None and verdict.reason == "DataverseSchemaMissing" and verdict.action is Action.RETRY
    )
    outcome = outcome_for_error(error, "Brightpearl contact 207")
    assert isinstance(outcome, RetryLater) and outcome.reason == "DataverseSchemaMissing"
    assert f"no column '{column}'" in outcome.error and "syncctl dataverse provision" in outcome.error
    assert "source record" not in outcome.error


def test_reading_a_missing_column_is_a_schema_problem(provisioned_without_tags):
    with pytest.raises(DataverseSchemaMissing) as caught:
        provisioned_without_tags.request("GET", "contacts", params={"$select": "lastname,bpi_tags"})
    assert_names_column_and_fix(caught.value, "bpi_tags")


def test_writing_a_missing_column_is_a_schema_problem(provisioned_without_tags):
    with pytest.raises(DataverseSchemaMissing) as caught:
        provisioned_without_tags.upsert(
            "contacts", {"bpi_brightpearlid": "207"}, {"lastname": "T", "bpi_tags": "x"}
        )
    assert_names_column_and_fix(caught.value, "bpi_tags")


def test_using_a_missing_alternate_key_is_a_schema_problem(bare, bare_client):
    with pytest.raises(DataverseSchemaMissing) as caught:
        bare_client.request("GET", "contacts(bpi_brightpearlid='207')")
    error = caught.value
    assert error.table == "contact" and error.column is None
    assert "alternate key" in str(error) and "syncctl dataverse provision" in str(error)


def test_other_rejections_stay_bad_records():
    error = error_from_response(
        400,
        {"error": {"code": "0x80044331", "message": "The length of the 'lastname' attribute ... exceeded"}},
        context="PATCH contacts(x)",
    )
    assert type(error) is DataverseValidationError
    verdict = classify(error)
    assert verdict is not None and verdict.reason == "DataverseRejected"
    assert isinstance(outcome_for_error(error, "contact"), DeadLetter)


def test_metadata_type_names_are_not_taken_for_tables():
    message = (
        "Could not find a property named 'MaxLength' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'."
    )
    error = error_from_response(400, {"error": {"code": "0x0", "message": message}})
    assert not isinstance(error, DataverseSchemaMissing)
