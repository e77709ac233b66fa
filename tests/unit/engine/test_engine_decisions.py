"""The engine's decisions, run through the real customer flows on the in-memory fakes (no HTTP,
no Azurite): create, update, skip unchanged, echo, conflict by ownership, needs-review,
dead-letter (once per bad record version), retry. The whole module runs in about a second."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from shared.dataverse.errors import DataverseThrottled
from shared.events import ChangeNotice, Envelope, now_utc
from shared.flows.customers_to_brightpearl import CustomersToBrightpearl
from shared.flows.customers_to_dataverse import CustomersToDataverse
from shared.mapping import load_customer_mapping
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.store import AuditResult
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore

MAPPING = load_customer_mapping()
VERSIONS = itertools.count()


class Rig:
    """Both fakes, the memory state store and the two customer flows wired to them."""

    def __init__(self) -> None:
        self.bp = FakeBrightpearl()
        self.dv = FakeDataverse()
        self.store = MemoryStateStore()
        self.published: list[Envelope] = []
        ports: dict[str, Any] = {
            "brightpearl": self.bp,
            "dataverse": self.dv,
            "store": self.store,
            "mapping": MAPPING,
            "publish": self.published.extend,
        }
        self.to_dv = CustomersToDataverse(**ports)
        self.to_bp = CustomersToBrightpearl(**ports)

    def shop_customer(self, first: str, last: str, email: str, *, newsletter: bool | None = None) -> str:
        address = self.bp.create_postal_address(
            {
                "addressLine1": "1 High Street",
                "addressLine3": "Bristol",
                "postalCode": "BS1 4DJ",
                "countryIsoCode": "GBR",
            }
        )
        contact: dict[str, Any] = {
            "firstName": first,
            "lastName": last,
            "postAddressIds": {"DEF": address, "BIL": address, "DEL": address},
            "communication": {"emails": {"PRI": {"email": email}}},
            "relationshipToAccount": {"isSupplier": False, "isStaff": False},
        }
        if newsletter is not None:
            contact["marketingDetails"] = {"isReceiveEmailNewsletter": newsletter}
        return str(self.bp.add_contact(contact))

    def edit_shop(self, contact_id: str, **changes: Any) -> None:
        self.bp.contacts[int(contact_id)].update(changes)

    def dv_contact_of(self, contact_id: str) -> dict[str, Any]:
        [row] = [r for r in self.dv.tables["contacts"].values() if r.get("bpi_brightpearlid") == contact_id]
        return row

    def audit(self, flow: str) -> list[tuple[str, AuditResult, str | None]]:
        return [(e.source_id, e.result, e.reason_code) for e in self.store.audit.entries if e.flow == flow]


def notice(system: str, entity: str, *ids: str, operation: str = "changed") -> Envelope:
    return Envelope.wrap(
        ChangeNotice(
            system=system,  # type: ignore[arg-type]
            entity=entity,
            ids=ids,
            operation=operation,  # type: ignore[arg-type]
            source=f"/{system}/test",
            origin="poller",
            observed_at=now_utc(),
            version=f"v{next(VERSIONS)}",
        )
    )


@pytest.fixture
def rig() -> Rig:
    return Rig()


def sync_to_dv(rig: Rig, *ids: str) -> list[Any]:
    return rig.to_dv.handle([notice("brightpearl", "contact", *ids)])


def test_create_writes_a_new_contact_and_links_it(rig: Rig) -> None:
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")

    assert sync_to_dv(rig, bp_id) == [Completed()]

    row = rig.dv_contact_of(bp_id)
    assert (row["firstname"], row["lastname"], row["emailaddress1"]) == ("Ada", "Lovelace", "ada@example.org")
    link = rig.store.links.get("customer", "brightpearl", bp_id)
    assert link is not None and link.id_in("dataverse") == row["contactid"]
    assert rig.audit("customers-to-dataverse") == [(bp_id, AuditResult.SYNCED, None)]
    assert "(created)" in rig.store.audit.entries[-1].description


def test_update_changes_only_the_existing_contact(rig: Rig) -> None:
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    sync_to_dv(rig, bp_id)
    rig.edit_shop(bp_id, lastName="King", updatedOn="2099-01-01T00:00:00+00:00")

    assert sync_to_dv(rig, bp_id) == [Completed()]

    assert len(rig.dv.tables["contacts"]) == 1
    assert rig.dv_contact_of(bp_id)["lastname"] == "King"
    assert rig.audit("customers-to-dataverse")[-1] == (bp_id, AuditResult.SYNCED, None)


def test_a_record_unchanged_since_the_last_sync_is_not_written(rig: Rig) -> None:
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    sync_to_dv(rig, bp_id)
    writes = rig.dv.calls.count("upsert_multiple") + rig.dv.calls.count("update_multiple")

    assert sync_to_dv(rig, bp_id) == [Completed()]

    assert rig.dv.calls.count("upsert_multiple") + rig.dv.calls.count("update_multiple") == writes
    entry = rig.store.audit.entries[-1]
    assert entry.result == AuditResult.SKIPPED and "unchanged since the last sync" in entry.description


def test_our_own_write_coming_back_is_an_echo_not_a_write(rig: Rig) -> None:
    """Dataverse -> Brightpearl creates the contact; the Brightpearl poller then names it: echo."""
    dv_id = rig.dv.add(
        "contacts",
        {"firstname": "Grace", "lastname": "Hopper", "emailaddress1": "grace@example.org", "statecode": 0},
    )
    assert rig.to_bp.handle([notice("dataverse", "contact", dv_id)]) == [Completed()]
    bp_id = rig.dv.tables["contacts"][dv_id]["bpi_brightpearlid"]
    assert rig.bp.contacts[int(bp_id)]["lastName"] == "Hopper"
    writes = rig.dv.calls.count("upsert_multiple") + rig.dv.calls.count("update_multiple")

    assert sync_to_dv(rig, bp_id) == [Completed()]

    assert rig.dv.calls.count("upsert_multiple") + rig.dv.calls.count("update_multiple") == writes
    assert rig.audit("customers-to-dataverse") == [(bp_id, AuditResult.SKIPPED, None)]
    assert rig.store.audit.entries[-1].description == (
        f"Brightpearl contact {bp_id} unchanged since the last sync (echo or no-op)"
    )


def test_a_field_dataverse_owns_is_kept_when_brightpearl_changes_it(rig: Rig) -> None:
    """Marketing consent belongs to Dataverse (mappings/customers.yaml ownership)."""
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org", newsletter=False)
    sync_to_dv(rig, bp_id)
    column = MAPPING.dataverse.marketing_consent.column
    assert column is not None
    row = rig.dv_contact_of(bp_id)
    row[column] = not MAPPING.dataverse.marketing_consent.inverted  # Dynamics: opted in
    rig.edit_shop(
        bp_id,
        marketingDetails={"isReceiveEmailNewsletter": False},
        lastName="King",
        updatedOn="2099-01-01T00:00:00+00:00",
    )

    sync_to_dv(rig, bp_id)

    row = rig.dv_contact_of(bp_id)
    assert row["lastname"] == "King"  # last writer: Brightpearl's edit arrives
    assert row[column] == (not MAPPING.dataverse.marketing_consent.inverted)  # Dynamics' consent stays


def test_an_email_shared_by_two_dynamics_contacts_needs_review(rig: Rig) -> None:
    for first in ("Ada", "Augusta"):
        rig.dv.add(
            "contacts", {"firstname": first, "lastname": "Lovelace", "emailaddress1": "ada@example.org"}
        )
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")

    assert sync_to_dv(rig, bp_id) == [Completed()]

    assert len(rig.dv.tables["contacts"]) == 2  # nothing created
    assert rig.audit("customers-to-dataverse") == [(bp_id, AuditResult.NEEDS_REVIEW, "AmbiguousEmailMatch")]


def test_a_bad_record_is_dead_lettered_once_per_version(rig: Rig) -> None:
    bp_id = rig.shop_customer("Ada", "Lovelace", "not-an-email")

    first = sync_to_dv(rig, bp_id)
    again = rig.to_dv.handle([notice("brightpearl", "contact", bp_id, operation="changed")])

    assert isinstance(first[0], DeadLetter) and first[0].reason == "InvalidEmail"
    assert isinstance(again[0], Completed) and "already dead-lettered" in (again[0].note or "")
    assert not rig.dv.tables["contacts"]


def test_a_bad_record_in_a_notice_of_several_is_split_off(rig: Rig) -> None:
    good = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    bad = rig.shop_customer("Bad", "Email", "nope")

    assert sync_to_dv(rig, good, bad) == [Completed(note="1 bad record(s) split off for dead-lettering")]

    assert [e.notice.ids for e in rig.published] == [(bad,)]
    assert rig.published[0].replay_to == "customers-to-dataverse"
    rig.dv_contact_of(good)


def test_a_throttled_write_is_retried_later_and_nothing_is_linked(rig: Rig) -> None:
    bp_id = rig.shop_customer("Ada", "Lovelace", "ada@example.org")
    rig.dv.fail_next["upsert_multiple"] = [
        DataverseThrottled("429 service protection", status=429, retry_after=7)
    ]

    [outcome] = sync_to_dv(rig, bp_id)

    assert isinstance(outcome, RetryLater) and outcome.delay == 7
    assert rig.store.links.get("customer", "brightpearl", bp_id) is None
    assert sync_to_dv(rig, bp_id) == [Completed()]  # the retry syncs it
    rig.dv_contact_of(bp_id)


def test_a_malformed_id_is_dead_lettered_without_any_call(rig: Rig) -> None:
    [outcome] = sync_to_dv(rig, "abc")

    assert isinstance(outcome, DeadLetter) and outcome.reason == "MalformedMessage"
    assert rig.bp.calls == [] and rig.dv.calls == []


def test_a_dataverse_account_notice_syncs_the_contacts_under_it(rig: Rig) -> None:
    account = rig.dv.add("accounts", {"name": "Analytical Engines Ltd"})
    dv_id = rig.dv.add(
        "contacts",
        {
            "firstname": "Ada",
            "lastname": "Lovelace",
            "emailaddress1": "ada@example.org",
            "_parentcustomerid_value": account,
            "statecode": 0,
        },
    )
    contacts_before = len(rig.bp.contacts)

    assert rig.to_bp.handle([notice("dataverse", "account", account)]) == [Completed()]

    assert len(rig.bp.contacts) == contacts_before + 1
    assert rig.dv.tables["contacts"][dv_id]["bpi_brightpearlid"]
    assert [(s, r) for s, r, _ in rig.audit("customers-to-brightpearl")] == [(dv_id, AuditResult.SYNCED)]
