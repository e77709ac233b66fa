"""Flow prices-to-dataverse on the in-memory fakes (no HTTP, no Azurite): price lists created in
their currency, a missing currency dead-lettered alone with the list and ISO code named, the
Cost list never exported by default, prices as Currency Amount items in the product's default
unit, updated in place, removed, unchanged -> nothing written, the call count of a 1,000-product
backfill over 3 lists (with the products flow), throttling -> retry."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shared.brightpearl.errors import BrightpearlThrottled
from shared.dataverse.errors import DataverseThrottled
from shared.events import Envelope
from shared.flows.prices_to_dataverse import PricesToDataverse
from shared.flows.products_to_dataverse import ProductsToDataverse
from shared.mapping.prices import PriceSettings, parse_price_settings
from shared.mapping.products_config import load_product_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.store import AuditResult
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from tests.unit.flows.products.test_products_to_dataverse import notice

FLOW = "prices-to-dataverse"
COST, RETAIL, TRADE, EURO = 1, 2, 3, 4
SELL_LISTS = {"Retail GBP": True, "Trade GBP": True, "Retail EUR": True}


def settings(**section: Any) -> PriceSettings:
    return parse_price_settings({"price_lists": {"lists": SELL_LISTS, **section}})


class Rig:
    """Both fakes (Brightpearl's four price lists, Dynamics' GBP and EUR), the memory state
    store and the prices flow wired to them."""

    def __init__(
        self, price_settings: PriceSettings | None = None, *, currencies: tuple[str, ...] = ("GBP", "EUR")
    ):
        self.bp = FakeBrightpearl()
        self.bp.add_price_list(COST, "Cost price", "GBP", "BUY")
        self.bp.add_price_list(RETAIL, "Retail GBP", "GBP")
        self.bp.add_price_list(TRADE, "Trade GBP", "GBP")
        self.bp.add_price_list(EURO, "Retail EUR", "EUR")
        self.dv = FakeDataverse(products_active_on_create=True)
        self.currency = {
            iso: self.dv.add("transactioncurrencies", {"isocurrencycode": iso}) for iso in currencies
        }
        group = self.dv.add("uomschedules", {"name": "Default Unit"})
        self.unit = self.dv.add("uoms", {"name": "Primary Unit", "_uomscheduleid_value": group})
        self.store = MemoryStateStore()
        self.published: list[Envelope] = []
        self.flow = PricesToDataverse(
            brightpearl=self.bp,
            dataverse=self.dv,
            store=self.store,
            publish=self.published.extend,
            settings=price_settings or settings(),
        )

    def product(
        self, prices: dict[int, str | dict[str, str]], *, in_dynamics: bool = True, state: int = 0
    ) -> str:
        """A Brightpearl product with quantity-1 prices per list (or whole breaks), and its
        Dynamics product in the default unit."""
        product_id = self.bp.add_product({"identity": {"sku": f"SKU-{len(self.bp.products)}"}})
        for list_id, price in prices.items():
            self.bp.set_prices(product_id, list_id, price if isinstance(price, dict) else {"1": price})
        if in_dynamics:
            self.dv.add(
                "products",
                {"bpi_brightpearlid": str(product_id), "statecode": state, "_defaultuomid_value": self.unit},
            )
        return str(product_id)

    def sync(self, *ids: str) -> list[Any]:
        return self.flow.handle([notice(*ids)])

    def level(self, name: str) -> dict[str, Any]:
        [row] = [r for r in self.dv.tables["pricelevels"].values() if r["name"] == name]
        return row

    def items(self, product_id: str) -> dict[str, dict[str, Any]]:
        """The product's price list items by price list name."""
        [product] = [r for r in self.dv.tables["products"].values() if r["bpi_brightpearlid"] == product_id]
        names = {i: r["name"] for i, r in self.dv.tables["pricelevels"].items()}
        return {
            names[item["_pricelevelid_value"]]: item
            for item in self.dv.tables["productpricelevels"].values()
            if item["_productid_value"] == product["productid"]
        }

    def audit(self) -> dict[str, tuple[AuditResult, str | None, str]]:
        return {
            e.source_id: (e.result, e.reason_code, e.description or "")
            for e in self.store.audit.entries
            if e.flow == FLOW
        }


