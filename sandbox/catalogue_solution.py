"""The catalogue part of the sandbox's Dataverse: the integration columns and keys on `product`
(provisioned through the metadata Web API, as sandbox/customers_solution.py does for customers),
and a seed of the reference data a catalogue needs (unit group, currencies, price lists).

Provisioned on `product` (contracts: issue 12): `bpi_brightpearlid` (String 100, alternate key
`bpi_brightpearlid_key`), `bpi_availablestock` (Decimal), alternate key `bpi_productnumber_key`
on `productnumber`, and change tracking. All of it is the product part of the shared schema
plan (shared/dataverse/schema.py `plan_for_products`, from mappings/products.yaml) applied by
shared/dataverse/provision.py's Provisioner, the code `syncctl dataverse provision --products`
runs against a real environment: same metadata bodies, read first, create what is missing, wait
for keys to be Active. What customers get is not changed: this adds to the product table only.

`seed_catalogue(client)` works through any DataverseClient (in-process, or over HTTP against
the simulator or a test environment) and is re-runnable: it finds rows by name or ISO code
before creating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox import customers_solution
from sandbox.dataverse.app import Simulator
from sandbox.dataverse.inprocess import in_process_client
from shared.dataverse import odata
from shared.dataverse.client import DataverseClient
from shared.dataverse.provision import Provisioner, ProvisionReport
from shared.dataverse.schema import SchemaPlan, plan_for_products
from shared.mapping import CustomerMapping
from shared.mapping.products_config import ProductMapping, load_product_mapping


def catalogue_plan(mapping: ProductMapping | None = None) -> SchemaPlan:
    """The product table as the catalogue flow needs it (the product part of the schema plan)."""
    return SchemaPlan(tuple(plan_for_products(mapping or load_product_mapping())))


def provision_catalogue(
    client: DataverseClient,
    mapping: ProductMapping | None = None,
    *,
    poll_interval: float = 2.0,
    key_timeout: float = 300.0,
) -> ProvisionReport:
    """Create what the catalogue needs on `product` and is missing; re-runnable."""
    provisioner = Provisioner(client, poll_interval=poll_interval, key_timeout=key_timeout)
    return provisioner.run(catalogue_plan(mapping))


def provision_simulator(simulator: Simulator) -> ProvisionReport:
    """Provision the catalogue into `simulator` and keep it across `/_sandbox/reset`."""
    with in_process_client(simulator) as client:
        report = provision_catalogue(client, poll_interval=0.05, key_timeout=60)
    problems = [str(p) for p in report.remaining] + [f"key {k} still building" for k in report.pending_keys]
    if problems:
        raise RuntimeError(
            "provisioning the catalogue into the sandbox's Dataverse failed: " + "; ".join(problems)
        )
    simulator._base_schema = simulator.engine.schema.clone()
    return report


def install(simulator: Simulator, mapping: CustomerMapping | None = None) -> ProvisionReport:
    """A bare org provisioned for customers (sandbox.customers_solution.install), then the catalogue."""
    customers_solution.install(simulator, mapping)
    return provision_simulator(simulator)


# --- reference data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Currency:
    iso: str
    name: str
    symbol: str
    rate: float  # exchangerate against the organisation's base currency (§10.13)


DEFAULT_CURRENCIES = (Currency("GBP", "Pound Sterling", "£", 1.0), Currency("EUR", "Euro", "€", 1.17))
DEFAULT_PRICE_LISTS = (("Retail GBP", "GBP"), ("Retail EUR", "EUR"))


@dataclass
class CatalogueRefs:
    """Ids of the seeded reference rows, for binding products and price list items."""

    unit_group: str
    base_unit: str
    currencies: dict[str, str] = field(default_factory=dict)  # ISO code -> transactioncurrencyid
    price_lists: dict[str, str] = field(default_factory=dict)  # name -> pricelevelid


def _find(client: DataverseClient, entity_set: str, flt: odata.Filter, column: str) -> str | None:
    for record in client.query(entity_set, select=[column], filter=flt, top=1):
        return str(record[column])
    return None


def seed_catalogue(
    client: DataverseClient,
    *,
    unit_group: str = "Catalogue",
    base_unit: str = "each",
    currencies: Sequence[Currency] = DEFAULT_CURRENCIES,
    price_lists: Sequence[tuple[str, str]] = DEFAULT_PRICE_LISTS,
) -> CatalogueRefs:
    """A unit group with its base unit, the currencies (GBP is the simulator's base currency,
    EUR a second one) and one price list per (name, ISO code); existing rows are reused."""
    group = _find(client, "uomschedules", odata.eq("name", unit_group), "uomscheduleid")
    if group is None:
        group = client.create("uomschedules", {"name": unit_group, "baseuomname": base_unit})
    unit_filter = odata.lookup_eq("uomscheduleid", group) & odata.eq("name", base_unit)
    unit = _find(client, "uoms", unit_filter, "uomid")
    if unit is None:  # the group exists with another base unit: add this one, 1:1 with the base
        unit = client.create(
            "uoms", {"name": base_unit, "quantity": 1, "uomscheduleid@odata.bind": f"/uomschedules({group})"}
        )
    refs = CatalogueRefs(group, unit)
    for cur in currencies:
        found = _find(
            client, "transactioncurrencies", odata.eq("isocurrencycode", cur.iso), "transactioncurrencyid"
        )
        refs.currencies[cur.iso] = found or client.create(
            "transactioncurrencies",
            {
                "isocurrencycode": cur.iso,
                "currencyname": cur.name,
                "currencysymbol": cur.symbol,
                "currencyprecision": 2,
                "exchangerate": cur.rate,
            },
        )
    for name, iso in price_lists:
        if iso not in refs.currencies:
            raise ValueError(f"price list {name!r}: currency {iso} is not among the seeded currencies")
        found = _find(client, "pricelevels", odata.eq("name", name), "pricelevelid")
        refs.price_lists[name] = found or client.create(
            "pricelevels",
            {
                "name": name,
                "transactioncurrencyid@odata.bind": f"/transactioncurrencies({refs.currencies[iso]})",
            },
        )
    return refs


def seed_simulator(simulator: Simulator, **options: Any) -> CatalogueRefs:
    """`seed_catalogue` on a simulator in the same process (as its default application user)."""
    with in_process_client(simulator) as client:
        return seed_catalogue(client, **options)
