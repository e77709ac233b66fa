"""Simulator configuration: limits, faults and org facts, settable by constructor, CLI and admin calls."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_TENANT_ID = "5f2b9c1e-7d4a-4e8b-9a61-3c0d2e4f6a70"
DEFAULT_CLIENT_ID = "0c7e6a55-2b1d-4f9e-8a3c-51d2e6f7a801"
DEFAULT_CLIENT_SECRET = "sandbox-dataverse-client-secret"  # sandbox only, never a real secret
DEFAULT_ORGANIZATION_ID = "a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


@dataclass
class SimulatorConfig:
    """Every knob of the simulator. Real-service defaults where the reference gives them."""

    tenant_id: str = DEFAULT_TENANT_ID
    clients: dict[str, str] = field(default_factory=lambda: {DEFAULT_CLIENT_ID: DEFAULT_CLIENT_SECRET})
    organization_id: str = DEFAULT_ORGANIZATION_ID
    organization_name: str = "sandbox"
    public_url: str | None = None  # base URL used in links; default: the request's host
    # Service protection (reference §8): per user, sliding window. The real window is 300 s;
    # tests shorten it so they need not wait minutes.
    request_limit: int = 6000
    window_seconds: float = 300.0
    execution_limit_ms: float = 1_200_000.0
    concurrency_limit: int = 52
    dop_hint: int = 52
    fractional_retry_after: bool = False  # real Retry-After is whole seconds
    latency_ms: float = 0.0
    token_lifetime_seconds: float = 3600.0
    max_page_size: int = 5000
    max_batch_parts: int = 1000
    max_body_bytes: int = int(116.85 * 1024 * 1024)
    change_tracking_expiry_days: float = 7.0
    enforce_application_required: bool = False
    readonly_writes: str = "ignore"  # ignore | reject (real behaviour UNCONFIRMED)
    duplicate_detection_status: int = 412  # 412 per the handler map; the 2022 doc shows 500
    # organization.createproductswithoutparentinactivestate at reset (the organization row holds it)
    products_active_on_create: bool = False
    # product.defaultuomid must be a unit of defaultuomscheduleid (platform check UNCONFIRMED)
    check_product_unit_group: bool = True
    webhook_timeout_seconds: float = 60.0
    webhook_size_limit_bytes: int = 256 * 1024
    base_currency: str = "GBP"
    # Quote, order and invoice records are read-only outside their editable state (orders: only
    # Active); Microsoft lets administrators update them programmatically ("Dynamics 365 Sales and
    # privacy laws": read-only records, SDK). False (default): as docs/deploy.md's custom role,
    # the integration reopens a Submitted order to write it. True: application users (an app user
    # holding System Administrator) may write a closed order's columns and lines; CRM users never.
    application_users_are_admins: bool = False
    # An alternate key created through the metadata API stays Pending this long before its
    # index job finishes (Active, or Failed on duplicate values). Real jobs take minutes.
    key_activation_seconds: float = 1.0

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            if key not in known:
                raise ValueError(f"unknown simulator setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
            elif isinstance(current, (int, float)) and not isinstance(current, bool):
                if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                    raise ValueError(f"{key} must be a non-negative number")
                value = type(current)(value)
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["clients"] = sorted(self.clients)  # ids only, never secrets
        return data


class Clock:
    """Simulator time: wall clock plus an offset tests can advance (token and delta-link ages)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds
