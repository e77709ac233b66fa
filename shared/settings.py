"""Every app setting the integration reads, validated once at start-up.

Settings are flat environment variables (Azure app settings, or `Values` of
local.settings.json in the sandbox). Each section is its own pydantic-settings class so a
connector's settings live next to its code; `load_settings()` builds all sections and turns
every problem into one `SettingsError` that names each setting and what is wrong with it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings

from shared.brightpearl.settings import BrightpearlSettings
from shared.dataverse.settings import DataverseSettings
from shared.settings_base import identity_client_id, section_config


class SettingsError(RuntimeError):
    """One or more settings are missing or invalid. The message lists each by name."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class BusSettings(BaseSettings):
    """Service Bus (or the sandbox's local bus) and the topics we publish to."""

    model_config = section_config("BUS_")

    backend: Literal["servicebus", "local"] = Field(
        "servicebus",
        description="servicebus in Azure; local for the sandbox's durable local bus",
    )
    connection_string: str | None = Field(
        None,
        validation_alias="ServiceBusConnection",
        description="Service Bus connection string (SAS). Prefer identity in Azure.",
    )
    fully_qualified_namespace: str | None = Field(
        None,
        validation_alias="ServiceBusConnection__fullyQualifiedNamespace",
        description="e.g. mybus.servicebus.windows.net; used with DefaultAzureCredential",
    )
    managed_identity_client_id: str | None = identity_client_id("ServiceBusConnection")
    local_path: str = Field(
        ".sandbox/bus.sqlite3",
        validation_alias="LOCAL_BUS_PATH",
        description="file of the sandbox's local bus (BUS_BACKEND=local only)",
    )
    brightpearl_changes_topic: str = Field(
        "brightpearl-changes",
        validation_alias="BRIGHTPEARL_CHANGES_TOPIC",
        description="topic for Brightpearl change notices (infra/topology.json)",
    )
    dataverse_changes_topic: str = Field(
        "dataverse-changes",
        validation_alias="DATAVERSE_CHANGES_TOPIC",
        description="topic for Dataverse change notices (infra/topology.json)",
    )
    lock_renewal_seconds: float = Field(
        20.0,
        gt=0,
        le=150,
        description="a flow renews the locks of the batch it works on this often; keep it below "
        "the subscriptions' lockDuration minus maxBatchWaitTime (1 min - 0.5 s)",
    )

    @model_validator(mode="after")
    def _servicebus_needs_a_connection(self) -> BusSettings:
        if self.backend == "servicebus" and not (self.connection_string or self.fully_qualified_namespace):
            raise ValueError(
                "BUS_BACKEND=servicebus needs ServiceBusConnection (connection string) or "
                "ServiceBusConnection__fullyQualifiedNamespace (managed identity)"
            )
        return self


class StoreSettings(BaseSettings):
    """Table Storage for links, ledger, cursors and audit (the function app's account)."""

    model_config = section_config("")

    connection_string: str | None = Field(
        None,
        validation_alias="AzureWebJobsStorage",
        description="connection string; UseDevelopmentStorage=true for Azurite",
    )
    account_name: str | None = Field(
        None,
        validation_alias="AzureWebJobsStorage__accountName",
        description="storage account name, used with managed identity",
    )
    table_service_uri: str | None = Field(
        None,
        validation_alias="AzureWebJobsStorage__tableServiceUri",
        description="explicit table endpoint (overrides the one derived from accountName)",
    )
    managed_identity_client_id: str | None = identity_client_id("AzureWebJobsStorage")
    table_prefix: str = Field(
        "",
        validation_alias="STATE_TABLE_PREFIX",
        pattern=r"^[A-Za-z]?[A-Za-z0-9]{0,20}$",
        description="prefix for the state table names (letters and digits)",
    )
    audit_retention_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="days audit rows are kept",
    )
    ledger_retention_days: int = Field(
        14,
        ge=1,
        le=365,
        description="days processed-message keys are remembered (idempotent receiver)",
    )
    link_claim_timeout_seconds: int = Field(
        90,
        ge=10,
        le=24 * 3600,
        description="lease of a creation claim: the worker creating a record renews it every third "
        "of this while it works; once it has not been renewed for this long (the worker died) "
        "another worker may take the claim over, after first looking for the record",
    )

    @model_validator(mode="after")
    def _needs_an_account(self) -> StoreSettings:
        if not (self.connection_string or self.account_name or self.table_service_uri):
            raise ValueError(
                "state storage needs AzureWebJobsStorage (connection string) or "
                "AzureWebJobsStorage__accountName (managed identity)"
            )
        return self

    @property
    def table_endpoint(self) -> str | None:
        if self.table_service_uri:
            return self.table_service_uri
        if self.account_name:
            return f"https://{self.account_name}.table.core.windows.net"
        return None


