"""A Dataverse environment missing a mapped column: customers wait (retried as
DataverseSchemaMissing, naming the column and `syncctl dataverse provision`) instead of being
dead-lettered as bad records, and sync by themselves once the schema is provisioned."""

from __future__ import annotations

from shared.dataverse.provision import Provisioner, schema_plan
from tests.e2e.customers.conftest import BP_TOPIC, TO_DV, Sandbox
from tests.e2e.customers.test_sync_both_ways import bp_create_contact

TAGS = "EntityDefinitions(LogicalName='contact')/Attributes(LogicalName='bpi_tags')"


def test_a_missing_column_holds_customers_back_until_provisioning_adds_it(sandbox: Sandbox, caplog):
    sb = sandbox
    assert sb.dv.crm("DELETE", TAGS)["status"] == 204
    bp_ids = [bp_create_contact(sb, "Tim", f"Turner{i}", f"tim{i}@web.example") for i in range(3)]
    sb.poll_brightpearl()
    sb.host.wait_idle(timeout=120)

    assert sb.dead_letters(BP_TOPIC, TO_DV) == []  # not "DataverseRejected ... fix the source record"
    assert sb.bus.counts(BP_TOPIC, TO_DV).scheduled >= 1
    retries = [
        r.getMessage() for r in caplog.records if "retry" in r.getMessage() and "scheduled" in r.getMessage()
    ]
    assert any(
        "[DataverseSchemaMissing]" in m and "no column 'bpi_tags'" in m and "syncctl dataverse provision" in m
        for m in retries
    ), retries
    assert sb.dv_contacts() == []

    report = Provisioner(sb.dvc, poll_interval=0.05).run(schema_plan())
    assert report.changes == ["contact: create column bpi_tags (Memo, 2000)"]
    sb.run_retries()

    synced = {c.get("bpi_brightpearlid") for c in sb.dv_contacts()}
    assert synced == {str(i) for i in bp_ids}
    assert sb.dead_letters(BP_TOPIC, TO_DV) == []
