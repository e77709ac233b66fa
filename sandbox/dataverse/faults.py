"""Injected faults: the next N matching Web API requests fail (429, 5xx, 413), stall or drop."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

from sandbox.dataverse import errors as E
from sandbox.dataverse.config import SimulatorConfig
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.limits import THROTTLE_CODES, ServiceProtection
from sandbox.dataverse.protocol import SimResponse

FAULT_KINDS = ("429", "502", "503", "504", "timeout", "slow", "drop", "413")


@dataclass
class Fault:
    kind: str
    remaining: int = 1
    retry_after: float = 1.0
    delay_seconds: float = 30.0
    code: str = "requests"  # 429 facet: requests | execution | concurrency
    path_contains: str | None = None
    method: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_contains and self.path_contains not in path)


class FaultInjector:
    """Deterministic "next N matching requests" faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.fired: Counter[str] = Counter()

    def add(self, spec: dict[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}; got {kind!r}")
        count = spec.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive integer")
        fault = Fault(
            kind=kind,
            remaining=count,
            retry_after=float(spec.get("retry_after", 1.0)),
            delay_seconds=float(spec.get("delay_seconds", 30.0 if kind == "timeout" else 1.0)),
            code=str(spec.get("code", "requests")),
            path_contains=spec.get("path_contains"),
            method=spec.get("method"),
        )
        if fault.code not in THROTTLE_CODES:
            raise ValueError("code must be requests, execution or concurrency")
        with self.lock:
            self.faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    self.fired[fault.kind] += 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"pending": [asdict(f) for f in self.faults], "fired": dict(self.fired)}


def injected_response(
    fault: Fault, config: SimulatorConfig, protection: ServiceProtection
) -> SimResponse | None:
    """The reply a fault puts in place of the real one (None: `slow` and `drop` reply otherwise)."""
    if fault.kind == "429":
        limit = {
            "requests": config.request_limit,
            "execution": config.execution_limit_ms,
            "concurrency": config.concurrency_limit,
        }[fault.code]
        return SimResponse.error(protection._error(fault.code, limit, fault.retry_after))
    if fault.kind in ("502", "503", "504", "timeout"):
        status = 504 if fault.kind == "timeout" else int(fault.kind)
        return SimResponse.json(status, {"error": {"code": "", "message": f"Injected fault: HTTP {status}"}})
    if fault.kind == "413":
        return SimResponse.error(
            ODataError(413, E.REQUEST_TOO_LARGE, "The request is too large (injected fault).")
        )
    return None
