"""The catalogue's part of the schema (issue 12): `syncctl dataverse check|provision --products`
against a bare simulator on loopback, and `syncctl sandbox up`'s Dataverse (the
sandbox.customers_solution entry point) provisioned for the catalogue as well."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sandbox import customers_solution
from sandbox.dataverse import SimulatorServer
from sandbox.dataverse.app import Simulator
from shared.dataverse import schema
from shared.dataverse.environment_check import check_environment
from shared.dataverse.schema import schema_plan
from syncctl.main import app
from tests.unit.dataverse.provisionfixtures import (
    bare,
    bare_client,
    bare_config,
    bare_server,
    provisioner,
    settings_file,
    writes,
)
from tests.unit.dataverse.test_provision import EXPECTED_CHANGES

__all__ = ["bare", "bare_client", "bare_server"]

PRODUCT_CHANGES = [
    "product: create column bpi_brightpearlid (String, 100)",
    "product: create column bpi_availablestock (Decimal)",
    "product: create column bpi_ean (String, 14)",  # SKU matching's identifier (orders.yaml)
    "product: create alternate key bpi_brightpearlid_key on (bpi_brightpearlid)",
    "product: enable change tracking",
]  # the simulator's stock product table has the productnumber key already
CUSTOMER_CHANGES = [c for c in EXPECTED_CHANGES if c.startswith(("contact:", "account:"))]
ALL, CUSTOMERS = len(EXPECTED_CHANGES), len(CUSTOMER_CHANGES)  # the rest: the catalogue and the rest
PRODUCT_PLAN_LINE = (
    "product: columns bpi_brightpearlid (String), bpi_availablestock (Decimal), bpi_ean (String); keys "
    "bpi_brightpearlid_key (bpi_brightpearlid), bpi_productnumber_key (productnumber); change tracking"
)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


@pytest.fixture
def settings(bare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return settings_file(bare.server, tmp_path, monkeypatch)


def product_keys(client: Any) -> dict[str, tuple[list[str], str]]:
    keys = client.request("GET", "EntityDefinitions(LogicalName='product')/Keys").json()["value"]
    return {k["SchemaName"]: (k["KeyAttributes"], k["EntityKeyIndexStatus"]) for k in keys}


def test_provision_creates_the_product_columns_and_keys_once(bare, bare_client):
    plan = schema_plan(include_products=True)
    report = provisioner(bare_client).run(plan)
    assert [c for c in report.changes if c.startswith("product:")] == PRODUCT_CHANGES
    others = [c for c in report.changes if c.startswith(("contact:", "account:"))]
    assert others == CUSTOMER_CHANGES  # as before (orders, invoices and cases come with products)
    assert report.remaining == [] and report.pending_keys == []
    assert report.published == ["account", "contact", "product", "salesorder", "salesorderdetail"]
    stock = bare_client.request(
        "GET",
        "EntityDefinitions(LogicalName='product')/Attributes(LogicalName='bpi_availablestock')"
        "/Microsoft.Dynamics.CRM.DecimalAttributeMetadata",
    ).json()
    assert (stock["AttributeType"], stock["MinValue"], stock["MaxValue"], stock["Precision"]) == (
        "Decimal",
        -100_000_000_000,
        100_000_000_000,
        2,
    )
    assert product_keys(bare_client) == {
        "bpi_productnumber_key": (["productnumber"], "Active"),
        "bpi_brightpearlid_key": (["bpi_brightpearlid"], "Active"),
    }
    assert check_environment(bare_client, plan) == []

    before = writes(bare)
    again = provisioner(bare_client).run(plan)
    assert again.changes == [] and again.remaining == [] and again.published == []
    assert writes(bare) == before  # a second run only reads


def test_provisioned_product_columns_hold_stock_and_match_by_brightpearl_id(bare, bare_client):
    provisioner(bare_client).run(schema_plan(include_products=True))
    group = next(iter(bare_client.query("uomschedules", select=["name"], top=1)))
    unit = next(iter(bare_client.query("uoms", select=["name"], top=1)))
    created = bare_client.upsert(
        "products",
        {"bpi_brightpearlid": "1001"},
        {
            "name": "Mug",
            "productnumber": "MUG-1",
            "bpi_availablestock": 12.5,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({group.id})",
            "defaultuomid@odata.bind": f"/uoms({unit.id})",
        },
    )
    row = bare_client.get("products", {"bpi_brightpearlid": "1001"}, select=["bpi_availablestock"])
    assert row.id == created.id and row["bpi_availablestock"] == 12.5


def test_syncctl_check_and_provision_with_products(bare, settings):
    code, out = run("dataverse", "check", "--products", *settings)
    assert code == 1 and f"{ALL} problem(s)" in out
    assert "product: column 'bpi_availablestock' is missing. Fix: Run `syncctl dataverse provision`." in out
    assert "product: no alternate key on (bpi_brightpearlid)." in out
    assert PRODUCT_PLAN_LINE in out

    code, out = run("dataverse", "provision", "--products", "--dry-run", *settings)
    assert code == 0 and f"{ALL} change(s) to make (dry run, nothing changed)" in out
    assert all(change in out for change in PRODUCT_CHANGES)

    code, out = run("dataverse", "provision", "--products", *settings)
    assert code == 0, out
    assert f"{bare.url}: {ALL} change(s)" in out
    assert all(change in out for change in PRODUCT_CHANGES)

    code, out = run("dataverse", "check", "--products", *settings)
    assert code == 0 and "has every column, key and setting the mappings need" in out, out
    code, out = run("dataverse", "provision", "--products", *settings)
    assert code == 0 and f"{bare.url}: 0 change(s)" in out


def test_without_products_the_product_table_is_left_alone_and_said_so(bare, settings, monkeypatch):
    monkeypatch.setattr(schema, "products_wired", lambda: False)  # as long as the flow is not wired
    code, out = run("dataverse", "provision", *settings)
    assert code == 0 and f"{bare.url}: {CUSTOMERS} change(s)" in out
    assert "product:" not in out.split("Planned")[0]
    assert "product: not planned (the products flow is not wired yet; --products includes it)" in out
    code, out = run("dataverse", "check", "--no-products", *settings)
    assert code == 0 and PRODUCT_PLAN_LINE not in out
    code, out = run("dataverse", "check", "--products", *settings)
    assert code == 1 and f"{ALL - CUSTOMERS} problem(s)" in out  # product, orders, invoices, cases


# --- `syncctl sandbox up`'s Dataverse: python -m sandbox.customers_solution --------------------


def started(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """Run the entry point `syncctl sandbox up` runs, catching the app it hands to uvicorn."""
    import uvicorn

    served: list[Simulator] = []
    monkeypatch.setattr(uvicorn, "run", lambda simulator, **_: served.append(simulator))
    assert customers_solution.main(argv) == 0
    [simulator] = served
    return simulator


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`(argv) -> settings`: serve the schema the entry point built and point syncctl at it."""
    servers: list[SimulatorServer] = []

    def serve(argv: list[str]) -> list[str]:
        simulator = started(argv, monkeypatch)
        schema = simulator.engine.schema.clone()
        simulator.close()
        server = SimulatorServer(bare_config(), schema=schema)
        server.__enter__()
        servers.append(server)
        return settings_file(server, tmp_path, monkeypatch)

    yield serve
    for server in servers:
        server.__exit__(None, None, None)