@pytest.fixture
def rig() -> Rig:
    return Rig()


# ---------------------------------------------------------------------------------- price lists
def test_a_new_price_list_is_created_in_its_brightpearl_currency(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "12.50", EURO: "14.00"})

    assert rig.sync(product_id) == [Completed()]

    assert rig.level("Retail GBP")["_transactioncurrencyid_value"] == rig.currency["GBP"]
    assert rig.level("Retail EUR")["_transactioncurrencyid_value"] == rig.currency["EUR"]
    assert rig.level("Trade GBP")["_transactioncurrencyid_value"] == rig.currency["GBP"]  # named, so exported
    items = rig.items(product_id)
    assert items["Retail EUR"]["_transactioncurrencyid_value"] == rig.currency["EUR"]  # the list's currency


def test_an_existing_price_list_is_found_by_name_and_not_created_again(rig: Rig) -> None:
    existing = rig.dv.add(
        "pricelevels", {"name": "retail gbp", "_transactioncurrencyid_value": rig.currency["GBP"]}
    )
    first, second = rig.product({RETAIL: "1"}), rig.product({RETAIL: "2"})

    rig.sync(first)
    rig.sync(second)

    assert [r["name"] for r in rig.dv.tables["pricelevels"].values()].count("retail gbp") == 1
    assert len(rig.dv.tables["pricelevels"]) == 3  # retail found; trade and EUR created once
    assert rig.items(first)["retail gbp"]["_pricelevelid_value"] == existing


def test_a_dynamics_name_override_names_the_dynamics_price_list() -> None:
    rig = Rig(settings(lists={"Retail GBP": {"dynamics_name": "Web shop"}}))
    product_id = rig.product({RETAIL: "5"})

    rig.sync(product_id)

    assert set(rig.items(product_id)) == {"Web shop"}
    assert rig.level("Web shop")["_transactioncurrencyid_value"] == rig.currency["GBP"]


def test_a_missing_currency_dead_letters_alone_the_product_priced_in_that_list_naming_list_and_iso() -> None:
    rig = Rig(currencies=("GBP",))  # Dynamics has no EUR
    both, gbp_only = rig.product({RETAIL: "10", EURO: "11.99"}), rig.product({RETAIL: "20"})

    assert rig.sync(both, gbp_only) == [Completed(note="1 bad record(s) split off for dead-lettering")]

    assert set(rig.items(gbp_only)) == {"Retail GBP"}  # the other product synced
    assert set(rig.items(both)) == {"Retail GBP"}  # and the bad one's prices in the other lists
    assert not [r for r in rig.dv.tables["pricelevels"].values() if r["name"] == "Retail EUR"]
    [split] = rig.published
    assert split.notice.ids == (both,) and split.replay_to == FLOW
    [outcome] = rig.flow.handle([split])  # the split notice, alone
    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "CurrencyMissing"
    assert "Brightpearl price list 4 (Retail EUR)" in outcome.description
    assert "isocurrencycode EUR" in outcome.description
    assert "11.99" not in outcome.description  # the value is not named
    assert rig.audit()[gbp_only][0] is AuditResult.SYNCED
    assert rig.audit()[both][:2] == (AuditResult.DEAD_LETTERED, "CurrencyMissing")


def test_a_dynamics_list_of_that_name_in_another_currency_is_not_written_to() -> None:
    rig = Rig()
    rig.dv.add("pricelevels", {"name": "Retail EUR", "_transactioncurrencyid_value": rig.currency["GBP"]})
    product_id = rig.product({EURO: "3"})

    [outcome] = rig.sync(product_id)

    assert isinstance(outcome, DeadLetter) and outcome.reason == "PriceListCurrencyMismatch"
    assert "is in EUR" in outcome.description and "is in GBP" in outcome.description
    assert rig.items(product_id) == {}


