"""The app's identity gets each data role on the entities it uses, not on the namespace or account."""

from __future__ import annotations

from pathlib import Path

from tests.infra import infra_checks as checks
from tests.infra.copies import break_file, copy_infra


def test_each_data_role_is_granted_on_the_entities_the_app_uses():
    assert checks.check_role_scopes(checks.INFRA_DIR) == []
    grants = {g.role: g.scope_type for g in checks.role_grants(checks.INFRA_DIR)}
    assert grants["serviceBusDataSender"].endswith("/topics")
    assert grants["serviceBusDataReceiver"].endswith("/topics/subscriptions")
    assert grants["storageBlobDataOwner"].endswith("/blobServices/containers")
    assert grants["storageTableDataContributor"].endswith("/tableServices/tables")


def test_a_data_role_on_the_whole_account_or_namespace_is_named(tmp_path: Path):
    infra = copy_infra(tmp_path / "infra")
    break_file(
        infra,
        "main.bicep",
        "module tableContributors 'modules/roles/storage-table-role.bicep'",
        "module tableContributors 'modules/roles/storage-role.bicep'",
    )
    break_file(
        infra,
        "main.bicep",
        "[for topic in topology.topics: {\n  name: 'role-sb-sender-",
        "[for topic in [\n  {\n    name: 'brightpearl-changes'\n  }\n]: {\n  name: 'role-sb-sender-",
    )
    problems = checks.check_role_scopes(infra)
    assert len(problems) == 2, problems
    assert problems[0].startswith(
        "role serviceBusDataSender (main.bicep module sbSenders) must loop over every"
    )
    assert problems[1] == (
        "role storageTableDataContributor is granted on Microsoft.Storage/storageAccounts (main.bicep module "
        "tableContributors); least privilege: grant it on each "
        "Microsoft.Storage/storageAccounts/tableServices/tables the app uses"
    )


def test_the_table_catalog_role_lists_and_creates_tables_but_reads_no_rows():
    definition = checks.parse_bicep(checks.INFRA_DIR / "modules/roles/table-catalog-role-definition.bicep")
    role = next(
        r for r in definition["resources"].values() if r["type"] == "Microsoft.Authorization/roleDefinitions"
    )
    permissions = role["config"]["properties"]["permissions"]
    assert permissions == [
        {
            "actions": [
                "Microsoft.Storage/storageAccounts/tableServices/tables/read",
                "Microsoft.Storage/storageAccounts/tableServices/tables/write",
            ],
            "notActions": [],
            "dataActions": [],
            "notDataActions": [],
        }
    ]
    scopes = role["config"]["properties"]["assignableScopes"]
    assert [scope["function"]["type"] for scope in scopes] == ["resource_group"]  # resourceGroup().id
    # granted on the account: Create Table and Query Tables are account-level operations
    grant = next(g for g in checks.role_grants(checks.INFRA_DIR) if g.module == "tableCatalog")
    assert grant.scope_type == "Microsoft.Storage/storageAccounts"


def test_storage_declares_every_container_the_identity_is_granted_on():
    storage = checks.parse_bicep(checks.INFRA_DIR / "modules/storage.bicep")
    containers = [
        r
        for r in storage["resources"].values()
        if r["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"
    ]
    assert len(containers) == 2  # the deployment container and the host's containers (a loop)
    main = checks.parse_bicep(checks.INFRA_DIR / "main.bicep")
    host = main["variables"]["hostContainerNames"]["value"]
    assert host == ["azure-webjobs-hosts", "azure-webjobs-secrets"]
