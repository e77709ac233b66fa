"""Message settlement for the local host: in-flight deliveries and LocalMessageActions.

Outside the real Functions host the extension's `ServiceBusMessageActions` cannot reach its
gRPC settlement service, so the local host hands functions a `LocalMessageActions` with
the same methods. It settles on the local bus by the message's lock token and raises the
extension's own `SettlementError` when settlement fails, as the real object does.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from azurefunctions.extensions.bindings.servicebus import ServiceBusMessageActions
from azurefunctions.extensions.bindings.servicebus.serviceBusMessageActions import SettlementError

from sandbox.host.messages import BusMessage

log = logging.getLogger("sandbox.host")

T = TypeVar("T")


@dataclass
class Delivery:
    """One locked message handed to a function, until it is settled or its lock is lost."""

    message: BusMessage
    function_name: str
    received_at: datetime
    lock_duration_s: float
    locked_until: datetime
    outcome: str | None = None  # completed | abandoned | dead-lettered | deferred | lock-lost
    guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def open(self) -> bool:
        return self.outcome is None


def normalise_token(token: Any) -> str:
    return str(uuid.UUID(str(token)))


class Deliveries:
    """Registry of in-flight deliveries by lock token; every bus call goes through `call_bus`."""

    def __init__(self, bus: Any, call_bus: Callable[..., Any]):
        self._bus = bus
        self._call_bus = call_bus
        self._items: dict[str, Delivery] = {}
        self._lock = threading.Lock()

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self._items[normalise_token(delivery.message.lock_token)] = delivery

    def discard(self, delivery: Delivery) -> None:
        with self._lock:
            self._items.pop(normalise_token(delivery.message.lock_token), None)

    def get(self, token: Any) -> Delivery | None:
        with self._lock:
            return self._items.get(normalise_token(token))

    def open_deliveries(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self._items.values() if d.open]

    def settle(self, delivery: Delivery, action: str, *args: Any, **kwargs: Any) -> None:
        """Apply one settlement on the bus; raises the bus's error if it fails."""
        from shared.bus.port import BusError

        operation = {
            "completed": self._bus.complete,
            "abandoned": self._bus.abandon,
            "dead-lettered": self._bus.dead_letter,
            "deferred": self._bus.defer,
        }[action]
        with delivery.guard:
            if not delivery.open:
                raise RuntimeError(f"message already {delivery.outcome}")
            try:
                self._call_bus(operation, delivery.message, *args, **kwargs)
            except BusError as exc:
                if _is_lock_lost(exc):
                    delivery.outcome = "lock-lost"
                raise
            delivery.outcome = action

    def renew(self, delivery: Delivery) -> datetime | None:
        """Renew the lock of an open delivery; returns the new locked-until (None if settled)."""
        from shared.bus.port import BusError

        with delivery.guard:
            if not delivery.open:
                return None
            try:
                until = self._call_bus(self._bus.renew_lock, delivery.message)
            except BusError as exc:
                if _is_lock_lost(exc):
                    delivery.outcome = "lock-lost"
                raise
            delivery.locked_until = until
            return until

    def release(self, delivery: Delivery, success: bool, why: str) -> None:
        """Settle a delivery the function left open: complete on success, else abandon. Never raises."""
        action = "completed" if success else "abandoned"
        try:
            self.settle(delivery, action)
        except Exception as exc:
            if delivery.outcome == "lock-lost":
                log.warning(
                    "message %s of %s: lock lost before it could be %s (%s); the bus redelivers it",
                    delivery.message.message_id,
                    delivery.function_name,
                    action,
                    why,
                )
            elif delivery.open:
                log.error(
                    "message %s of %s: could not be %s (%s): %s; its lock will expire and the bus "
                    "redelivers it",
                    delivery.message.message_id,
                    delivery.function_name,
                    action,
                    why,
                    exc,
                )


def _is_lock_lost(exc: Exception) -> bool:
    return type(exc).__name__ == "MessageLockLostError" or any(
        cls.__name__ == "MessageLockLostError" for cls in type(exc).__mro__
    )


class LocalMessageActions(ServiceBusMessageActions):
    """Settlement object with the methods of the extension's ServiceBusMessageActions.

    Each method takes the ServiceBusReceivedMessage the function received and settles it on
    the local bus by its lock token. Errors surface as the extension's SettlementError.
    """

    def __init__(self, deliveries: Deliveries):  # no gRPC: do not call the base initialiser
        self._deliveries = deliveries

    def _delivery(self, method: str, message: Any) -> Delivery:
        token = getattr(message, "lock_token", None)
        if not token:
            raise SettlementError(
                method, "lockToken is required in ServiceBusReceivedMessage", ValueError("no lock token")
            )
        delivery = self._deliveries.get(token)
        if delivery is None:
            raise SettlementError(
                method,
                f"Failed to {method} message {token}",
                LookupError("the lock token is unknown or the message is already settled"),
            )
        return delivery

    def _settle(self, method: str, message: Any, action: str, *args: Any, **kwargs: Any) -> None:
        delivery = self._delivery(method, message)
        try:
            self._deliveries.settle(delivery, action, *args, **kwargs)
        except Exception as exc:
            raise SettlementError(method, f"Failed to {method} message {message.lock_token}", exc) from exc

    def complete(self, message: Any) -> None:
        self._settle("complete", message, "completed")

    def abandon(self, message: Any, properties_to_modify: bytes | None = b"") -> None:
        self._settle("abandon", message, "abandoned", properties_to_modify=_properties(properties_to_modify))

    def deadletter(
        self,
        message: Any,
        properties_to_modify: bytes | None = b"",
        deadletter_reason: str | None = None,
        deadletter_error_description: str | None = None,
    ) -> None:
        # The pinned extension (1.0.0b2) declares deadletter(message, deadletter_reason,
        # deadletter_error_description); later sources put properties_to_modify second. Accept both.
        if isinstance(properties_to_modify, str):
            deadletter_reason, deadletter_error_description = properties_to_modify, deadletter_reason
        self._settle(
            "deadletter",
            message,
            "dead-lettered",
            reason=deadletter_reason,
            description=deadletter_error_description,
        )

    def defer(self, message: Any, properties_to_modify: bytes | None = b"") -> None:
        self._settle("defer", message, "deferred")

    def renew_message_lock(self, message: Any) -> None:
        delivery = self._delivery("renew_message_lock", message)
        try:
            self._deliveries.renew(delivery)
        except Exception as exc:
            raise SettlementError(
                "renew_message_lock", f"Failed to renew lock for {message.lock_token}", exc
            ) from exc

    def set_session_state(self, session_id: str, session_state: bytes) -> None:
        raise SettlementError(
            "set_session_state",
            "sessions are not supported by the local bus",
            NotImplementedError(session_id),
        )

    def release_session(self, session_id: str) -> None:
        raise SettlementError(
            "release_session", "sessions are not supported by the local bus", NotImplementedError(session_id)
        )

    def renew_session_lock(self, session_id: str) -> Any:
        raise SettlementError(
            "renew_session_lock",
            "sessions are not supported by the local bus",
            NotImplementedError(session_id),
        )


def _properties(raw: bytes | dict | None) -> dict | None:
    """properties_to_modify: the extension sends encoded bytes; a dict is taken as-is."""
    if not raw:
        return None
    if isinstance(raw, dict):
        return raw
    raise SettlementError(
        "abandon", "properties_to_modify must be a dict for the local bus", TypeError(type(raw).__name__)
    )
