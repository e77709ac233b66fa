"""Loads infra/topology.json: the one description of topics, subscriptions and rules."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

DEFAULT_TOPOLOGY_PATH = Path(__file__).resolve().parents[2] / "infra" / "topology.json"

_ISO_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
# Service Bus entity name limits: subscription and rule names at most 50 characters.
_ENTITY_NAME = re.compile(r"^[A-Za-z0-9$][A-Za-z0-9._-]{0,49}$")


class TopologyError(ValueError):
    """The topology file is missing or invalid; the message names the field."""


def parse_iso_duration(value: str) -> timedelta:
    """Parse the ISO 8601 durations Service Bus uses (e.g. PT1M, P14D, PT0.5S)."""
    match = _ISO_DURATION.match(value)
    if not match or value in ("P", "PT"):
        raise ValueError(f"{value!r} is not an ISO 8601 duration such as PT1M or P14D")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(
        days=parts.get("days", 0),
        hours=parts.get("hours", 0),
        minutes=parts.get("minutes", 0),
        seconds=parts.get("seconds", 0),
    )


def _iso_duration(value: str) -> str:
    parse_iso_duration(value)
    return value


IsoDuration = Annotated[str, AfterValidator(_iso_duration)]


def _within(name: str, low: str, high: str, why: str = "") -> AfterValidator:
    """A duration between `low` and `high` (ISO 8601, both included); the error names the field."""
    shortest, longest = parse_iso_duration(low), parse_iso_duration(high)

    def check(value: str) -> str:
        if not shortest <= parse_iso_duration(value) <= longest:
            raise ValueError(f"{name} must be between {low} and {high}" + (f" ({why})" if why else ""))
        return value

    return AfterValidator(check)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Rule(_Model):
    name: str = Field(pattern=_ENTITY_NAME.pattern)
    sql_filter: str = Field(alias="sqlFilter", min_length=1, max_length=1024)


class _Expiring(_Model):
    """A Service Bus entity with a default message time-to-live: a topic or a subscription."""

    default_message_time_to_live: IsoDuration = Field(alias="defaultMessageTimeToLive")

    @property
    def ttl(self) -> timedelta:
        return parse_iso_duration(self.default_message_time_to_live)


class Subscription(_Expiring):
    name: str = Field(pattern=_ENTITY_NAME.pattern)
    max_delivery_count: int = Field(alias="maxDeliveryCount", ge=1, le=2000)
    lock_duration: Annotated[IsoDuration, _within("lockDuration", "PT5S", "PT5M", "Service Bus limit")] = (
        Field(alias="lockDuration")
    )
    dead_lettering_on_message_expiration: bool = Field(alias="deadLetteringOnMessageExpiration")
    dead_lettering_on_filter_evaluation_exceptions: bool = Field(
        alias="deadLetteringOnFilterEvaluationExceptions"
    )
    rule: Rule

    @property
    def lock(self) -> timedelta:
        return parse_iso_duration(self.lock_duration)


class Topic(_Expiring):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,259}$")
    setting: str = Field(description="App setting that carries the topic name")
    requires_duplicate_detection: bool = Field(alias="requiresDuplicateDetection")
    duplicate_detection_history_time_window: Annotated[
        IsoDuration, _within("duplicateDetectionHistoryTimeWindow", "PT20S", "P7D")
    ] = Field(alias="duplicateDetectionHistoryTimeWindow")
    subscriptions: list[Subscription]

    @property
    def duplicate_window(self) -> timedelta:
        return parse_iso_duration(self.duplicate_detection_history_time_window)

    def subscription(self, name: str) -> Subscription:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        raise KeyError(f"topic {self.name!r} has no subscription {name!r}")


class Topology(_Model):
    schema_version: int = Field(alias="schemaVersion")
    description: str = ""
    topics: list[Topic]

    def topic(self, name: str) -> Topic:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(f"topology has no topic {name!r}")

    def subscription_names(self) -> set[tuple[str, str]]:
        return {(t.name, s.name) for t in self.topics for s in t.subscriptions}


def load_topology(path: Path | str = DEFAULT_TOPOLOGY_PATH) -> Topology:
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise TopologyError(f"topology file not found: {path}") from exc
    except json.JSONDecodeError as exc:
        raise TopologyError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    try:
        return Topology.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise TopologyError(f"{path}: {problems}") from exc
