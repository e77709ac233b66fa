"""Brightpearl <-> canonical <-> Dataverse translators, configured by mappings/*.yaml."""

from shared.mapping.brightpearl import (
    BrightpearlCustomerPayload,
    PostalAddressDraft,
    PostalAddressPlan,
    brightpearl_custom_field_ops,
    brightpearl_patch_ops,
    brightpearl_to_canonical,
    canonical_to_brightpearl,
    is_customer,
    plan_postal_addresses,
)
from shared.mapping.config import CustomerMapping, MappingError, load_customer_mapping, read_customer_mapping
from shared.mapping.dataverse import (
    DataverseCustomerPayload,
    account_select,
    canonical_to_dataverse,
    contact_query,
    contact_select,
    dataverse_to_canonical,
    required_columns,
)
from shared.mapping.decision import WriteDecision, decide_write
from shared.mapping.hashing import content_hash, project_for_target
from shared.mapping.ownership import MergeResult, merge_for_target
from shared.mapping.translation import MappingInputError, Translation

__all__ = [
    "BrightpearlCustomerPayload",
    "CustomerMapping",
    "DataverseCustomerPayload",
    "MappingError",
    "MappingInputError",
    "MergeResult",
    "PostalAddressDraft",
    "PostalAddressPlan",
    "Translation",
    "WriteDecision",
    "account_select",
    "brightpearl_custom_field_ops",
    "brightpearl_patch_ops",
    "brightpearl_to_canonical",
    "canonical_to_brightpearl",
    "canonical_to_dataverse",
    "contact_query",
    "contact_select",
    "content_hash",
    "dataverse_to_canonical",
    "decide_write",
    "is_customer",
    "load_customer_mapping",
    "merge_for_target",
    "plan_postal_addresses",
    "project_for_target",
    "read_customer_mapping",
    "required_columns",
]
