"""Reference data every environment has (currencies, units, price list, users, SDK messages) and
realistic demo records generated with Faker."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from faker import Faker

from sandbox.dataverse.protocol import SimRequest, User
from sandbox.dataverse.schema import Table
from sandbox.dataverse.tables.products import base_unit_id

if TYPE_CHECKING:
    from sandbox.dataverse.app import Simulator

CRM_USER_ID = "6f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
CRM_USER_NAME = "Casey Morgan (CRM user)"
NS = uuid.UUID("8d9b1f86-8c1e-4f37-9d53-7f0b2c1a5e11")


def app_user_id(client_id: str) -> str:
    return str(uuid.uuid5(NS, f"appuser:{client_id}"))


def fixed_id(name: str) -> str:
    return str(uuid.uuid5(NS, name))


def _req(sim: Simulator, user: User) -> SimRequest:
    return SimRequest("POST", "", "", {}, b"", user, sim.config.public_url or "http://127.0.0.1")


def seed_reference_data(sim: Simulator) -> None:
    engine = sim.engine
    system = User(id=fixed_id("system"), name="SYSTEM", kind="application")
    req = _req(sim, system)
    tables = engine.schema.tables
    users = [(fixed_id("system"), "SYSTEM", None), (CRM_USER_ID, CRM_USER_NAME, None)]
    users += [(app_user_id(c), f"# Integration app {c[:8]}", c) for c in sim.config.clients]
    for uid, name, app in users:
        engine.create(
            tables["systemuser"],
            {"systemuserid": uid, "fullname": name, **({"applicationid": app} if app else {})},
            req,
        )
    currencies = [
        ("GBP", "Pound Sterling", "£", 1.0),
        ("USD", "US Dollar", "$", 1.27),
        ("EUR", "Euro", "€", 1.17),
    ]
    for iso, name, symbol, rate in currencies:
        engine.create(
            tables["transactioncurrency"],
            {
                "transactioncurrencyid": fixed_id(f"currency:{iso}"),
                "isocurrencycode": iso,
                "currencyname": name,
                "currencysymbol": symbol,
                "currencyprecision": 2,
                "exchangerate": 1.0 if iso == sim.config.base_currency else rate,
            },
            req,
        )
    engine.create(
        tables["uomschedule"],
        {
            "uomscheduleid": fixed_id("uomschedule:default"),
            "name": "Default Unit",
            "baseuomname": "Primary Unit",
        },
        req,
    )
    # its base unit "Primary Unit" is created with it (reference §10.8): base_unit_id(schedule)
    if "organization" in tables:
        base = fixed_id(f"currency:{sim.config.base_currency}")
        engine.create(
            tables["organization"],
            {
                "organizationid": sim.config.organization_id,
                "name": sim.config.organization_name,
                "createproductswithoutparentinactivestate": sim.config.products_active_on_create,
                **(
                    {"basecurrencyid@odata.bind": f"/transactioncurrencies({base})"}
                    if base in engine.db.rows["transactioncurrency"]
                    else {}
                ),
            },
            req,
        )
    engine.create(
        tables["pricelevel"],
        {
            "pricelevelid": fixed_id("pricelevel:retail"),
            "name": "Retail GBP",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({fixed_id('currency:GBP')})",
        },
        req,
    )
    for message in engine.schema.messages:
        engine.create(
            tables["sdkmessage"], {"sdkmessageid": fixed_id(f"msg:{message}"), "name": message}, req
        )
    for table in tables.values():
        if table.system:
            continue
        for message in engine.schema.messages:
            if (
                message in ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")
                and message not in table.bulk
            ):
                continue
            engine.create(
                tables["sdkmessagefilter"],
                {
                    "sdkmessagefilterid": fixed_id(f"filter:{message}:{table.logical_name}"),
                    "primaryobjecttypecode": table.logical_name,
                    "sdkmessageid@odata.bind": f"/sdkmessages({fixed_id(f'msg:{message}')})",
                },
                req,
            )


BULK = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def sync_bulk_filters(sim: Simulator, table: Table) -> None:
    """Keep the sdkmessagefilters rows (the documented support probe) in step with `table.bulk`."""
    engine = sim.engine
    req = _req(sim, User(id=fixed_id("system"), name="SYSTEM"))
    with engine.db.transaction():
        for message in BULK:
            fid = fixed_id(f"filter:{message}:{table.logical_name}")
            present = fid in engine.db.rows["sdkmessagefilter"]
            if message in table.bulk and not present:
                engine.create(
                    engine.schema.tables["sdkmessagefilter"],
                    {
                        "sdkmessagefilterid": fid,
                        "primaryobjecttypecode": table.logical_name,
                        "sdkmessageid@odata.bind": f"/sdkmessages({fixed_id(f'msg:{message}')})",
                    },
                    req,
                )
            elif message not in table.bulk and present:
                engine.db.remove("sdkmessagefilter", fid)


def seed_demo(sim: Simulator, counts: dict[str, int], seed: int = 1) -> dict[str, int]:
    """Realistic accounts, contacts, products, orders and cases, created as the CRM user."""
    fake = Faker(["en_GB"])
    Faker.seed(seed)
    engine = sim.engine
    tables = engine.schema.tables
    req = _req(sim, User(CRM_USER_ID, CRM_USER_NAME, "interactive"))
    created: dict[str, int] = {}
    account_ids: list[str] = []
    for i in range(counts.get("accounts", 0)):
        account_ids.append(
            engine.create(
                tables["account"],
                {
                    "name": fake.company()[:160],
                    "accountnumber": f"AC{seed:02d}{i:05d}",
                    "telephone1": fake.phone_number(),
                    "emailaddress1": fake.company_email(),
                    "address1_line1": fake.street_address(),
                    "address1_city": fake.city(),
                    "address1_postalcode": fake.postcode(),
                    "address1_country": "United Kingdom",
                    "customertypecode": 3,
                    "bpi_brightpearlid": str(50000 + seed * 10000 + i),
                },
                req,
            )
        )
    created["account"] = len(account_ids)
    contact_ids: list[str] = []
    for i in range(counts.get("contacts", 0)):
        first, last = fake.first_name(), fake.last_name()
        body: dict[str, Any] = {
            "firstname": first,
            "lastname": last,
            "emailaddress1": f"{first}.{last}.{seed}.{i}@example.com".lower(),
            "telephone1": fake.phone_number(),
            "jobtitle": fake.job()[:100],
            "address1_line1": fake.street_address(),
            "address1_city": fake.city(),
            "address1_postalcode": fake.postcode(),
            "address1_country": "United Kingdom",
            "bpi_brightpearlid": str(10000 + seed * 10000 + i),
        }
        if account_ids and i % 3 == 0:
            body["parentcustomerid_account@odata.bind"] = f"/accounts({account_ids[i % len(account_ids)]})"
        contact_ids.append(engine.create(tables["contact"], body, req))
    created["contact"] = len(contact_ids)
    product_ids: list[str] = []
    for i in range(counts.get("products", 0)):
        product_ids.append(
            engine.create(
                tables["product"],
                {
                    "name": f"{fake.color_name()} {fake.word().title()}"[:100],
                    "productnumber": f"SKU-{seed:02d}-{i:05d}",
                    "quantitydecimal": 0,
                    "price": round(fake.pyfloat(min_value=2, max_value=400, right_digits=2), 2),
                    "defaultuomscheduleid@odata.bind": f"/uomschedules({fixed_id('uomschedule:default')})",
                    "defaultuomid@odata.bind": f"/uoms({base_unit_id(fixed_id('uomschedule:default'))})",
                    "bpi_brightpearlid": str(1000 + seed * 10000 + i),
                    "bpi_availablestock": float(fake.random_int(0, 500)),
                },
                req,
            )
        )
    created["product"] = len(product_ids)
    orders = 0
    for i in range(counts.get("orders", 0)):
        if not contact_ids:
            break
        order_id = engine.create(
            tables["salesorder"],
            {
                "name": f"Web order {seed}-{i}",
                "customerid_contact@odata.bind": f"/contacts({contact_ids[i % len(contact_ids)]})",
                "pricelevelid@odata.bind": f"/pricelevels({fixed_id('pricelevel:retail')})",
                "bpi_brightpearlid": str(200000 + seed * 10000 + i),
            },
            req,
        )
        for line in range(1 + i % 3):
            engine.create(
                tables["salesorderdetail"],
                {
                    "salesorderid@odata.bind": f"/salesorders({order_id})",
                    "isproductoverridden": True,
                    "productdescription": fake.catch_phrase()[:500],
                    "quantity": float(1 + line),
                    "priceperunit": round(fake.pyfloat(min_value=5, max_value=120, right_digits=2), 2),
                },
                req,
            )
        orders += 1
    created["salesorder"] = orders
    cases = 0
    for i in range(counts.get("cases", 0)):
        if not contact_ids:
            break
        engine.create(
            tables["incident"],
            {
                "title": fake.sentence(nb_words=6)[:200],
                "caseorigincode": 2,
                "casetypecode": 2,
                "customerid_contact@odata.bind": f"/contacts({contact_ids[i % len(contact_ids)]})",
            },
            req,
        )
        cases += 1
    created["incident"] = cases
    return created


def sku_variation_products(unit_group: str, base_unit: str) -> list[tuple[str, dict[str, Any]]]:
    """The Dynamics side of the SKU variations (sandbox/brightpearl/catalogue_seed.py
    `SKU_VARIATIONS`): a product body per case, its product number spelt as Dynamics has it, its
    EAN in bpi_ean; not linked to Brightpearl (an existing Dynamics catalogue). Create each as
    the CRM user (POST products) and price it to order it."""
    from sandbox.brightpearl.catalogue_seed import SKU_VARIATIONS

    out = []
    for v in SKU_VARIATIONS:
        body: dict[str, Any] = {
            "name": v.dynamics_name or v.name,
            "productnumber": v.dynamics_sku,
            "quantitydecimal": 0,
            "producttypecode": 1,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({unit_group})",
            "defaultuomid@odata.bind": f"/uoms({base_unit})",
        }
        if v.ean:
            body["bpi_ean"] = v.ean
        out.append((v.case, body))
    return out
