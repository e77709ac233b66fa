"""Canonical, system-neutral models that records pass through between Brightpearl and Dataverse."""

from shared.model.customer import (
    FIELD_GROUPS,
    SYSTEMS,
    Address,
    Addresses,
    Customer,
    CustomValue,
    Emails,
    ExternalIds,
    Organisation,
    PersonName,
    Phones,
    System,
)

__all__ = [
    "FIELD_GROUPS",
    "SYSTEMS",
    "Address",
    "Addresses",
    "CustomValue",
    "Customer",
    "Emails",
    "ExternalIds",
    "Organisation",
    "PersonName",
    "Phones",
    "System",
]