class RetrySettings(BaseSettings):
    """How flows retry transient failures with scheduled copies (DESIGN §6)."""

    model_config = section_config("RETRY_")

    max_attempts: int = Field(
        8,
        ge=1,
        le=100,
        description="attempts before a transient failure is dead-lettered as RetriesExhausted",
    )
    base_delay_seconds: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="first retry delay; doubles each attempt",
    )
    max_delay_seconds: float = Field(
        1800.0,
        gt=0,
        le=7 * 24 * 3600,
        description="cap of the retry delay (a longer server-given delay still wins)",
    )
    jitter_ratio: float = Field(
        0.2,
        ge=0,
        le=1,
        description="each delay is spread by +/- this fraction",
    )
    outage_max_delay_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="cap of the retry delay after an availability error (5xx, timeout, network): "
        "once the API is back, waiting records go again within about this long",
    )
    outage_give_up_seconds: float = Field(
        21600.0,
        ge=0,
        le=14 * 24 * 3600,
        description="availability errors end in RetriesExhausted only after RETRY_MAX_ATTEMPTS and "
        "this long since the change was observed (a long outage does not dead-letter everything)",
    )

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> RetrySettings:
        if self.max_delay_seconds < self.base_delay_seconds:
            raise ValueError("RETRY_MAX_DELAY_SECONDS must be >= RETRY_BASE_DELAY_SECONDS")
        return self


class WebhookSettings(BaseSettings):
    """Limits and secrets of the webhook ingress."""

    model_config = section_config("WEBHOOK_")

    brightpearl_secret: str | None = Field(
        None,
        validation_alias="BRIGHTPEARL_WEBHOOK_SECRET",
        min_length=16,
        description="shared secret carried in the Brightpearl body template (Key Vault)",
    )
    dataverse_secret: str | None = Field(
        None,
        validation_alias="DATAVERSE_WEBHOOK_SECRET",
        min_length=16,
        description="value Dataverse sends in its WebhookKey / HttpHeader auth (Key Vault)",
    )
    max_body_bytes: int = Field(
        256 * 1024,
        ge=1024,
        le=4 * 1024 * 1024,
        description="larger webhook bodies are refused with 413",
    )
    max_ids: int = Field(
        1000,
        ge=1,
        le=10_000,
        description="largest id set one Brightpearl webhook may carry",
    )
    ids_per_notice: int = Field(
        100,
        ge=1,
        le=500,
        description="ids per change notice; larger id sets are split",
    )


class TelemetrySettings(BaseSettings):
    model_config = section_config("")

    appinsights_connection_string: str | None = Field(
        None,
        validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING",
        description="export logs, traces and metrics to Application Insights when set",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="level of the integration's own loggers"
    )
    service_name: str = Field(
        "brightpearl-dynamics-sync",
        validation_alias="OTEL_SERVICE_NAME",
        description="service name (cloud role) in Application Insights",
    )


