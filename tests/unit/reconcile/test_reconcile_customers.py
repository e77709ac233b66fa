"""Reconciliation of customers on the in-memory fakes: the real customer flows sync a few
customers, then drift is injected behind their back and `Reconciler` must find exactly it,
heal it by change notices (which the flows then work off) and store its report."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.events import Envelope
from shared.flows.customers_spec import CUSTOMERS
from shared.flows.customers_to_brightpearl import CustomersToBrightpearl
from shared.flows.customers_to_dataverse import CustomersToDataverse
from shared.mapping import load_customer_mapping
from shared.reconcile.customers import CustomerReconcile
from shared.reconcile.engine import Reconciler
from shared.reconcile.report import KINDS, ReconcileReport, last_report, stored_text
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from tests.unit.engine.test_engine_decisions import notice

MAPPING = load_customer_mapping()
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class Rig:
    def __init__(self) -> None:
        self.bp = FakeBrightpearl()
        self.dv = FakeDataverse()
        self.store = MemoryStateStore()
        self.loopback: list[Envelope] = []
        ports: dict[str, Any] = {
            "brightpearl": self.bp,
            "dataverse": self.dv,
            "store": self.store,
            "mapping": MAPPING,
            "publish": self.loopback.extend,
        }
        self.to_dv = CustomersToDataverse(**ports)
        self.to_bp = CustomersToBrightpearl(**ports)
        self.published: dict[str, list[Envelope]] = {"brightpearl": [], "dataverse": []}

    def reconciler(self) -> Reconciler:
        return Reconciler(
            CUSTOMERS,
            CustomerReconcile(brightpearl=self.bp, dataverse=self.dv, store=self.store, mapping=MAPPING),
            links=self.store.links,
            cursors=self.store.cursors,
            publish={s: self.published[s].extend for s in ("brightpearl", "dataverse")},
            clock=lambda: NOW,
            sources={"brightpearl": "/brightpearl/test", "dataverse": "/dataverse/test"},
        )

    def reconcile(self, heal: bool = False) -> ReconcileReport:
        return self.reconciler().run(heal=heal)

    def shop_customer(self, first: str, last: str, email: str, *, supplier: bool = False) -> str:
        address = self.bp.create_postal_address(
            {
                "addressLine1": "1 High Street",
                "addressLine3": "Bristol",
                "postalCode": "BS1 4DJ",
                "countryIsoCode": "GBR",
            }
        )
        return str(
            self.bp.add_contact(
                {
                    "firstName": first,
                    "lastName": last,
                    "postAddressIds": {"DEF": address, "BIL": address, "DEL": address},
                    "communication": {"emails": {"PRI": {"email": email}}},
                    "relationshipToAccount": {"isSupplier": supplier, "isStaff": False},
                }
            )
        )

    def crm_contact(self, first: str, last: str, email: str, **more: Any) -> str:
        return self.dv.add(
            "contacts", {"firstname": first, "lastname": last, "emailaddress1": email, "statecode": 0, **more}
        )

    def sync(self, *, bp: list[str] = (), dv: list[str] = ()) -> None:  # type: ignore[assignment]
        if bp:
            self.to_dv.handle([notice("brightpearl", "contact", *bp)])
        if dv:
            self.to_bp.handle([notice("dataverse", "contact", *dv)])

    def work_off(self) -> None:
        """What the host does with the healing notices: each flow handles its system's."""
        bp, dv = self.published["brightpearl"], self.published["dataverse"]
        if bp:
            self.to_dv.handle(bp)
        if dv:
            self.to_bp.handle(dv)
        self.published = {"brightpearl": [], "dataverse": []}

    def dv_of(self, bp_id: str) -> str:
        link = self.store.links.get("customer", "brightpearl", bp_id)
        assert link is not None
        return str(link.id_in("dataverse"))


@pytest.fixture
def rig() -> Rig:
    r = Rig()
    ids = [r.shop_customer(f"Ann{i}", f"Shop{i}", f"ann{i}@example.org") for i in range(4)]
    r.sync(bp=ids)
    crm = [r.crm_contact(f"Cy{i}", f"Crm{i}", f"cy{i}@example.org") for i in range(2)]
    r.sync(dv=crm)
    r.ids = ids  # type: ignore[attr-defined]
    r.crm = crm  # type: ignore[attr-defined]
    return r


def counts(report: ReconcileReport) -> dict[str, int]:
    return {k: v for k, v in report.counts.items() if v}


def test_a_synced_pair_of_systems_reconciles_to_zero(rig: Rig) -> None:
    report = rig.reconcile()
    assert report.total == 0, report.items
    assert report.scanned == {"brightpearl": 6, "dataverse": 6, "links": 6}


def test_changes_behind_the_integrations_back_are_drift_with_field_names(rig: Rig) -> None:
    bp_id, other = rig.ids[0], rig.ids[1]
    rig.bp.contacts[int(bp_id)]["lastName"] = "Changed"
    dv_id = rig.dv_of(other)
    rig.dv.tables["contacts"][dv_id]["firstname"] = "Edited"

    report = rig.reconcile()

    assert counts(report) == {"drift": 2}
    by_bp = {f.brightpearl_id: f for f in report.items}
    assert by_bp[bp_id].changed_in == ["brightpearl"] and by_bp[bp_id].fields == ["name.last_name"]
    assert by_bp[other].changed_in == ["dataverse"] and by_bp[other].fields == ["name.first_name"]
    assert by_bp[other].dataverse_id == dv_id


