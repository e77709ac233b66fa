"""`syncctl mapping suggest` and the schema check against both simulators on loopback: the
sandbox's seeded custom fields (sandbox/schema_seed.py: 14 pairs with realistic, differing
names and 4 decoys without a counterpart) are proposed from both schemas and sampled records,
the written mapping passes `syncctl mapping check`, and a custom field added on either side
afterwards is reported by the scheduled check with a suggested line."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from sandbox.brightpearl import SimulatorServer as BrightpearlServer
from sandbox.customers_solution import install
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from sandbox.dataverse.config import SimulatorConfig as DataverseConfig
from sandbox.dataverse.server import SimulatorServer as DataverseServer
from sandbox.schema_seed import (
    DECOYS,
    BrightpearlField,
    DataverseColumn,
    add_brightpearl_field,
    add_dataverse_column,
    seed_customer_schema,
    seed_product_schema,
)
from shared import runtime
from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential
from shared.mapping.config import read_customer_mapping
from shared.settings import load_settings
from shared.store import StateStore
from shared.suggest.service import run_scheduled
from syncctl.main import app
from tests.e2e.customers.conftest import sandbox_values

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[BrightpearlServer, DataverseServer]]:
    with (
        BrightpearlServer(seed_contacts=0, seed_products=0, seed_orders=0, rate_limit=100_000) as bp,
        DataverseServer(DataverseConfig(key_activation_seconds=0)) as dv,
    ):
        install(dv.simulator)  # a bare org provisioned for the shipped mappings
        yield bp, dv


@dataclass
class Seeded:
    bp: BrightpearlServer
    dv: DataverseServer
    client: DataverseClient
    truth: dict[str, str]
    settings: Path
    values: dict[str, str]
    mapping: Path  # the shipped customer mapping without its custom fields


@pytest.fixture
def seeded(
    servers: tuple[BrightpearlServer, DataverseServer], azurite: str, tmp_path: Path
) -> Iterator[Seeded]:
    bp, dv = servers
    bp.simulator.reset()
    dv.simulator.reset()
    client = DataverseClient(
        dv.url, SandboxCredential(dv.token_url, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)
    )
    truth = seed_customer_schema(bp.simulator.state, client, contacts=40)
    text = (ROOT / "mappings" / "customers.yaml").read_text()
    start, end = text.index("\ncustom_fields:"), text.index("\nduplicates:")
    mapping = tmp_path / "customers.yaml"
    mapping.write_text(text[:start] + "\ncustom_fields: []\n" + text[end:])
    prefix = f"s{uuid.uuid4().hex[:10]}"
    values = sandbox_values(bp, dv, azurite, tmp_path, prefix)
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": values}))
    store = StateStore.from_connection_string(azurite, table_prefix=prefix)
    store.ensure_tables()
    try:
        yield Seeded(bp, dv, client, truth, settings, values, mapping)
    finally:
        store.drop_tables()
        store.close()
        client.close()


def suggest(s: Seeded, *args: str) -> tuple[int, str]:
    out = CliRunner().invoke(
        app,
        ["mapping", "suggest", "--settings", str(s.settings), *args],
        env={"COLUMNS": "240"},
    )
    return out.exit_code, out.output


def test_suggest_maps_at_least_90_percent_of_the_seeded_fields_and_writes_a_mapping_that_passes_check(
    seeded: Seeded, tmp_path: Path
) -> None:
    written = tmp_path / "proposed.yaml"
    code, output = suggest(
        seeded, "--entity", "customer", "--mapping", str(seeded.mapping), "--write", str(written)
    )

    assert code == 0, output
    assert "passes syncctl mapping check" in output and "linked records agree" in output
    proposed = {cf.brightpearl: cf.dataverse for cf in read_customer_mapping(written).custom_fields}
    correct = sum(1 for code_, column in seeded.truth.items() if proposed.get(code_) == column)
    assert correct / len(seeded.truth) >= 0.9, (correct, len(seeded.truth), proposed)
    decoys = {d.brightpearl.code for d in DECOYS if d.brightpearl} | {
        d.dataverse.name for d in DECOYS if d.dataverse
    }
    assert not decoys & (set(proposed) | set(proposed.values()))
    assert (
        "# suggested: PCF_BIRTHDAY ('Birthday') -> bpi_dateofbirth ('Date of birth'), confidence"
        in written.read_text()
    )
    assert written.read_text().startswith(
        seeded.mapping.read_text()[:200]
    )  # the file's head and comments kept
    check = CliRunner().invoke(app, ["mapping", "check", str(written)])
    assert check.exit_code == 0 and "mapping OK" in check.output
    segment = next(
        cf for cf in read_customer_mapping(written).custom_fields if cf.brightpearl == "PCF_SEGMENT"
    )
    assert [(o.value, o.brightpearl_id, o.dataverse) for o in segment.options] == [
        ("Gold", 11, 100000000),
        ("Silver", 12, 100000001),
        ("Bronze", 13, 100000002),
    ]


def test_a_proposal_onto_a_mapping_that_fails_check_is_printed_not_written(
    seeded: Seeded, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        seeded.mapping.read_text().replace("    addresses: brightpearl", "    adresses: brightpearl")
    )
    written = tmp_path / "never.yaml"

    code, output = suggest(seeded, "--entity", "customer", "--mapping", str(broken), "--write", str(written))

    assert code == 1 and "adresses" in output and "does not pass mapping check" in output
    assert not written.exists()


def test_order_fields_are_shown_but_not_written_while_the_order_mapping_has_no_custom_fields(
    seeded: Seeded, tmp_path: Path
) -> None:
    written = tmp_path / "orders.yaml"
    code, output = suggest(seeded, "--entity", "order", "--write", str(written))

    assert code == 1 and "has no custom_fields section yet" in output, output
    assert "PCF_GIFTMSG (Gift message, TEXT)" in output
    assert not written.exists()


def test_product_custom_fields_are_proposed_from_both_schemas_and_printed(seeded: Seeded) -> None:
    truth = seed_product_schema(seeded.bp.simulator.state, seeded.client, products=20)

    code, output = suggest(seeded, "--entity", "product")

    assert code == 0, output
    proposed = dict(re.findall(r"# suggested: (PCF_\w+) \(.*?\) -> (bpi_\w+) ", output))
    correct = sum(1 for code_, column in truth.items() if proposed.get(code_) == column)
    assert correct / len(truth) >= 0.9 and set(proposed) <= set(truth), (proposed, truth)
    assert "records read: brightpearl 20" in output
    assert "has no custom_fields section yet" in output


def test_the_schema_check_reports_a_field_added_on_each_side_with_a_suggested_line(
    seeded: Seeded, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mapping = tmp_path / "mapped.yaml"
    code, output = suggest(
        seeded, "--entity", "customer", "--mapping", str(seeded.mapping), "--write", str(mapping)
    )
    assert code == 0, output
    settings = load_settings({**seeded.values, "CUSTOMER_MAPPING_PATH": str(mapping)})
    with runtime.override(settings=settings):
        [first] = run_scheduled()
    assert {i.key for i in first.ignored} == {
        "brightpearl:PCF_PICKCODE",
        "brightpearl:PCF_WHOLESALEDISC",
        "dataverse:bpi_lastcontacted",
        "dataverse:bpi_linkedinurl",
    }
    add_brightpearl_field(seeded.bp.simulator.state, BrightpearlField("PCF_GIFTAID", "Gift aid", "YES_NO"))
    add_dataverse_column(
        seeded.client, DataverseColumn("bpi_marketingregion", "Marketing region", "string", 100)
    )

    caplog.clear()  # the first run's events, captured when an earlier test left INFO on
    with runtime.override(settings=settings), caplog.at_level(logging.INFO):
        [report] = run_scheduled()

    assert sorted(report.new) == ["brightpearl:PCF_GIFTAID", "dataverse:bpi_marketingregion"]
    events = [r for r in caplog.records if getattr(r, "microsoft.custom_event.name", None) == "SchemaDrift"]
    assert sorted(r.field for r in events) == ["PCF_GIFTAID", "bpi_marketingregion"]
    out = CliRunner().invoke(
        app, ["mapping", "drift", "--settings", str(seeded.settings)], env={"COLUMNS": "240"}
    )
    assert out.exit_code == 0, out.output
    assert "new brightpearl PCF_GIFTAID (Gift aid, YES_NO)" in out.output
    assert "new dataverse bpi_marketingregion (Marketing region, String)" in out.output
    items = {i.key: i for i in report.ignored}
    assert yaml.safe_load(items["brightpearl:PCF_GIFTAID"].suggested) == [
        {"name": "gift_aid", "brightpearl": "PCF_GIFTAID", "dataverse": "bpi_giftaid", "type": "yesno"}
    ]
    assert (
        yaml.safe_load(items["dataverse:bpi_marketingregion"].suggested)[0]["dataverse"]
        == "bpi_marketingregion"
    )
    assert "brightpearl: PCF_GIFTAID" in out.output and "dataverse: bpi_marketingregion" in out.output