class CustomersSettings(BaseSettings):
    """The customer flows, pollers and backfill (issue 5)."""

    model_config = section_config("CUSTOMERS_")

    mapping_path: str = Field(
        "mappings/customers.yaml",
        validation_alias="CUSTOMER_MAPPING_PATH",
        description="the customer mapping YAML (relative to the app root or absolute)",
    )
    brightpearl_poll_schedule: str = Field(
        "*/20 * * * * *",
        description="NCRONTAB (seconds first) of the Brightpearl contact-search poller: Brightpearl has "
        "no contact webhooks, so this sets how soon a new customer reaches Dynamics; each poll costs "
        "one of the 200 requests a minute (every 20 s: 3 a minute, 1.5 %, p95 under 60 s); a round "
        "is skipped while the rate budget is short",
    )
    dataverse_poll_schedule: str = Field(
        "30 */5 * * * *",
        description="NCRONTAB of the Dataverse change-tracking poller (contact and account)",
    )
    reconcile_schedule: str = Field(
        "0 30 2 * * *",
        description="NCRONTAB of the daily customers reconciliation (report only, no healing: "
        "`syncctl reconcile customers --heal` heals); 100,000 customers cost 703 Brightpearl "
        "requests, 0.24 % of a day's budget (docs/operations.md, Reconciliation)",
    )
    schema_check_schedule: str = Field(
        "0 15 3 * * *",
        description="NCRONTAB of the daily schema check: custom fields added on either side that the "
        "customer mapping ignores are reported with a suggested mapping line (log, SchemaDrift custom "
        "event, `syncctl mapping drift`); about 3 Brightpearl requests a run (docs/mapping.md)",
    )
    poll_overlap_seconds: int = Field(
        300,
        ge=0,
        le=24 * 3600,
        description="the Brightpearl poller re-reads this much before its watermark (late or "
        "offset updatedOn stamps); repeats are harmless (state-based flows)",
    )
    poll_initial_lookback_hours: int = Field(
        24,
        ge=0,
        le=24 * 365,
        description="how far back the first Brightpearl poll looks when there is no cursor yet",
    )
    ids_per_notice: int = Field(
        100,
        ge=1,
        le=500,
        description="ids per change notice published by pollers and backfill",
    )
    integration_user_id: str | None = Field(
        None,
        validation_alias="DATAVERSE_INTEGRATION_USER_ID",
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="systemuserid of the integration's application user in Dataverse; changes it "
        "initiated are recognised as echoes (an extra signal next to content hashes)",
    )
    trust_integration_user: bool = Field(
        False,
        description="true: skip Dataverse notices initiated by DATAVERSE_INTEGRATION_USER_ID without "
        "fetching (saves calls, but misses edits other tools make under the same user); false: "
        "always fetch and let the content hash decide",
    )
    delete_handling: Literal["record", "tag"] = Field(
        "record",
        description="a Dataverse delete/deactivation never deletes in Brightpearl: record = audit "
        "only; tag = audit and tag the linked Brightpearl contact",
    )
    delete_tag: str = Field(
        "Deleted in Dynamics",
        min_length=1,
        max_length=50,
        description="the Brightpearl tag name used when CUSTOMERS_DELETE_HANDLING=tag",
    )
    sync_custom_fields: bool = Field(
        False,
        description="sync the mapping's custom_fields; Brightpearl has no id-set read for contact "
        "custom fields, so this costs one GET per contact per batch",
    )

    @field_validator("integration_user_id", mode="before")
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    brightpearl_scan_threshold: int = Field(
        25,
        ge=0,
        le=100_000,
        description="above this many unmatched records in one batch, e-mail/name matching pages "
        "contact-search once instead of one search per record",
    )


