"""Custom checkov policies for this project's Bicep: what checkov's own checks miss or let pass.

Loaded with `checkov --framework bicep --external-checks-dir infra/policies -d infra`.
Each check demands the secure value as a literal in the resource itself: a value that comes
from a parameter or an expression could be switched off at deploy time, so it fails too.
"""

from __future__ import annotations

from typing import Any

from checkov.bicep.checks.resource.base_resource_check import BaseResourceCheck
from checkov.common.models.enums import CheckCategories, CheckResult


def _unwrap(conf: dict[str, Any]) -> dict[str, Any]:
    """pycep nests conditional (`if`) and loop (`for`) resources one level deeper under 'config'."""
    while (
        isinstance(conf, dict)
        and isinstance(conf.get("config"), dict)
        and ("condition" in conf or "loop_type" in conf)
    ):
        conf = conf["config"]
    return conf


def _get(conf: dict[str, Any], path: str) -> Any:
    node: Any = _unwrap(conf)
    for part in path.split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class _LiteralValueCheck(BaseResourceCheck):
    """Passes only when every (path, expected) pair holds as a literal in the resource."""

    def __init__(
        self,
        *,
        id: str,  # checkov's own keyword
        name: str,
        category: CheckCategories,
        resource: str,
        expectations: tuple[tuple[str, Any], ...],
    ) -> None:
        self.expectations = expectations
        super().__init__(name=name, id=id, categories=(category,), supported_resources=(resource,))

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = [path for path, _ in self.expectations]
        for path, expected in self.expectations:
            if _get(conf, path) != expected:
                return CheckResult.FAILED
        return CheckResult.PASSED


STORAGE = "Microsoft.Storage/storageAccounts"

check_blob_public = _LiteralValueCheck(
    id="CKV_BPSYNC_1",
    name="Storage account must set allowBlobPublicAccess: false (no anonymous blob access)",
    category=CheckCategories.GENERAL_SECURITY,
    resource=STORAGE,
    expectations=(("properties/allowBlobPublicAccess", False),),
)
check_storage_tls = _LiteralValueCheck(
    id="CKV_BPSYNC_2",
    name="Storage account must set minimumTlsVersion: 'TLS1_2'",
    category=CheckCategories.ENCRYPTION,
    resource=STORAGE,
    expectations=(("properties/minimumTlsVersion", "TLS1_2"),),
)
check_storage_https = _LiteralValueCheck(
    id="CKV_BPSYNC_3",
    name="Storage account must set supportsHttpsTrafficOnly: true (HTTPS only)",
    category=CheckCategories.ENCRYPTION,
    resource=STORAGE,
    expectations=(("properties/supportsHttpsTrafficOnly", True),),
)
check_kv_purge = _LiteralValueCheck(
    id="CKV_BPSYNC_4",
    name="Key Vault must set enablePurgeProtection, enableSoftDelete and enableRbacAuthorization to true",
    category=CheckCategories.BACKUP_AND_RECOVERY,
    resource="Microsoft.KeyVault/vaults",
    expectations=(
        ("properties/enablePurgeProtection", True),
        ("properties/enableSoftDelete", True),
        ("properties/enableRbacAuthorization", True),
    ),
)
check_site_https_tls = _LiteralValueCheck(
    id="CKV_BPSYNC_5",
    name="Function app must set httpsOnly: true, siteConfig.minTlsVersion: '1.2' and ftpsState: 'Disabled'",
    category=CheckCategories.ENCRYPTION,
    resource="Microsoft.Web/sites",
    expectations=(
        ("properties/httpsOnly", True),
        ("properties/siteConfig/minTlsVersion", "1.2"),
        ("properties/siteConfig/ftpsState", "Disabled"),
    ),
)
check_sb_tls = _LiteralValueCheck(
    id="CKV_BPSYNC_6",
    name="Service Bus namespace must set minimumTlsVersion: '1.2'",
    category=CheckCategories.ENCRYPTION,
    resource="Microsoft.ServiceBus/namespaces",
    expectations=(("properties/minimumTlsVersion", "1.2"),),
)
check_shared_key = _LiteralValueCheck(
    id="CKV_BPSYNC_7",
    name="Storage account must set allowSharedKeyAccess: false (managed identity only)",
    category=CheckCategories.IAM,
    resource=STORAGE,
    expectations=(("properties/allowSharedKeyAccess", False),),
)
check_container_private = _LiteralValueCheck(
    id="CKV_BPSYNC_8",
    name="Blob containers must set publicAccess: 'None'",
    category=CheckCategories.GENERAL_SECURITY,
    resource="Microsoft.Storage/storageAccounts/blobServices/containers",
    expectations=(("properties/publicAccess", "None"),),
)
check_workspace_local_auth = _LiteralValueCheck(
    id="CKV_BPSYNC_9",
    name="Log Analytics workspace must set features.disableLocalAuth: true (Entra ID only)",
    category=CheckCategories.IAM,
    resource="Microsoft.OperationalInsights/workspaces",
    expectations=(("properties/features/disableLocalAuth", True),),
)