def test_the_cost_list_is_never_exported_by_default_even_when_named() -> None:
    rig = Rig(settings(lists={**SELL_LISTS, "Cost price": True}))
    product_id = rig.product({COST: "4.00", RETAIL: "9.00"})

    rig.sync(product_id)

    assert set(rig.items(product_id)) == {"Retail GBP"}
    assert not [r for r in rig.dv.tables["pricelevels"].values() if r["name"] == "Cost price"]


def test_the_cost_list_is_exported_when_the_mapping_asks() -> None:
    rig = Rig(settings(export_cost=True))
    product_id = rig.product({COST: "4.00", RETAIL: "9.00"})

    rig.sync(product_id)

    assert set(rig.items(product_id)) == {"Retail GBP", "Cost price"}
    assert rig.items(product_id)["Cost price"]["amount"] == 4


def test_no_exported_list_reads_no_prices() -> None:
    rig = Rig(parse_price_settings({}))
    product_id = rig.product({RETAIL: "1"})

    assert rig.sync(product_id) == [Completed()]

    assert "get_product_prices" not in rig.bp.calls
    assert rig.audit()[product_id][0] is AuditResult.SKIPPED


class RacingDataverse(FakeDataverse):
    """Another worker creates each price list a moment before this one does."""

    def create(self, entity_set: str, data: Any, *, detect_duplicates: bool = False) -> str:
        if entity_set == "pricelevels":
            rival = {k: v for k, v in data.items() if not k.endswith("@odata.bind")}
            self.add("pricelevels", {**rival, "createdon": "2000-01-01T00:00:00+00:00"})
        return super().create(entity_set, data, detect_duplicates=detect_duplicates)


def test_lists_created_by_two_workers_at_once_end_as_one_list_holding_the_items() -> None:
    rig = Rig()
    racing = RacingDataverse(products_active_on_create=True)
    racing.tables = rig.dv.tables
    rig.dv = rig.flow.dv = racing
    product_id = rig.product({RETAIL: "5"})

    assert rig.sync(product_id) == [Completed()]

    [retail] = [r for r in rig.dv.tables["pricelevels"].values() if r["name"] == "Retail GBP"]
    assert retail["createdon"].startswith("2000")  # the older one is kept, ours deleted
    assert rig.items(product_id)["Retail GBP"]["_pricelevelid_value"] == retail["pricelevelid"]
    assert len(rig.dv.tables["pricelevels"]) == 3


# ---------------------------------------------------------------------------------- items
def test_a_price_becomes_a_currency_amount_item_in_the_default_unit(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "12.50"})

    assert rig.sync(product_id) == [Completed()]

    [(name, item)] = rig.items(product_id).items()
    assert name == "Retail GBP"
    assert item["pricingmethodcode"] == 1  # Currency Amount (reference dataverse-api.md §10.9)
    assert item["amount"] == 12.5
    assert item["_uomid_value"] == rig.unit
    assert rig.audit()[product_id][0] is AuditResult.SYNCED


def test_only_quantity_break_1_is_mapped(rig: Rig) -> None:
    breaks = rig.product({RETAIL: {"1": "10", "5": "9.50", "10": "9"}})
    no_single = rig.product({RETAIL: {"5": "9.50"}})

    rig.sync(breaks, no_single)

    assert [i["amount"] for i in rig.items(breaks).values()] == [10]
    assert rig.items(no_single) == {}


def test_a_changed_price_updates_the_item_in_place(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "12.50"})
    rig.sync(product_id)
    [before] = rig.items(product_id).values()

    rig.bp.set_prices(int(product_id), RETAIL, {"1": "13.75"})
    assert rig.sync(product_id) == [Completed()]

    [after] = rig.items(product_id).values()  # no second item
    assert after["productpricelevelid"] == before["productpricelevelid"]
    assert after["amount"] == 13.75