class ProductsSettings(BaseSettings):
    """The products, stock and prices flows and their pollers (issue 12); overlap, look-back: CUSTOMERS_*."""

    model_config = section_config("")

    mapping_path: str = Field(
        "mappings/products.yaml",
        validation_alias="PRODUCT_MAPPING_PATH",
        description="the product mapping YAML (relative to the app root or absolute)",
    )
    brightpearl_poll_schedule: str = Field(
        "15 */5 * * * *",
        validation_alias="BRIGHTPEARL_PRODUCT_POLL_SCHEDULE",
        description="NCRONTAB (seconds first) of the Brightpearl product-search poller, the backstop "
        "for lost product webhooks (webhooks bring changes within seconds); each poll costs one of "
        "the 200 requests a minute per 500 changed products (every 5 minutes: under 0.1 %), and a "
        "round is skipped while the rate budget is short",
    )
    stock_poll_schedule: str = Field(
        "45 */5 * * * *",
        validation_alias="BRIGHTPEARL_STOCK_POLL_SCHEDULE",
        description="NCRONTAB of the goods-movement-search poller, the backstop for lost stock webhooks "
        "(stock has no updatedOn); one request per 500 movements a round (every 5 minutes: 12 an "
        "hour, 0.1 %), so a lost webhook is caught within 5 minutes (docs/architecture.md, Stock "
        "backstop)",
    )
    stock_sweep_schedule: str = Field(
        "50 * * * * *",
        validation_alias="BRIGHTPEARL_STOCK_SWEEP_SCHEDULE",
        description="NCRONTAB of the stock sweep, the rolling re-read of the products Dynamics has "
        "(stock.sweep_ids_per_run a run, default 400: 2 availability calls, 1 % of the 200 a minute "
        "every minute) for what no goods movement shows (allocation)",
    )


class OrdersSettings(BaseSettings):
    """The orders flows (issue 13): Dynamics sales orders -> Brightpearl, fulfilment back."""

    model_config = section_config("")

    mapping_path: str = Field(
        "mappings/orders.yaml",
        validation_alias="ORDER_MAPPING_PATH",
        description="the order mapping YAML (relative to the app root or absolute); its status_file "
        "(default order_status.yaml beside it) maps Brightpearl order statuses to Dynamics states",
    )
    timeline_mapping_path: str = Field(
        "mappings/timeline.yaml",
        validation_alias="TIMELINE_MAPPING_PATH",
        description="the timeline mapping YAML (relative to the app root or absolute): which key "
        "moments (order placed, shipped, returned, refunded) go on the Dynamics customer as notes or tasks",
    )
    brightpearl_poll_schedule: str = Field(
        "40 * * * * *",
        validation_alias="BRIGHTPEARL_ORDER_POLL_SCHEDULE",
        description="NCRONTAB of the Brightpearl order-search poller (updatedOn), the backstop of the "
        "write-back: lost status and shipment webhooks, and invoices and payments, which raise no "
        "documented webhook; one request per 500 changed orders a round (every minute: 0.5 % of the "
        "200 a minute), skipped while the rate budget is short",
    )
    payment_poll_schedule: str = Field(
        "35 * * * * *",
        validation_alias="BRIGHTPEARL_PAYMENT_POLL_SCHEDULE",
        description="NCRONTAB of the Brightpearl customer-payment poller (customer-payment-search by "
        "createdOn): payments raise no webhook, so this is how invoices become Paid or Partial in "
        "Dynamics; it publishes order notices for the orders paid or refunded; one request per 500 "
        "payments a round (every minute: 0.5 % of the 200 a minute), skipped while the rate budget "
        "is short",
    )
    dataverse_poll_schedule: str = Field(
        "20 */5 * * * *",
        validation_alias="ORDERS_DATAVERSE_POLL_SCHEDULE",
        description="NCRONTAB of the change-tracking poll of salesorder and salesorderdetail, the "
        "backstop for lost Dataverse order webhooks (two requests a run; webhooks bring changes "
        "within seconds)",
    )
    returns_mapping_path: str = Field(
        "mappings/returns.yaml",
        validation_alias="RETURNS_MAPPING_PATH",
        description="the returns mapping YAML (sales credits -> Dynamics cases; relative to the app "
        "root or absolute)",
    )
    returns_poll_schedule: str = Field(
        "25 * * * * *",
        validation_alias="RETURNS_POLL_SCHEDULE",
        description="NCRONTAB of the Brightpearl sales-credit poller (order-search, order type SC, by "
        "updatedOn): sales-credit webhooks are unconfirmed, so this is how new, refunded and cancelled "
        "credits reach their cases; one request per 500 changed credits a round (every minute: 0.5 % "
        "of the 200 a minute), skipped while the rate budget is short",
    )