def test_sandbox_up_provisions_the_catalogue_columns(served):
    code, out = run("dataverse", "check", "--products", *served([]))
    assert code == 0 and "has every column, key and setting the mappings need" in out, out
    assert PRODUCT_PLAN_LINE in out


def test_a_bare_sandbox_dataverse_lacks_the_catalogue_columns(served):
    code, out = run("dataverse", "check", "--products", *served(["--bare"]))
    assert code == 1
    for column in ("bpi_brightpearlid", "bpi_availablestock"):
        assert f"product: column '{column}' is missing." in out


def test_once_the_products_flow_is_wired_the_product_table_is_in_by_default(bare, settings, monkeypatch):
    monkeypatch.setattr(schema, "products_wired", lambda: True)
    code, out = run("dataverse", "check", *settings)
    assert code == 1 and f"{ALL} problem(s)" in out and PRODUCT_PLAN_LINE in out
    assert "product: column 'bpi_availablestock' is missing." in out
    code, out = run("dataverse", "check", "--no-products", *settings)
    assert code == 1 and f"{CUSTOMERS} problem(s)" in out and "product:" not in out


def test_a_standard_product_column_the_environment_lacks_points_at_the_products_mapping(bare_client):
    from shared.dataverse.environment_check import check_table
    from shared.dataverse.schema import ColumnSpec, TableSpec

    spec = TableSpec("product", (ColumnSpec("brandname", "string", "Brand", False, 100),))
    [problem] = check_table(bare_client, spec)
    assert (problem.kind, problem.fixable) == ("missing_standard_column", False)
    assert "correct the mapping (mappings/products.yaml)" in str(problem)