def test_a_record_edited_to_equal_content_is_not_drift(rig: Rig) -> None:
    bp_id = rig.ids[0]
    rig.bp.contacts[int(bp_id)]["lastName"] = "Both"
    rig.dv.tables["contacts"][rig.dv_of(bp_id)]["lastname"] = "Both"
    assert rig.reconcile().total == 0


def test_missing_unlinked_duplicate_and_orphaned_are_told_apart(rig: Rig) -> None:
    never_synced_shop = rig.shop_customer("New", "Shopper", "new@example.org")
    rig.shop_customer("Sam", "Supplier", "sam@example.org", supplier=True)  # flows never sync suppliers
    never_synced_crm = rig.crm_contact("New", "Crm", "newcrm@example.org")
    rig.crm_contact("Old", "Inactive", "old@example.org", statecode=1)  # inactive: not synced either
    lost = rig.ids[1]
    lost_dv = rig.dv_of(lost)
    assert rig.store.links.unlink("customer", "brightpearl", lost)  # a link deleted
    twin = rig.crm_contact("Ann2", "Shop2", "ANN2@example.org")  # a second Dataverse record of a linked one
    gone = rig.ids[3]
    gone_dv = rig.dv_of(gone)
    del rig.dv.tables["contacts"][gone_dv]  # deleted in Dynamics, no webhook

    report = rig.reconcile()

    assert counts(report) == {
        "missing_in_dataverse": 1,
        "missing_in_brightpearl": 1,
        "unlinked": 1,
        "duplicate": 1,
        "orphaned_link": 1,
    }
    kinds = {f.kind: f for f in report.items}
    assert kinds["missing_in_dataverse"].brightpearl_id == never_synced_shop
    assert kinds["missing_in_brightpearl"].dataverse_id == never_synced_crm
    assert (kinds["unlinked"].brightpearl_id, kinds["unlinked"].dataverse_id) == (lost, lost_dv)
    dup = kinds["duplicate"]
    assert (dup.system, dup.dataverse_id, dup.duplicate_of) == ("dataverse", twin, rig.dv_of(rig.ids[2]))
    orphan = kinds["orphaned_link"]
    assert (orphan.brightpearl_id, orphan.dataverse_id, orphan.gone_in) == (gone, gone_dv, ["dataverse"])


def test_heal_publishes_the_notices_a_webhook_would_and_the_flows_converge(rig: Rig) -> None:
    rig.bp.contacts[int(rig.ids[0])]["lastName"] = "Changed"
    rig.dv.tables["contacts"][rig.dv_of(rig.ids[1])]["firstname"] = "Edited"
    shop = rig.shop_customer("New", "Shopper", "new@example.org")
    crm = rig.crm_contact("New", "Crm", "newcrm@example.org")
    rig.store.links.unlink("customer", "brightpearl", rig.ids[2])
    gone_dv = rig.dv_of(rig.ids[3])
    del rig.dv.tables["contacts"][gone_dv]
    writes_before = (len(rig.bp.calls), len(rig.dv.calls))

    healed = rig.reconcile(heal=True)

    assert counts(healed) == {
        "drift": 2,
        "missing_in_dataverse": 1,
        "missing_in_brightpearl": 1,
        "unlinked": 1,
        "orphaned_link": 1,
    }
    # reconciliation itself wrote nothing to either system: only reads
    reads = {"search_contacts", "get_by_ids", "query"}
    assert set(rig.bp.calls[writes_before[0] :]) <= reads and set(rig.dv.calls[writes_before[1] :]) <= reads
    bp_ids = sorted(i for e in rig.published["brightpearl"] for i in e.notice.ids)
    dv_ids = sorted(i for e in rig.published["dataverse"] for i in e.notice.ids)
    assert bp_ids == sorted([rig.ids[0], shop, rig.ids[2], rig.ids[3]])
    assert dv_ids == sorted([rig.dv_of(rig.ids[1]), crm])
    envelope = rig.published["brightpearl"][0]
    assert envelope.notice.origin == "reconcile" and envelope.notice.entity == "contact"
    assert healed.healing is not None and healed.healing.links_removed == 1
    assert healed.healing.notices == {"brightpearl": 4, "dataverse": 2}
    assert rig.store.links.get("customer", "dataverse", gone_dv) is None  # orphaned link removed

    rig.work_off()
    assert rig.reconcile().total == 0
    assert rig.bp.contacts[int(rig.ids[1])]["firstName"] == "Edited"  # Dynamics' edit reached Brightpearl


def test_the_report_is_stored_without_personal_data_and_read_back(rig: Rig) -> None:
    rig.bp.contacts[int(rig.ids[0])]["lastName"] = "Secretname"
    report = rig.reconcile()
    stored = last_report(rig.store.cursors, "customers")
    assert stored is not None and stored.counts == report.counts and stored.items == report.items
    text = report.to_json()
    for personal in ("Secretname", "example.org", "Ann0", "Bristol", "BS1"):
        assert personal not in text
    assert set(json.loads(text)["counts"]) == set(KINDS)


def test_a_large_report_is_stored_with_exact_counts_and_fewer_findings(rig: Rig) -> None:
    for i in range(400):
        rig.shop_customer(f"N{i}", "New", f"n{i}@example.org")
    report = rig.reconciler().run()
    assert report.counts["missing_in_dataverse"] == 400
    text = stored_text(report, limit=5000)
    assert len(text) <= 5000
    cut = ReconcileReport.model_validate_json(text)
    assert cut.counts["missing_in_dataverse"] == 400
    assert len(cut.items) + cut.items_left_out == 400 and cut.items_left_out > 0
