"""The products flow reads its mapping file from the PRODUCT_MAPPING_PATH app setting (validated
with the others at start-up), a relative path resolved against the app root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared import runtime
from shared.flows.products_to_dataverse import ProductsToDataverse, product_mapping_path
from shared.settings import load_settings
from shared.sync.engine import RecordSync
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore

ROOT = Path(__file__).resolve().parents[4]
VALUES = {
    k: v
    for k, v in json.loads((ROOT / "local.settings.example.json").read_text())["Values"].items()
    if v != ""
}


def flow_with(flow: type[RecordSync[Any]] = ProductsToDataverse, **values: str) -> Any:
    """`flow` built by its from_runtime() with these app settings and fake adapters."""
    settings = load_settings({**VALUES, **values})
    with runtime.override(
        settings=settings,
        brightpearl=FakeBrightpearl(),
        dataverse=FakeDataverse(),
        state_store=MemoryStateStore(),
        publisher=object(),
    ):
        return flow.from_runtime()


def test_the_flow_uses_the_mapping_file_the_setting_names(tmp_path: Path):
    text = (ROOT / "mappings" / "products.yaml").read_text().replace("name: Default Unit", "name: Shop Units")
    (tmp_path / "shop.yaml").write_text(text)
    flow = flow_with(PRODUCT_MAPPING_PATH=str(tmp_path / "shop.yaml"))
    assert flow.mapping.unit_group.name == "Shop Units"


def test_a_relative_mapping_path_is_resolved_against_the_app_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # not the app root: a path relative to the working folder would fail
    flow = flow_with(PRODUCT_MAPPING_PATH="mappings/products.yaml")
    assert flow.mapping.unit_group.name == "Default Unit"
    with runtime.override(settings=load_settings(VALUES)):
        assert product_mapping_path() == ROOT / "mappings" / "products.yaml"


def test_the_default_is_the_shipped_mapping():
    settings = load_settings({k: v for k, v in VALUES.items() if k != "PRODUCT_MAPPING_PATH"})
    assert settings.products.mapping_path == "mappings/products.yaml"
    assert settings.products.brightpearl_poll_schedule == "15 */5 * * * *"


def test_the_prices_flow_reads_the_price_lists_of_the_file_the_setting_names(tmp_path: Path):
    from shared.flows.prices_to_dataverse import PricesToDataverse

    text = (ROOT / "mappings" / "products.yaml").read_text().replace('"Trade GBP": {export: true}', "")
    (tmp_path / "shop.yaml").write_text(text)
    flow = flow_with(PricesToDataverse, PRODUCT_MAPPING_PATH=str(tmp_path / "shop.yaml"))
    assert "Trade GBP" not in flow.settings.lists
    assert "Retail GBP" in flow.settings.lists
