"""The sandbox pieces of issue 5: the Dataverse simulator gets the customer solution's
columns, and `syncctl sandbox up` runs that simulator and offers the demo command; and of
issue 12: `sandbox up` seeds a catalogue whose size can be chosen, or none."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sandbox.catalogue_demo import PRODUCTS_SETTING, catalogue_size
from sandbox.customers_solution import solution_schema
from sandbox.up import plan
from shared.mapping import load_customer_mapping, required_columns
from syncctl.main import app


def test_solution_schema_has_every_column_the_mapping_reads_or_writes():
    schema = solution_schema()
    for entity, columns in required_columns(load_customer_mapping()).items():
        missing = [c for c in columns if c not in schema.tables[entity].columns]
        assert missing == [], f"{entity}: {missing}"
    segment = schema.tables["contact"].columns["bpi_segment"]
    assert segment.type == "picklist" and set(segment.options) == {100000000, 100000001, 100000002}


def test_sandbox_up_runs_the_dataverse_simulator_with_the_solution():
    services = {s.name: s for s in plan({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})}
    assert "sandbox.customers_solution" in services["dataverse simulator"].argv
    result = CliRunner().invoke(app, ["sandbox", "--help"])
    assert "demo" in result.output and "up" in result.output


def test_sandbox_up_offers_to_skip_or_size_the_catalogue(monkeypatch):
    result = CliRunner().invoke(app, ["sandbox", "up", "--help"], env={"COLUMNS": "200"})
    assert "--no-catalogue" in result.output and "--catalogue-products" in result.output
    monkeypatch.delenv(PRODUCTS_SETTING, raising=False)
    assert catalogue_size({}) == 300
    assert catalogue_size({PRODUCTS_SETTING: "0"}) == 0  # none
    monkeypatch.setenv(PRODUCTS_SETTING, "60")
    assert catalogue_size({}) == 60 and catalogue_size({}, 500) == 500
    with pytest.raises(ValueError, match=f"{PRODUCTS_SETTING}: a catalogue needs at least 40 products"):
        catalogue_size({}, 10)