class CustomerValueSettings(BaseSettings):
    """Customer value on the Dynamics customer (issue 14 items 4-5): enrichment and currency."""

    model_config = section_config("")

    rate_source: Literal["brightpearl", "dataverse"] = Field(
        "brightpearl",
        validation_alias="EXCHANGE_RATE_SOURCE",
        description="where exchange rates come from: brightpearl (the account's dated exchange rates) "
        "or dataverse (transactioncurrency.exchangerate, current rate only); a mapping file may name "
        "its own (mappings/customer_value.yaml rate_source)",
    )
    mapping_path: str = Field(
        "mappings/customer_value.yaml",
        validation_alias="CUSTOMER_VALUE_MAPPING_PATH",
        description="the customer value mapping YAML (relative to the app root or absolute)",
    )
    flush_schedule: str = Field(
        "15 * * * * *",
        validation_alias="CUSTOMER_VALUE_FLUSH_SCHEDULE",
        description="NCRONTAB of the customer value flush: customers whose figures changed since the "
        "last run are written once each, only the columns that differ (one Dataverse read per ~500 "
        "customers, one UpdateMultiple per 1,000); no Brightpearl request",
    )
    recompute_schedule: str = Field(
        "0 45 2 * * *",
        validation_alias="CUSTOMER_VALUE_RECOMPUTE_SCHEDULE",
        description="NCRONTAB of the nightly customer value recompute: a share of the customers "
        "(mappings/customer_value.yaml recompute.share_per_night) recomputed from their Brightpearl "
        "orders and credits, rotating through all of them; drift is reported and fixed",
    )


class AnomalySettings(BaseSettings):
    """Anomaly detection (issue 16 item 3; shared/anomaly): flags to the audit and App Insights."""

    model_config = section_config("ANOMALY_")

    detection: bool = Field(True, description="look for anomalies as records sync (off: no flags)")
    order_value_threshold: float = Field(
        6.0,
        gt=0,
        description="an order value is flagged when it is more than this many robust deviations "
        "(1.4826 x the median absolute deviation) from the median of the customer's earlier orders, "
        "or of the account's when the customer has too few",
    )
    order_customer_history: int = Field(
        5, ge=2, description="earlier orders a customer needs before its own history is the yardstick"
    )
    order_account_history: int = Field(
        20,
        ge=2,
        description="earlier orders (any customer) the account needs before its range is the yardstick",
    )
    email_changes_per_day: int = Field(
        3, ge=1, description="a customer whose e-mail changes more often than this in a UTC day is flagged"
    )
    spike_minimum: int = Field(
        20,
        ge=1,
        description="dead letters (or deletion notices) of one flow in an hour below this are never a spike",
    )
    spike_threshold: float = Field(
        6.0,
        gt=0,
        description="an hour's dead letters or deletions are a spike when above the median of the "
        "previous 24 hours by more than this many robust deviations (and at least ANOMALY_SPIKE_MINIMUM)",
    )
    hold_for_review: str = Field(
        "",
        description="comma-separated anomaly kinds that hold the record as needs-review instead of "
        "writing it (OrderValue, EmailChurn); empty: flags never block a sync",
    )

    @field_validator("hold_for_review")
    @classmethod
    def _known_kinds(cls, value: str) -> str:
        holdable = ("OrderValue", "EmailChurn")
        for kind in (k.strip() for k in value.split(",") if k.strip()):
            if kind not in holdable:
                raise ValueError(f"{kind!r} cannot hold a record; use {' or '.join(holdable)}")
        return value

    @property
    def held_kinds(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.hold_for_review.split(",") if k.strip())


