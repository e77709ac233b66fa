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
    while isinstance(conf, dict) and isinstance(conf.get("config"), dict) and (
        "condition" in conf or "loop_type" in conf
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

    expectations: tuple[tuple[str, Any], ...] = ()

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        self.evaluated_keys = [path for path, _ in self.expectations]
        for path, expected in self.expectations:
            if _get(conf, path) != expected:
                return CheckResult.FAILED
        return CheckResult.PASSED


class StorageBlobPublicAccessDisabled(_LiteralValueCheck):
    expectations = (("properties/allowBlobPublicAccess", False),)

    def __init__(self) -> None:
        super().__init__(
            name="Storage account must set allowBlobPublicAccess: false (no anonymous blob access)",
            id="CKV_BPSYNC_1",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )


class StorageMinimumTls12(_LiteralValueCheck):
    expectations = (("properties/minimumTlsVersion", "TLS1_2"),)

    def __init__(self) -> None:
        super().__init__(
            name="Storage account must set minimumTlsVersion: 'TLS1_2'",
            id="CKV_BPSYNC_2",
            categories=(CheckCategories.ENCRYPTION,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )


class StorageHttpsOnly(_LiteralValueCheck):
    expectations = (("properties/supportsHttpsTrafficOnly", True),)

    def __init__(self) -> None:
        super().__init__(
            name="Storage account must set supportsHttpsTrafficOnly: true (HTTPS only)",
            id="CKV_BPSYNC_3",
            categories=(CheckCategories.ENCRYPTION,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )


class KeyVaultPurgeProtection(_LiteralValueCheck):
    expectations = (
        ("properties/enablePurgeProtection", True),
        ("properties/enableSoftDelete", True),
        ("properties/enableRbacAuthorization", True),
    )

    def __init__(self) -> None:
        super().__init__(
            name="Key Vault must set enablePurgeProtection, enableSoftDelete and "
            "enableRbacAuthorization to true",
            id="CKV_BPSYNC_4",
            categories=(CheckCategories.BACKUP_AND_RECOVERY,),
            supported_resources=("Microsoft.KeyVault/vaults",),
        )


class FunctionAppHttpsOnlyTls12(_LiteralValueCheck):
    expectations = (
        ("properties/httpsOnly", True),
        ("properties/siteConfig/minTlsVersion", "1.2"),
        ("properties/siteConfig/ftpsState", "Disabled"),
    )

    def __init__(self) -> None:
        super().__init__(
            name="Function app must set httpsOnly: true, siteConfig.minTlsVersion: '1.2' and "
            "ftpsState: 'Disabled'",
            id="CKV_BPSYNC_5",
            categories=(CheckCategories.ENCRYPTION,),
            supported_resources=("Microsoft.Web/sites",),
        )


class ServiceBusMinimumTls12(_LiteralValueCheck):
    expectations = (("properties/minimumTlsVersion", "1.2"),)

    def __init__(self) -> None:
        super().__init__(
            name="Service Bus namespace must set minimumTlsVersion: '1.2'",
            id="CKV_BPSYNC_6",
            categories=(CheckCategories.ENCRYPTION,),
            supported_resources=("Microsoft.ServiceBus/namespaces",),
        )


class StorageSharedKeyAccessDisabled(_LiteralValueCheck):
    expectations = (("properties/allowSharedKeyAccess", False),)

    def __init__(self) -> None:
        super().__init__(
            name="Storage account must set allowSharedKeyAccess: false (managed identity only)",
            id="CKV_BPSYNC_7",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.Storage/storageAccounts",),
        )


class BlobContainerPrivate(_LiteralValueCheck):
    expectations = (("properties/publicAccess", "None"),)

    def __init__(self) -> None:
        super().__init__(
            name="Blob containers must set publicAccess: 'None'",
            id="CKV_BPSYNC_8",
            categories=(CheckCategories.GENERAL_SECURITY,),
            supported_resources=("Microsoft.Storage/storageAccounts/blobServices/containers",),
        )


class LogAnalyticsLocalAuthDisabled(_LiteralValueCheck):
    expectations = (("properties/features/disableLocalAuth", True),)

    def __init__(self) -> None:
        super().__init__(
            name="Log Analytics workspace must set features.disableLocalAuth: true (Entra ID only)",
            id="CKV_BPSYNC_9",
            categories=(CheckCategories.IAM,),
            supported_resources=("Microsoft.OperationalInsights/workspaces",),
        )


check_blob_public = StorageBlobPublicAccessDisabled()
check_storage_tls = StorageMinimumTls12()
check_storage_https = StorageHttpsOnly()
check_kv_purge = KeyVaultPurgeProtection()
check_site_https_tls = FunctionAppHttpsOnlyTls12()
check_sb_tls = ServiceBusMinimumTls12()
check_shared_key = StorageSharedKeyAccessDisabled()
check_container_private = BlobContainerPrivate()
check_workspace_local_auth = LogAnalyticsLocalAuthDisabled()
