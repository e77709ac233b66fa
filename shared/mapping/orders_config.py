"""The order mapping file (mappings/orders.yaml): its schema, loading and validation.

`load_order_mapping()` reads mappings/orders.yaml, validates its structure with pydantic and
then its meaning (shipping method options Dynamics has, a discount row's nominal code, the
wait after an unknown SKU), and reads the status file it names (`status_file`, default
order_status.yaml beside it, shared/mapping/orders_status.py). Every problem is reported with
the YAML path of the bad entry, the status file's prefixed with its name
(`order_status.yaml: statuses.Shipped.statuscode: ...`), all together in one `MappingError`.
`load_order_mapping` caches per version of both files.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.mapping.config import MappingError, read_yaml_document, validate_document
from shared.mapping.fulfilment_config import FulfilmentSettings
from shared.mapping.orders_history import HistorySettings
from shared.mapping.orders_status import OrderStatusMapping, read_order_status_mapping
from shared.mapping.sku_match import SkuMatching

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mappings" / "orders.yaml"

# salesorder shippingmethodcode options (reference dataverse-api.md §10.5)
SHIPPING_METHOD_CODES = {
    1: "Airborne",
    2: "DHL",
    3: "FedEx",
    4: "UPS",
    5: "Postal Mail",
    6: "Full Load",
    7: "Will Call",
}

# create: every new order; submit: when it is submitted (statecode 1, the default);
# flag: when the Yes/No column (bpi_sendtobrightpearl) turns on
SyncOn = Literal["create", "submit", "flag"]
NOMINAL = r"^[0-9]{3,10}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerSettings(_Strict):
    when: SyncOn = "submit"
    flag_column: str = Field("bpi_sendtobrightpearl", pattern=r"^bpi_[a-z0-9_]{1,96}$")
    opportunity_won: bool = Field(False, description="an opportunity marked Won creates the order")
    opportunity_ref: Literal["name", "none"] = Field(
        "name", description="a won opportunity's Brightpearl ref: its name (first 64 characters), or none"
    )


class BrightpearlOrderSettings(_Strict):
    channel_id: int | None = Field(None, ge=1)
    warehouse_id: int | None = Field(None, ge=1)
    price_list_id: int | None = Field(None, ge=1)
    status_id: int | None = Field(
        None, ge=1, description="initial order status (None: the account's default)"
    )
    price_mode: Literal["INC", "EXC"] = "EXC"


class TaxSettings(_Strict):
    codes: dict[Decimal, str] = Field(
        default_factory=dict, description="tax rate % (line tax / net) -> Brightpearl tax code"
    )
    default: str | None = Field(None, min_length=1, description="code for a rate the table lacks")
    freight: str | None = Field(None, min_length=1, description="tax code of the shipping row")

    def code_for(self, net: Decimal, tax: Decimal) -> str | None:
        """The Brightpearl tax code of a row of `net` with `tax`: its rate in the table (rounded
        to 2 places), else the default; None when neither applies."""
        rate = Decimal(0) if net == 0 else (tax * 100 / net).quantize(Decimal("0.01"))
        for key, code in self.codes.items():
            if key.quantize(Decimal("0.01")) == rate:
                return code
        return self.default


class DiscountSettings(_Strict):
    order_level: Literal["row", "spread"] = Field(
        "spread", description="row: one negative row; spread: off each line's net in proportion"
    )
    row_name: str = Field("Order discount", min_length=1, max_length=200)
    nominal_code: str | None = Field(None, pattern=NOMINAL)
    tax_code: str | None = Field(None, min_length=1)


class FreightSettings(_Strict):
    row_name: str = Field("Shipping", min_length=1, max_length=200)
    nominal_code: str | None = Field(None, pattern=NOMINAL, description="the shipping row's nominal code")


class UnknownSkuSettings(_Strict):
    action: Literal["dead_letter", "wait"] = "dead_letter"
    wait_minutes: int = Field(0, ge=0, le=10080, description="wait: how long to retry before dead-lettering")


class CustomerWaitSettings(_Strict):
    attempts: int = Field(6, ge=0, le=50, description="retries while the customer is not linked")


StatusName = Annotated[str, Field(min_length=1, max_length=64)]


class ChangeSettings(_Strict):
    """Changes after creation: which Brightpearl statuses (names, any case) still take Dynamics
    line edits, and the status a Dynamics cancellation moves the order to."""

    editable_statuses: tuple[StatusName, ...] = Field(
        (), description="Brightpearl order status names whose rows follow Dynamics line edits"
    )
    cancelled_status: StatusName = Field("Cancelled", description="status name of a cancelled order")

    def editable(self, status: str | None) -> bool:
        return bool(status) and str(status).casefold() in {s.casefold() for s in self.editable_statuses}

    def is_cancelled(self, status: str | None) -> bool:
        return bool(status) and str(status).casefold() == self.cancelled_status.casefold()


class WritebackSettings(_Strict):
    """How the write-back (orders-to-dataverse) reaches Dynamics orders that are not Active:
    Dynamics keeps Submitted, Fulfilled, Canceled and Invoiced orders read-only to users."""

    read_only_orders: Literal["reopen", "direct"] = Field(
        "reopen",
        description="reopen: a Submitted order is set Active, written, then put back, and a closed order "
        "is not written (DynamicsOrderClosed); direct: columns and lines are written as they are, "
        "which Dynamics allows only an administrator (an application user with System Administrator)",
    )


class OrderMapping(_Strict):
    """The validated contents of mappings/orders.yaml (and the status file it names)."""

    version: Literal[1] = 1
    entity: Literal["order"] = "order"
    trigger: TriggerSettings = TriggerSettings()
    brightpearl: BrightpearlOrderSettings = BrightpearlOrderSettings()
    tax: TaxSettings = TaxSettings()
    discount: DiscountSettings = DiscountSettings()
    freight: FreightSettings = FreightSettings()
    shipping_methods: dict[int, int] = Field(
        default_factory=dict, description="shippingmethodcode -> Brightpearl shippingMethodId"
    )
    unknown_sku: UnknownSkuSettings = UnknownSkuSettings()
    customer_wait: CustomerWaitSettings = CustomerWaitSettings()
    changes: ChangeSettings = ChangeSettings()
    writeback: WritebackSettings = WritebackSettings()
    fulfilment: FulfilmentSettings = FulfilmentSettings()
    history: HistorySettings = HistorySettings()  # Brightpearl-born orders -> Dynamics (issue 14)
    sku_matching: SkuMatching = SkuMatching()
    status_file: str = Field("order_status.yaml", min_length=1, description="relative to this file")
    statuses: OrderStatusMapping = Field(default_factory=OrderStatusMapping, description="status_file's")
    source: str = Field("<memory>", exclude=True)


def _semantic_problems(m: OrderMapping) -> list[str]:
    problems: list[str] = []
    for code in m.shipping_methods:
        if code not in SHIPPING_METHOD_CODES:
            options = ", ".join(f"{k} {v}" for k, v in SHIPPING_METHOD_CODES.items())
            problems.append(
                f"shipping_methods.{code}: not a shippingmethodcode option of Dynamics orders ({options})"
            )
    for code, method in m.shipping_methods.items():
        if method < 1:
            problems.append(f"shipping_methods.{code}: the Brightpearl shippingMethodId must be positive")
    for rate in m.tax.codes:
        if rate < 0 or rate > 100:
            problems.append(f"tax.codes.{rate}: a tax rate is a percentage between 0 and 100")
    if m.discount.order_level == "row" and m.discount.nominal_code is None:
        problems.append("discount.nominal_code: order_level row needs the discount row's nominal code")
    if m.unknown_sku.action == "wait" and m.unknown_sku.wait_minutes == 0:
        problems.append("unknown_sku.wait_minutes: action wait needs a wait of at least 1 minute")
    if m.unknown_sku.action == "dead_letter" and m.unknown_sku.wait_minutes:
        problems.append("unknown_sku.wait_minutes: only used with action wait (the action is dead_letter)")
    names = [s.casefold() for s in m.changes.editable_statuses]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"changes.editable_statuses: {name!r} is listed more than once")
    if m.changes.editable(m.changes.cancelled_status):
        problems.append(
            f"changes.cancelled_status: {m.changes.cancelled_status!r} is also in changes.editable_statuses "
            "(a cancelled order takes no edits)"
        )
    return problems


def parse_order_mapping(
    data: Any, source: str = "<memory>", statuses: OrderStatusMapping | None = None
) -> OrderMapping:
    """Validate an already-parsed YAML document. Raises MappingError listing every problem."""
    if isinstance(data, dict) and "statuses" in data:
        raise MappingError(source, ["statuses: status mappings belong in the status file (status_file)"])
    mapping = validate_document(OrderMapping, data, source, _semantic_problems)
    return mapping.model_copy(update={"statuses": statuses}) if statuses is not None else mapping


def read_order_mapping(path: str | Path | None = None) -> OrderMapping:
    """Read and validate an order mapping file and its status file, uncached (mapping check)."""
    file = Path(path) if path is not None else DEFAULT_PATH
    data = read_yaml_document(file)
    problems: list[str] = []
    mapping: OrderMapping | None = None
    try:
        mapping = parse_order_mapping(data, str(file))
    except MappingError as exc:
        problems.extend(exc.problems)
    status_name = mapping.status_file if mapping is not None else _status_file(data)
    status_path = file.parent / status_name
    try:
        statuses = read_order_status_mapping(status_path)
    except MappingError as exc:
        problems.extend(f"{status_name}: {p}" for p in exc.problems)
        statuses = None
    if problems or mapping is None or statuses is None:
        raise MappingError(str(file), problems)
    return mapping.model_copy(update={"statuses": statuses})


def _status_file(data: Any) -> str:
    name = data.get("status_file") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else "order_status.yaml"


@functools.lru_cache(maxsize=8)
def _cached(path: str, versions: tuple[int, int]) -> OrderMapping:
    return read_order_mapping(path)


def _version(file: Path) -> int:
    try:
        return file.stat().st_mtime_ns
    except OSError:
        return -1


def load_order_mapping(path: str | Path | None = None) -> OrderMapping:
    """The validated order mapping (default mappings/orders.yaml), cached per version of the
    file and of its status file (an edit of either is read on the next call)."""
    file = (Path(path) if path is not None else DEFAULT_PATH).resolve()
    status = file.parent / _status_file(_peek(file))
    return _cached(str(file), (_version(file), _version(status)))


def _peek(file: Path) -> Any:
    """orders.yaml's document for its status_file name (None when unreadable: the default)."""
    try:
        return read_yaml_document(file)
    except MappingError:
        return None
