"""`syncctl mapping check|preview --entity products`: the product mapping file checked by every
entity reading it (products, stock, prices) with the validated mapping shown; a preview of
Brightpearl products from the simulator as the Dynamics product rows they become."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sandbox.brightpearl import SimulatorServer
from syncctl.main import app

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
PRODUCTS_YAML = (ROOT / "mappings" / "products.yaml").read_text()
runner = CliRunner()
WIDE = {"COLUMNS": "240"}


@pytest.fixture(autouse=True)
def default_mapping_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PRODUCT_MAPPING_PATH",
        "CUSTOMER_MAPPING_PATH",
        "BRIGHTPEARL_BASE_URL",
        "BRIGHTPEARL_ACCOUNT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def bp_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(seed_contacts=0, seed_products=0, seed_orders=0) as server:
        yield server


@pytest.fixture
def settings(bp_server: SimulatorServer, tmp_path: Path) -> Path:
    bp_server.simulator.reset()
    values = dict(EXAMPLE, BRIGHTPEARL_BASE_URL=bp_server.url, BRIGHTPEARL_ACCOUNT=bp_server.account)
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": values}))
    return path


def add_product(server: SimulatorServer, sku: str, name: str) -> int:
    headers = {"brightpearl-app-ref": "sandbox-app", "brightpearl-account-token": "sandbox-account-token"}
    body = {
        "brandId": 1,
        "identity": {"sku": sku},
        "salesChannels": [{"salesChannelName": "Brightpearl", "productName": name}],
        "stock": {"stockTracked": True},
    }
    url = f"{server.url}/public-api/{server.account}/product-service/product/"
    answer = httpx.post(url, json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["response"])


def test_check_products_validates_the_file_and_shows_the_validated_mapping() -> None:
    result = runner.invoke(app, ["mapping", "check", "--entity", "products"], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "mapping OK" in result.output
    assert "unit_group:" in result.output and "default_unit: Primary Unit" in result.output  # defaults shown
    assert "stock:" in result.output and "measure: onHand" in result.output  # the stock section's reader


def test_check_products_names_each_problem_with_its_yaml_path(tmp_path: Path) -> None:
    broken = tmp_path / "products.yaml"
    broken.write_text(
        PRODUCTS_YAML.replace("  product_type: 1 ", "  product_type: 9 ").replace(
            '"Trade GBP": {export: true}', '"Trade GBP": {export: true, dynamics_name: ""}'
        )
    )

    result = runner.invoke(app, ["mapping", "check", str(broken), "--entity", "products"], env=WIDE)

    assert result.exit_code == 1
    assert "dataverse.product_type: 9 is not an option of producttypecode" in result.output
    assert "price_lists.lists.Trade GBP.dynamics_name" in result.output  # the prices flow's section


def test_check_customers_is_unchanged_and_an_unknown_entity_is_named() -> None:
    ok = runner.invoke(app, ["mapping", "check"])
    assert ok.exit_code == 0 and ok.output.strip() == "mapping OK"
    unknown = runner.invoke(app, ["mapping", "check", "--entity", "orderz"], env=WIDE)
    assert unknown.exit_code == 2 and "no entity 'orderz'" in unknown.output


def test_preview_products_shows_brightpearl_products_as_dynamics_rows(
    bp_server: SimulatorServer, settings: Path
) -> None:
    mug = add_product(bp_server, "MUG-BLUE", "Blue Mug")
    add_product(bp_server, "MUG-RED", "Red Mug")
    add_product(bp_server, "", "No SKU")

    result = runner.invoke(
        app, ["mapping", "preview", "--entity", "products", "--settings", str(settings)], env=WIDE
    )

    assert result.exit_code == 0, result.output
    assert "validated mapping" in result.output and "Default Unit" in result.output
    assert f"Brightpearl product {mug} -> Dynamics product" in result.output
    assert '"productnumber": "MUG-BLUE"' in result.output and '"name": "Blue Mug"' in result.output
    assert f'"bpi_brightpearlid": "{mug}"' in result.output
    assert "\"unit 'Primary Unit'\"" in result.output  # the default unit, by name
    assert "OK: would be written (Active in Dynamics" in result.output
    assert "DEAD-LETTER: InvalidSku" in result.output  # the product without a SKU


def test_preview_products_by_id_and_a_missing_one(bp_server: SimulatorServer, settings: Path) -> None:
    add_product(bp_server, "FIRST", "First")
    archived = add_product(bp_server, "OLD-ONE", "Old One")
    bp_server.simulator.state.set_product_status(archived, "ARCHIVED")

    one = runner.invoke(
        app,
        ["mapping", "preview", "--entity", "products", "--id", str(archived), "--settings", str(settings)],
        env=WIDE,
    )
    assert one.exit_code == 0, one.output
    assert '"productnumber": "OLD-ONE"' in one.output and "FIRST" not in one.output
    assert "(Retired in Dynamics" in one.output and '"statecode": 1' in one.output

    missing = runner.invoke(
        app,
        ["mapping", "preview", "--entity", "products", "--id", "987654", "--settings", str(settings)],
        env=WIDE,
    )
    assert missing.exit_code == 1 and "Brightpearl product 987654 not found" in missing.output


def test_preview_products_from_dataverse_is_refused(settings: Path) -> None:
    result = runner.invoke(
        app,
        ["mapping", "preview", "--entity", "products", "--from", "dataverse", "--settings", str(settings)],
        env=WIDE,
    )
    assert result.exit_code == 2 and "previewed from Brightpearl, their master" in result.output


@pytest.mark.parametrize(("entity", "shown"), [("prices", "Retail GBP:"), ("stock", "measure: onHand")])
def test_check_of_an_entity_reading_the_product_file_finds_mappings_products_yaml(
    entity: str, shown: str
) -> None:
    # stock and prices read mappings/products.yaml (PRODUCT_MAPPING_PATH's default), not <entity>.yaml
    result = runner.invoke(app, ["mapping", "check", "--entity", entity], env=WIDE)

    assert result.exit_code == 0, result.output
    assert "mapping OK" in result.output
    assert shown in result.output  # its section of the product file, validated