@dataclass(eq=False, repr=False)
class AppSettings:
    """All sections, validated together."""

    bus: BusSettings
    store: StoreSettings
    retry: RetrySettings
    webhooks: WebhookSettings
    telemetry: TelemetrySettings
    brightpearl: BrightpearlSettings
    dataverse: DataverseSettings
    customers: CustomersSettings = field(default_factory=lambda: CustomersSettings.model_validate({}))
    products: ProductsSettings = field(default_factory=lambda: ProductsSettings.model_validate({}))
    orders: OrdersSettings = field(default_factory=lambda: OrdersSettings.model_validate({}))
    anomaly: AnomalySettings = field(default_factory=lambda: AnomalySettings.model_validate({}))
    customer_value: CustomerValueSettings = field(
        default_factory=lambda: CustomerValueSettings.model_validate({})
    )


SECTIONS: dict[str, type[BaseSettings]] = {
    "bus": BusSettings,
    "store": StoreSettings,
    "retry": RetrySettings,
    "webhooks": WebhookSettings,
    "telemetry": TelemetrySettings,
    "brightpearl": BrightpearlSettings,
    "dataverse": DataverseSettings,
    "customers": CustomersSettings,
    "products": ProductsSettings,
    "orders": OrdersSettings,
    "anomaly": AnomalySettings,
    "customer_value": CustomerValueSettings,
}


def _describe(section: type[BaseSettings], exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = err["loc"]
        name = str(loc[0]) if loc else ""
        field = section.model_fields.get(name)
        if field is not None and field.validation_alias is not None:
            alias = field.validation_alias
            name = alias if isinstance(alias, str) else _first_alias(alias)
        value = err.get("input")
        shown = "" if not loc or isinstance(value, dict) else f" (got {_redact(name, value)!r})"
        label = name or section.__name__
        problems.append(f"{label}: {err['msg']}{shown}")
    return problems


def _first_alias(alias: object) -> str:
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias)


def _redact(name: str, value: object) -> object:
    lowered = name.lower()
    if any(word in lowered for word in ("secret", "token", "key", "password", "connection")):
        return "***"
    return value


@functools.cache
def _from_values(section: type[BaseSettings]) -> type[BaseSettings]:
    """`section`, reading only the values it is given (pydantic-settings would also read
    os.environ, which would leak the process environment into `load_settings(environ)`)."""

    def sources(
        cls: type[BaseSettings], /, settings_cls: type[BaseSettings], init_settings: Any, **_: Any
    ) -> tuple[Any, ...]:
        return (init_settings,)

    return type(
        section.__name__,
        (section,),
        {
            "settings_customise_sources": classmethod(sources),
            "__module__": section.__module__,
            "__doc__": section.__doc__,
        },
    )


def load_settings(environ: dict[str, str] | None = None) -> AppSettings:
    """Build and validate every section; raise SettingsError naming each bad setting.

    `environ` replaces os.environ (tests, `syncctl settings check --file`). Empty values count
    as unset.
    """
    # An empty app setting means "not set" (Azure and local.settings.json both have them).
    values: dict[str, Any] = {
        k: v for k, v in (os.environ if environ is None else environ).items() if v != ""
    }
    built: dict[str, Any] = {}  # section name -> its settings (AppSettings' keyword arguments)
    problems: list[str] = []
    known = {
        (f.validation_alias if isinstance(f.validation_alias, str) else name)
        for section in SECTIONS.values()
        for name, f in section.model_fields.items()
    }
    for key, value in values.items():
        # Azure leaves a Key Vault reference it cannot resolve as literal text.
        if key in known and value.startswith("@Microsoft.KeyVault("):
            problems.append(
                f"{key}: the Key Vault reference was not resolved; check that the secret exists "
                "and that the app's identity has the Key Vault Secrets User role"
            )
    for key, section in SECTIONS.items():
        try:
            built[key] = _from_values(section)(**values)
        except ValidationError as exc:
            problems.extend(_describe(section, exc))
    if problems:
        raise SettingsError(problems)
    return AppSettings(**built)


@functools.cache
def get_settings() -> AppSettings:
    """The process-wide settings, loaded on first use (function app start-up)."""
    return load_settings()