def test_a_changed_default_unit_moves_the_item_to_it(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"})
    rig.sync(product_id)
    box = rig.dv.add("uoms", {"name": "Box"})
    [product] = [r for r in rig.dv.tables["products"].values() if r["bpi_brightpearlid"] == product_id]
    product["_defaultuomid_value"] = box

    rig.sync(product_id)

    [item] = rig.items(product_id).values()
    assert item["_uomid_value"] == box


def test_a_removed_price_removes_the_item(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "12.50", TRADE: "10"})
    rig.sync(product_id)

    rig.bp.set_prices(int(product_id), TRADE, None)
    assert rig.sync(product_id) == [Completed()]

    assert set(rig.items(product_id)) == {"Retail GBP"}
    assert "1 item(s) removed" in rig.store.audit.entries[-1].description


def test_an_unchanged_price_writes_nothing(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "12.50", EURO: "14"})
    rig.sync(product_id)
    rig.dv.calls.clear()

    assert rig.sync(product_id) == [Completed()]

    assert "execute_batch" not in rig.dv.calls and "create" not in rig.dv.calls
    assert rig.store.audit.entries[-1].result is AuditResult.SKIPPED


def test_an_amount_dynamics_rounded_to_its_precision_is_unchanged(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "9.555"})
    rig.sync(product_id)
    [item] = rig.items(product_id).values()
    item["amount"] = 9.56  # an organisation pricing to 2 decimals stores it so
    rig.dv.calls.clear()

    rig.sync(product_id)

    assert "execute_batch" not in rig.dv.calls


def test_a_new_price_dynamics_shows_without_decimals_is_a_change(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "10"})
    rig.sync(product_id)

    rig.bp.set_prices(int(product_id), RETAIL, {"1": "10.40"})
    rig.sync(product_id)

    [item] = rig.items(product_id).values()
    assert item["amount"] == 10.4


def test_an_item_edited_in_dynamics_is_put_back(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "7"})
    rig.sync(product_id)
    [item] = rig.items(product_id).values()
    item.update(amount=99, pricingmethodcode=2)

    rig.sync(product_id)

    [item] = rig.items(product_id).values()
    assert (item["amount"], item["pricingmethodcode"]) == (7, 1)


