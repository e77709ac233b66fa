"""Every knob of the Brightpearl simulator, with the real service's value as the default.

Values the reference marks UNCONFIRMED are assumptions here and can be changed per run
(constructor, CLI flag `--name value`, or `PATCH /_sandbox/config`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # --- accounts and credentials --------------------------------------------------------
    accounts: list[str] = Field(default_factory=lambda: ["sandbox"], min_length=1)
    app_ref: str = "sandbox-app"
    account_token: str = "sandbox-account-token"
    staff_token: str | None = None
    dev_ref: str = "sandbox-dev"
    developer_secret: str | None = Field(
        None, description="when set, a public app (dev ref + account token) must sign the token (§2.3)"
    )
    oauth_client_secret: str | None = Field(
        None, description="when set, the token endpoint demands it (confidential app)"
    )
    access_token_ttl_seconds: float = Field(3600.0, gt=0, description="UNCONFIRMED lifetime")
    rotate_refresh_tokens: bool = Field(True, description="UNCONFIRMED: refresh rotates the token")

    # --- throttling (reference §3) -----------------------------------------------------
    rate_limit: int = Field(200, ge=1, description="requests per rolling window and pool")
    rate_window_seconds: float = Field(60.0, gt=0, description="real Brightpearl: 60 s")

    # --- limits --------------------------------------------------------------------------
    max_uri_length: int = Field(4096, ge=64, description="longer URIs get 414 (UNCONFIRMED value)")
    max_page_size: int = Field(500, ge=1)
    default_page_size: int = Field(500, ge=1)
    contact_get_limit: int = Field(200, ge=1)
    get_limit: int = Field(200, ge=1, description="order, product, product-price, ... GET")
    goods_out_get_limit: int = Field(500, ge=1)
    webhook_simulate_limit: int = Field(10, ge=1)

    # --- behaviour choices where sources disagree ----------------------------------------
    order_get_empty: Literal["empty-200", "404"] = Field(
        "empty-200", description="missing order ids: 200 [] (recorded) or 404 (docs)"
    )
    duplicate_external_ref: Literal["error", "return-existing", "unique-with-instance"] = Field(
        "error",
        description="a sales order repeating externalRef (and installedIntegrationInstanceId, none = 0): "
        "refused, or its id returned; unique-with-instance: only the documented compound key is "
        "unique, orders without an instance id may repeat an externalRef (a private app)",
    )
    search_cells_as_strings: bool = Field(False, description="ids in search rows as strings")
    time_offset: str = Field("Z", description="offset of emitted time stamps: Z or +HH:MM")
    latency_ms: float = Field(0.0, ge=0, description="added to every API response")
    brightpearl_version: str = "4.95.2647"

    # --- webhooks (reference §10) --------------------------------------------------------
    contact_webhooks: bool = Field(False, description="allow/emit contact.* (real: not subscribable)")
    order_created_webhooks: bool = Field(False, description="allow/emit order.created")
    webhook_max_attempts: int = Field(5, ge=1, description="UNCONFIRMED retry count")
    webhook_backoff_seconds: float = Field(0.5, ge=0, description="first retry delay, doubles")
    webhook_timeout_seconds: float = Field(5.0, gt=0)
    webhook_batch_seconds: float = Field(0.05, ge=0, description="idSetAccepted batching window")

    # --- seeded data ------------------------------------------------------------------
    seed: int = 42
    seed_contacts: int = Field(50, ge=0)
    seed_products: int = Field(20, ge=0)
    seed_orders: int = Field(10, ge=0)

    @field_validator("time_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        if value != "Z" and not re.fullmatch(r"[+-]\d{2}:\d{2}", value):
            raise ValueError("time_offset must be Z or +HH:MM / -HH:MM")
        return value

    @field_validator("accounts")
    @classmethod
    def _account_codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code):
                raise ValueError(f"account code {code!r} is not valid")
        return value
