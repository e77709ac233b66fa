"""Sandbox customer base, webhook registration and the scripted `syncctl sandbox demo`.

`syncctl sandbox up` calls `prepare()` once everything answers: it registers the webhooks
against the local host (Dataverse service endpoint + steps; Brightpearl's subscribable
events), seeds a realistic customer base (customers on both sides, some overlapping by
e-mail, dirty phones and addresses, a few invalid e-mails) and publishes a backfill both
ways, so the flows start syncing at once.

`syncctl sandbox demo` (`run_demo()`) then drives a scripted scenario through the running
sandbox as users would (Dynamics via the simulator's CRM-user surface, Brightpearl via its
admin surface and API), triggers the pollers through the host's admin API, waits for the
result and prints what happened; it ends with the catalogue scene (sandbox/catalogue_demo.py:
a stock correction and a price change in Brightpearl reaching Dynamics), on the catalogue
`sandbox up` seeded.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

Echo = Callable[[str], None]

# (first, last, e-mail as typed, phone as typed, postcode as typed, country as typed)
_OVERLAP = [
    ("Margaret", "Hamilton", "Margaret.Hamilton@Example.org ", "(0117) 496-0101", "bs1 4dj", "UK"),
    ("Tim", "Berners-Lee", "tim@web.example", "+44 (0)20 7946 0102", "SW1A2AA", "United Kingdom"),
    ("Sophie", "Wilson", "SOPHIE.WILSON@example.org", "01223 496 0103", "cb2 1tn", "Great Britain"),
    ("Karen", "Spärck Jones", "karen@ir.example", "01223-496-0104", "CB3 0FD", "GB"),
]
_BP_ONLY = 24
_DV_ONLY = 24


@dataclass
class Endpoints:
    host: str  # http://127.0.0.1:7071/api
    master_key: str
    function_key: str
    brightpearl: str  # simulator base URL
    dataverse: str

    @classmethod
    def from_settings(cls, values: dict[str, str], host_port: int) -> Endpoints:
        return cls(
            host=f"http://127.0.0.1:{host_port}/api",
            master_key=values.get("LOCAL_MASTER_KEY", ""),
            function_key=values.get("LOCAL_FUNCTION_KEY", ""),
            brightpearl=values.get("BRIGHTPEARL_BASE_URL", "http://127.0.0.1:8101").rstrip("/"),
            dataverse=values.get("DATAVERSE_URL", "http://127.0.0.1:8102").rstrip("/"),
        )


# ------------------------------------------------------------------------------- simulators
class Sims:
    """The two simulators' user/admin surfaces (what a person would do in each UI)."""

    def __init__(self, ends: Endpoints) -> None:
        self.ends = ends
        self.http = httpx.Client(timeout=30)
        self.bp_account = "sandbox"

    def close(self) -> None:
        self.http.close()

    def dv_crm(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        out = self.http.post(
            f"{self.ends.dataverse}/_sandbox/crm", json={"method": method, "path": path, "body": body}
        )
        out.raise_for_status()
        return out.json()

    def dv_create(self, **columns: Any) -> str:
        out = self.dv_crm("POST", "contacts", columns)
        if out["status"] >= 300:
            raise RuntimeError(f"Dataverse simulator refused the contact: {out['body']}")
        return out["headers"]["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")

    def dv_rows(self, table: str) -> list[dict[str, Any]]:
        return self.http.get(f"{self.ends.dataverse}/_sandbox/tables/{table}").json()["rows"]

    def dv_writes(self) -> int:
        calls = self.http.get(f"{self.ends.dataverse}/_sandbox/counters").json()["calls"]
        return sum(v for k, v in calls.items() if not k.startswith("GET"))

    def bp_contacts(self) -> dict[str, dict[str, Any]]:
        return self.http.get(f"{self.ends.brightpearl}/_sandbox/state/contacts").json()

    def bp_address(self, address_id: int) -> dict[str, Any]:
        return self.http.get(
            f"{self.ends.brightpearl}/_sandbox/state/addresses", params={"ids": address_id}
        ).json()[str(address_id)]

    def bp_change(self, contact_id: int, **changes: Any) -> None:
        self.http.post(
            f"{self.ends.brightpearl}/_sandbox/contacts/{contact_id}/change", json=changes
        ).raise_for_status()

    def bp_writes(self) -> int:
        counts = self.http.get(f"{self.ends.brightpearl}/_sandbox/requests").json()["byEndpoint"]
        return sum(v for k, v in counts.items() if not k.startswith("GET"))

    def run_timer(self, name: str) -> None:
        resp = self.http.post(
            f"{self.ends.host.removesuffix('/api')}/admin/functions/{name}",
            headers={"x-functions-key": self.ends.master_key},
            json={},
        )
        resp.raise_for_status()


def _bp_client(values: dict[str, str]) -> Any:
    from shared.brightpearl.client import BrightpearlClient
    from shared.settings import load_settings

    return BrightpearlClient.from_settings(load_settings(values).brightpearl)


def bp_create(
    client: Any,
    first: str,
    last: str,
    email: str | None,
    phone: str | None,
    *,
    line1: str,
    city: str,
    postcode: str,
    country: str = "GBR",
    company: str | None = None,
) -> int:
    """A Brightpearl contact as a shop would enter it (address first, as the API requires)."""
    address = client.create_postal_address(shop_address(line1, city, postcode, country))
    return client.create_contact(shop_contact(first, last, email, phone, address, company=company))


def shop_address(line1: str, city: str, postcode: str, country: str = "GBR") -> dict[str, Any]:
    """A Brightpearl postal-address POST body as a shop enters it."""
    return {"addressLine1": line1, "addressLine3": city, "postalCode": postcode, "countryIsoCode": country}


def shop_contact(
    first: str,
    last: str,
    email: str | None,
    phone: str | None,
    address_id: int,
    *,
    company: str | None = None,
) -> dict[str, Any]:
    """A Brightpearl contact POST body as a shop enters it: one address in every role, the
    trade price list, a customer (neither supplier nor staff)."""
    body: dict[str, Any] = {
        "firstName": first,
        "lastName": last,
        "postAddressIds": {"DEF": address_id, "BIL": address_id, "DEL": address_id},
        "communication": {
            "emails": {"PRI": {"email": email}} if email else {},
            "telephones": {"PRI": phone} if phone else {},
        },
        "financialDetails": {"priceListId": 2},
        "relationshipToAccount": {"isSupplier": False, "isStaff": False},
    }
    if company:
        body["organisation"] = {"name": company}
    return body


def crm_contact(person: dict[str, str]) -> dict[str, str]:
    """Dataverse contact columns for a person {first, last, email, phone, line1, city, postcode}
    in the United Kingdom, as a CRM user types them."""
    return {
        "firstname": person["first"],
        "lastname": person["last"],
        "emailaddress1": person["email"],
        "telephone1": person["phone"],
        "address1_line1": person["line1"],
        "address1_city": person["city"],
        "address1_postalcode": person["postcode"],
        "address1_country": "United Kingdom",
    }


# ------------------------------------------------------------------------------- prepare
def seed_customer_base(values: dict[str, str], ends: Endpoints, echo: Echo, seed: int = 7) -> dict[str, int]:
    """Customers on both sides: overlaps by e-mail, dirty phones/addresses, a few invalid e-mails."""
    from faker import Faker

    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    sims = Sims(ends)
    client = _bp_client(values)
    counts = {"brightpearl": 0, "dataverse": 0, "overlapping": 0, "invalid": 0}
    try:
        for first, last, email, phone, postcode, country in _OVERLAP:
            bp_create(
                client,
                first,
                last,
                email.strip().lower(),
                phone.replace("(", "").replace(")", ""),
                line1=fake.street_address().split("\n")[0],
                city=fake.city(),
                postcode=postcode.upper(),
            )
            sims.dv_create(
                firstname=first,
                lastname=last,
                emailaddress1=email,
                telephone1=phone,
                address1_line1=fake.street_address().split("\n")[0],
                address1_city=fake.city(),
                address1_postalcode=postcode,
                address1_country=country,
            )
            counts["overlapping"] += 1
        for i in range(_BP_ONLY):
            first, last = fake.first_name(), fake.last_name()
            phone = rng.choice([f"0117 496 0{i:03d}", f"+44 117 496 0{i:03d}", f"07911 123{i:03d}"])
            bp_create(
                client,
                first,
                last,
                f"{first}.{last}.{i}@shop.example".lower(),
                phone,
                line1=fake.street_address().split("\n")[0],
                city=fake.city(),
                postcode=fake.postcode(),
                company=fake.company() if i % 4 == 0 else None,
            )
            counts["brightpearl"] += 1
        for i in range(_DV_ONLY):
            first, last = fake.first_name(), fake.last_name()
            sims.dv_create(
                firstname=f"  {first}",
                lastname=f"{last} ",
                emailaddress1=f" {first}.{last}.{i}@CRM.example",
                telephone1=rng.choice([f"(0161) 496 0{i:03d}", f"0161-496-0{i:03d}"]),
                address1_line1=fake.street_address().split("\n")[0],
                address1_city=fake.city(),
                address1_postalcode=fake.postcode().lower().replace(" ", ""),
                address1_country=rng.choice(["UK", "United Kingdom", "England", "GB"]),
            )
            counts["dataverse"] += 1
        for i, email in enumerate(["jo.bloggs@@example.org", "no-domain@", "two@@at.example"]):
            sims.dv_create(firstname="Invalid", lastname=f"Email{i}", emailaddress1=email)
            counts["invalid"] += 1
    finally:
        client.close()
        sims.close()
    echo(
        f"seeded {counts['brightpearl']} Brightpearl-only and {counts['dataverse']} Dynamics-only customers, "
        f"{counts['overlapping']} on both sides (same e-mail, dirty formatting), "
        f"{counts['invalid']} invalid e-mails"
    )
    return counts


def register_webhooks(values: dict[str, str], ends: Endpoints, echo: Echo) -> None:
    """Point both simulators' webhooks at the local host's ingress."""
    from shared.brightpearl.webhook_registration import DEFAULT_EVENTS, sync_brightpearl_webhooks
    from shared.dataverse.client import DataverseClient
    from shared.dataverse.webhook_registration import entity_steps, sync_dataverse_webhooks
    from shared.settings import load_settings

    settings = load_settings(values)

    def ingress(system: str, secret: str | None) -> dict[str, Any]:
        """Where and how a system's notifications reach the local host's ingress."""
        return {
            "ingress_url": f"{ends.host}/webhooks/{system}",
            "function_key": ends.function_key,
            "secret": secret or "",
            "dry_run": False,
        }

    bp_ingress = ingress("brightpearl", settings.webhooks.brightpearl_secret)
    dv_ingress = ingress("dataverse", settings.webhooks.dataverse_secret)
    _register(
        echo,
        _bp_client(values),
        lambda client: sync_brightpearl_webhooks(client, events=list(DEFAULT_EVENTS), **bp_ingress),
        done="brightpearl webhooks",
        failed="brightpearl webhooks not registered ({exc}); the poller covers Brightpearl",
    )
    _register(
        echo,
        DataverseClient.from_settings(settings.dataverse),
        lambda client: sync_dataverse_webhooks(client, steps=entity_steps(values), **dv_ingress),
        done="dataverse service endpoint and steps",
        failed="dataverse webhooks not registered ({exc}); the poller covers Dynamics",
    )


def _register(
    echo: Echo, client: Any, register: Callable[[Any], list[Any]], *, done: str, failed: str
) -> None:
    """Run one system's webhook registration and say what changed; a failure is only reported
    (the sandbox still works through the pollers). The client is closed either way."""
    try:
        echo(f"{done}: {len(register(client))} change(s)")
    except Exception as exc:
        echo(failed.format(exc=exc))
    finally:
        client.close()


def initial_backfill(values: dict[str, str], echo: Echo) -> None:
    """Publish every customer of both sides once (the flows in the host do the work)."""
    from shared import runtime
    from shared.flows.customers_backfill import CustomerBackfill
    from shared.runtime import dataverse_source
    from shared.settings import load_settings

    settings = load_settings(values)
    with runtime.override(settings=settings):
        publisher = runtime.publisher()
        for source, topic in (
            ("brightpearl", settings.bus.brightpearl_changes_topic),
            ("dataverse", settings.bus.dataverse_changes_topic),
        ):
            report = CustomerBackfill(
                source,  # type: ignore[arg-type]
                brightpearl=runtime.brightpearl() if source == "brightpearl" else None,
                dataverse=runtime.dataverse() if source == "dataverse" else None,
                cursors=runtime.state_store().cursors,
                publish=lambda envs, t=topic: publisher.publish(t, [e.to_message() for e in envs]),
                clock=runtime.clock,
                source_name=f"/brightpearl/{settings.brightpearl.account}"
                if source == "brightpearl"
                else dataverse_source(),
            ).run(restart=True)
            echo(f"backfill from {source}: {report.published_ids} customer ids published")
        runtime.reset()


def prepare(values: dict[str, str], host_port: int, echo: Echo) -> None:
    """What `syncctl sandbox up` does once everything answers."""
    ends = Endpoints.from_settings(values, host_port)
    register_webhooks(values, ends, echo)
    seed_customer_base(values, ends, echo)
    initial_backfill(values, echo)


# ------------------------------------------------------------------------------- the demo
def _wait(what: str, check: Callable[[], Any], sims: Sims, echo: Echo, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        for timer in ("poll_dataverse_customers", "poll_brightpearl_contacts"):
            sims.run_timer(timer)
        time.sleep(1.0)
    raise RuntimeError(f"timed out waiting for: {what}")


def _bp_by_email(sims: Sims, email: str) -> list[dict[str, Any]]:
    return [
        c
        for c in sims.bp_contacts().values()
        if ((c.get("communication") or {}).get("emails") or {}).get("PRI", {}).get("email") == email
    ]


def _not_answering(ends: Endpoints) -> list[str]:
    """The sandbox parts the demo needs that refuse connections (any HTTP answer counts as up)."""
    down = []
    for url in (f"{ends.host}/health", ends.brightpearl, ends.dataverse):
        try:
            httpx.get(url, timeout=5)
        except httpx.TransportError:
            down.append(url)
    return down


def run_demo(values: dict[str, str], host_port: int = 7071, echo: Echo = print) -> int:
    """The scripted scenario; returns 0 when every step behaved as described."""
    ends = Endpoints.from_settings(values, host_port)
    missing = _not_answering(ends)
    if missing:
        echo(
            f"[red]The sandbox is not running: nothing answers at {', '.join(missing)}.[/red] "
            "Start it in another terminal with `make run` (or `syncctl sandbox up`), wait for "
            "'sandbox is up', then run the demo again."
        )
        return 2
    sims = Sims(ends)
    client = _bp_client(values)
    stamp = time.strftime("%H%M%S")
    try:
        echo("[bold]1. A customer is created in Dynamics[/bold]")
        dv_id = sims.dv_create(
            firstname="Ada",
            lastname=f"Lovelace{stamp}",
            emailaddress1=f" Ada.{stamp}@Example.org",
            telephone1="020 7946 0018",
            address1_line1="12 St James's Square",
            address1_city="London",
            address1_postalcode="sw1y4jh",
            address1_country="UK",
        )
        email = f"ada.{stamp}@example.org"
        [bp] = _wait("the customer in Brightpearl", lambda: _bp_by_email(sims, email), sims, echo)
        address = sims.bp_address(bp["postAddressIds"]["DEF"])
        echo(
            f"   -> Brightpearl contact {bp['contactId']}: {bp['firstName']} {bp['lastName']}, "
            f"e-mail {email} "
            f"(was ' Ada.{stamp}@Example.org'), phone {bp['communication']['telephones'].get('PRI')} "
            f"(was '020 7946 0018'), postcode {address.get('postalCode')} (was 'sw1y4jh'), "
            f"country {address.get('countryIsoCode')} (was 'UK')"
        )

        echo("[bold]2. The customer is renamed in Brightpearl[/bold]")
        sims.bp_change(int(bp["contactId"]), lastName=f"King{stamp}")
        row = _wait(
            "Dynamics to follow",
            lambda: next(
                (
                    r
                    for r in sims.dv_rows("contact")
                    if r["contactid"] == dv_id and r.get("lastname") == f"King{stamp}"
                ),
                None,
            ),
            sims,
            echo,
        )
        echo(
            f"   -> Dynamics contact {dv_id}: lastname {row['lastname']}, "
            f"bpi_brightpearlid {row['bpi_brightpearlid']}"
        )

        echo("[bold]3. A Brightpearl customer with an organisation[/bold]")
        company = f"Analytical Engines {stamp} Ltd"
        bp_org = bp_create(
            client,
            "Charles",
            f"Babbage{stamp}",
            f"charles.{stamp}@engines.example",
            "0117 496 0777",
            line1="1 Engine Row",
            city="Bristol",
            postcode="BS1 5TR",
            company=company,
        )
        account = _wait(
            "the account in Dynamics",
            lambda: next((a for a in sims.dv_rows("account") if a.get("name") == company), None),
            sims,
            echo,
        )
        contact = _wait(
            "the contact under it",
            lambda: next(
                (r for r in sims.dv_rows("contact") if r.get("bpi_brightpearlid") == str(bp_org)), None
            ),
            sims,
            echo,
        )
        parent = (contact.get("parentcustomerid") or {}).get("id")
        echo(
            f"   -> Dynamics account {account['accountid']} '{company}'; contact {contact['contactid']} "
            f"{'is' if parent == account['accountid'] else 'is NOT'} linked to it"
        )

        echo("[bold]4. Dynamics gets a contact whose e-mail a Brightpearl customer already has[/bold]")
        before = len(sims.bp_contacts())
        twin = sims.dv_create(
            firstname="Charles", lastname=f"Babbage{stamp}", emailaddress1=f"Charles.{stamp}@Engines.example"
        )
        echo(f"   (created Dynamics contact {twin})")
        time.sleep(2)
        for timer in ("poll_dataverse_customers", "poll_brightpearl_contacts"):
            sims.run_timer(timer)
        time.sleep(2)
        echo(
            f"   -> Brightpearl contacts before {before}, after {len(sims.bp_contacts())}: "
            "no second customer created (the Dynamics duplicate is flagged for review in the "
            "audit: its e-mail belongs to a linked customer)"
        )

        echo("[bold]5. An invalid e-mail in Dynamics[/bold]")
        bad = sims.dv_create(
            firstname="Broken", lastname=f"Address{stamp}", emailaddress1="broken@@example.org"
        )
        time.sleep(2)
        sims.run_timer("poll_dataverse_customers")
        dead = _wait("the dead letter", lambda: _dead_letter_for(values, bad), sims, echo, timeout=30)
        echo(f"   -> dead-lettered: reason {dead[0]}, description: {dead[1]}")
        echo(
            "      fix it in Dynamics, then: "
            "syncctl dlq resubmit --subscription customers-to-brightpearl --reason InvalidEmail"
        )

        echo("[bold]6. After convergence both sides stay quiet[/bold]")
        time.sleep(2)
        writes = (sims.bp_writes(), sims.dv_writes())
        for _ in range(3):
            for timer in ("poll_dataverse_customers", "poll_brightpearl_contacts"):
                sims.run_timer(timer)
            time.sleep(1.5)
        after = (sims.bp_writes(), sims.dv_writes())
        echo(
            f"   -> writes to Brightpearl {after[0] - writes[0]}, to Dynamics {after[1] - writes[1]} "
            "over three "
            "more polling rounds (no echo loop)"
        )

        from sandbox.catalogue_demo import catalogue_scene

        catalogue_scene(values, client, echo, host=ends.host, master_key=ends.master_key, number=7)

        from sandbox.orders_demo import order_scene

        order_scene(values, echo, host=ends.host, master_key=ends.master_key, customer=dv_id, number=9)

        from sandbox.history_demo import history_scene

        history_scene(
            values, client, echo, host=ends.host, master_key=ends.master_key, customer=dv_id, number=12
        )
        from sandbox.sku_demo import sku_scene

        sku_scene(values, echo, host=ends.host, master_key=ends.master_key, customer=dv_id, number=16)
        return 0
    finally:
        client.close()
        sims.close()


def _dead_letter_for(values: dict[str, str], record_id: str) -> tuple[str, str] | None:
    from pathlib import Path

    from shared.bus.local import LocalBus
    from shared.bus.topology import load_topology

    root = Path(__file__).resolve().parents[1]
    path = Path(values.get("LOCAL_BUS_PATH", ".sandbox/bus.sqlite3"))
    bus = LocalBus(path if path.is_absolute() else root / path, load_topology())
    try:
        for m in bus.peek_dead_letters("dataverse-changes", "customers-to-brightpearl", max_messages=1000):
            if record_id in json.loads(m.body)["data"]["ids"]:
                return (m.dead_letter_reason or "", m.dead_letter_error_description or "")
    finally:
        bus.close()
    return None
