"""Dataverse connector: Web API client, OData helper, bulk writes, change tracking, webhooks."""

from shared.dataverse.client import DataverseClient
from shared.dataverse.credentials import SandboxCredential, build_credential
from shared.dataverse.settings import DataverseSettings

__all__ = ["DataverseClient", "DataverseSettings", "SandboxCredential", "build_credential"]