# ---------------------------------------------------------------------------------- other cases
def test_a_product_dynamics_does_not_have_yet_is_retried(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"}, in_dynamics=False)

    [outcome] = rig.sync(product_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "DataverseReferenceMissing"
    assert "execute_batch" not in rig.dv.calls


def test_a_product_still_draft_waits_for_the_products_flow_to_publish_or_retire_it(rig: Rig) -> None:
    # An archived Brightpearl product is created Draft, then retired: prices written in between
    # would stay on a retired product.
    product_id = rig.product({RETAIL: "1"}, state=2)

    [outcome] = rig.sync(product_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "DataverseReferenceMissing"
    assert "Draft" in outcome.error
    assert "execute_batch" not in rig.dv.calls


def test_a_retired_product_is_left_alone(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"}, state=1)

    assert rig.sync(product_id) == [Completed()]

    assert "execute_batch" not in rig.dv.calls
    assert rig.audit()[product_id][0] is AuditResult.SKIPPED


def test_a_destroyed_product_is_skipped_without_reads(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"})

    assert rig.flow.handle([notice(product_id, operation="deleted")]) == [Completed()]

    assert rig.bp.calls == [] and rig.dv.calls == []


def test_a_product_gone_from_brightpearl_is_missing_not_an_error(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"})
    del rig.bp.products[int(product_id)]

    assert rig.sync(product_id) == [Completed()]

    assert rig.audit()[product_id][:2] == (AuditResult.MISSING, "BrightpearlRecordMissing")


def test_brightpearl_throttling_is_a_retry(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"})
    rig.bp.fail_next["get_product_prices"] = [BrightpearlThrottled("over the cap", retry_after=12)]

    [outcome] = rig.sync(product_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "BrightpearlThrottled"
    assert rig.items(product_id) == {}
    assert rig.sync(product_id) == [Completed()]  # the retry
    assert set(rig.items(product_id)) == {"Retail GBP"}


def test_dataverse_throttling_of_the_item_writes_is_a_retry(rig: Rig) -> None:
    product_id = rig.product({RETAIL: "1"})
    rig.dv.fail_next["execute_batch"] = [DataverseThrottled("429", status=429, retry_after=5)]

    [outcome] = rig.sync(product_id)

    assert isinstance(outcome, RetryLater) and outcome.reason == "DataverseThrottled"
    assert rig.sync(product_id) == [Completed()]
    assert set(rig.items(product_id)) == {"Retail GBP"}


# ---------------------------------------------------------------------------------- cost
def api_calls(bp: FakeBrightpearl, dv: FakeDataverse, products: int) -> dict[str, int]:
    """HTTP requests the fakes' calls stand for: a product GET by id set is one per 200 ids."""
    out: dict[str, int] = {}
    for name in bp.calls:
        out[f"bp.{name}"] = out.get(f"bp.{name}", 0) + 1
    if "bp.get_by_ids" in out:
        out["bp.get_by_ids"] = out["bp.get_by_ids"] * math.ceil(products / 200)
    for name in dv.calls:
        out[f"dv.{name}"] = out.get(f"dv.{name}", 0) + 1
    return out


def test_1000_products_in_3_lists_cost_a_bounded_number_of_calls_with_the_products_flow() -> None:
    """Issue 12's target: ≤ 40 API calls per 1,000 products, products and prices combined."""
    rig = Rig()
    ids = []
    for n in range(1000):
        product_id = rig.bp.add_product(
            {
                "identity": {"sku": f"CAT-{n:05d}"},
                "salesChannels": [{"salesChannelName": "Brightpearl", "productName": f"Product {n}"}],
                "stock": {"stockTracked": True},
            }
        )
        for list_id, price in ((RETAIL, "10"), (TRADE, "8"), (EURO, "12")):
            rig.bp.set_prices(product_id, list_id, {"1": price, "10": "7"})
        ids.append(str(product_id))
    rig.dv.tables["uoms"].clear()
    rig.dv.tables["uomschedules"].clear()
    products = ProductsToDataverse(
        brightpearl=rig.bp,
        dataverse=rig.dv,
        store=rig.store,
        publish=rig.published.extend,
        mapping=load_product_mapping(),
    )
    batch = [notice(*ids[i : i + 100]) for i in range(0, 1000, 100)]  # backfill notices: 100 ids each

    assert all(isinstance(o, Completed) for o in products.handle(batch))
    product_calls = api_calls(rig.bp, rig.dv, 1000)
    rig.bp.calls.clear()
    rig.dv.calls.clear()
    assert all(isinstance(o, Completed) for o in rig.flow.handle(batch))
    price_calls = api_calls(rig.bp, rig.dv, 1000)

    assert len(rig.dv.tables["productpricelevels"]) == 3000
    assert price_calls == {
        "bp.get_price_lists": 1,
        "bp.get_product_prices": 5,  # 200 ids a call
        # price lists (again once created), currencies, products (1,000 keys a query), items
        # (~500 product GUIDs a query, as many as the URL takes; 500 and 250 a query before)
        "dv.query": 2 + 1 + 1 + 2,
        "dv.create": 3,  # the three price lists
        "dv.execute_batch": 3,  # 3,000 new items, 1,000 a $batch
    }
    combined = sum(product_calls.values()) + sum(price_calls.values())
    print(
        f"products {sum(product_calls.values())} {product_calls}; prices {sum(price_calls.values())}; "
        f"combined {combined} per 1,000 products"
    )
    assert combined <= 40 + 4  # the one-off price list creates and re-read aside

    rig.bp.calls.clear()
    rig.dv.calls.clear()
    rig.flow.handle(batch)  # nothing changed: reads only
    assert sum(api_calls(rig.bp, rig.dv, 1000).values()) == 1 + 5 + 1 + 1 + 2
