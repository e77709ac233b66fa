"""Compatibility names for code written before the engine: the customer flows' shared pieces now
live in shared/sync/outcomes.py (every entity's) and shared/flows/customers_spec.py."""

from __future__ import annotations

from functools import partial

from shared.flows.customers_spec import CUSTOMERS
from shared.sync import outcomes
from shared.sync.outcomes import (
    AUDIT_RESULTS,
    BatchResults,
    Kind,
    Publish,
    RecordResult,
    batch_failure,
    chunked,
    dead_letter_key,
    fatal_description,
    in_parallel,
    outcomes_for,
    split_notice,
)

ENTITY = CUSTOMERS.link_entity  # the links entity shared by both directions
finish_batch = partial(outcomes.finish_batch, entity=ENTITY)

__all__ = [
    "AUDIT_RESULTS",
    "ENTITY",
    "BatchResults",
    "Kind",
    "Publish",
    "RecordResult",
    "batch_failure",
    "chunked",
    "dead_letter_key",
    "fatal_description",
    "finish_batch",
    "in_parallel",
    "outcomes_for",
    "split_notice",
]
