"""The `fulfilment:` section of mappings/orders.yaml: allocation and goods-out notes (issue 18 item 1).

Off by default. When on, a Brightpearl sales order that reaches the trigger (its status is one of
`trigger.statuses`, it is paid in full, or at once) has its rows reserved in the warehouses
`warehouses` lists, in that order, and goods-out notes made for what is reserved
(shared/flows/fulfilment.py). `channels` limits it to orders of those Brightpearl channels,
`order_warehouses` to orders of those warehouses; `channel_warehouses` gives a channel its own
warehouses. Every problem names its YAML path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

StatusName = Annotated[str, Field(min_length=1, max_length=64)]
BrightpearlId = Annotated[int, Field(ge=1)]
# status: the order's Brightpearl status is one of `statuses`; paid: orderPaymentStatus PAID;
# immediately: every sales order as soon as the flow hears of it
TriggerWhen = Literal["status", "paid", "immediately"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FulfilmentTrigger(_Strict):
    when: TriggerWhen = "status"
    statuses: tuple[StatusName, ...] = Field(
        ("Ready to ship",), description="Brightpearl order status names (any case) that start fulfilment"
    )

    def reached(self, status_name: str | None, payment_status: str | None) -> bool:
        if self.when == "immediately":
            return True
        if self.when == "paid":
            return str(payment_status or "").upper() == "PAID"
        return bool(status_name) and str(status_name).casefold() in {s.casefold() for s in self.statuses}

    def describe(self) -> str:
        if self.when == "status":
            return "status " + " or ".join(repr(s) for s in self.statuses)
        return "paid in full" if self.when == "paid" else "immediately"


class FulfilmentSettings(_Strict):
    """Allocation and goods-out notes for Brightpearl sales orders (shared/flows/fulfilment.py)."""

    enabled: bool = Field(False, description="off by default: nothing is reserved or noted")
    trigger: FulfilmentTrigger = FulfilmentTrigger()
    channels: tuple[BrightpearlId, ...] = Field(
        (), description="Brightpearl channel ids whose orders are fulfilled (empty: every channel)"
    )
    order_warehouses: tuple[BrightpearlId, ...] = Field(
        (), description="only orders whose own warehouse is one of these (empty: every warehouse)"
    )
    warehouses: tuple[BrightpearlId, ...] = Field(
        (), description="warehouse ids to reserve from, in this order (empty: the order's own warehouse)"
    )
    channel_warehouses: dict[BrightpearlId, tuple[BrightpearlId, ...]] = Field(
        default_factory=dict, description="channel id -> its own warehouses, in order (instead of warehouses)"
    )
    goods_out_notes: bool = Field(True, description="make goods-out notes for what is reserved")

    @model_validator(mode="after")
    def _consistent(self) -> FulfilmentSettings:
        problems: list[str] = []
        if self.trigger.when == "status" and not self.trigger.statuses:
            problems.append("trigger.statuses: when is status, so name at least one Brightpearl status")
        names = [s.casefold() for s in self.trigger.statuses]
        problems += [f"trigger.statuses: {n!r} is listed more than once" for n in _repeated(names)]
        problems += [f"channels: channel {c} is listed more than once" for c in _repeated(self.channels)]
        for name, listed in (("order_warehouses", self.order_warehouses), ("warehouses", self.warehouses)):
            problems += [f"{name}: warehouse {w} is listed more than once" for w in _repeated(listed)]
        for channel, warehouses in self.channel_warehouses.items():
            if not warehouses:
                problems.append(f"channel_warehouses.{channel}: name at least one warehouse id")
            problems += [
                f"channel_warehouses.{channel}: warehouse {w} is listed more than once"
                for w in _repeated(warehouses)
            ]
            if self.channels and channel not in self.channels:
                problems.append(
                    f"channel_warehouses.{channel}: channel {channel} is not in channels "
                    f"({', '.join(map(str, self.channels))}), so its orders are never fulfilled"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def applies_to(self, channel_id: int | None) -> bool:
        return not self.channels or channel_id in self.channels

    def ships_from(self, order_warehouse: int | None) -> bool:
        return not self.order_warehouses or order_warehouse in self.order_warehouses

    def warehouses_for(self, channel_id: int | None, order_warehouse: int | None) -> tuple[int, ...]:
        """Where an order of `channel_id` reserves, in order of preference."""
        if channel_id is not None and channel_id in self.channel_warehouses:
            return self.channel_warehouses[channel_id]
        if self.warehouses:
            return self.warehouses
        return (order_warehouse,) if order_warehouse else ()


def _repeated(values: tuple[object, ...] | list[str]) -> list[object]:
    seen: set[object] = set()
    out: list[object] = []
    for value in values:
        if value in seen and value not in out:
            out.append(value)
        seen.add(value)
    return out
