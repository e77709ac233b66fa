"""Change notices: the messages that travel on the bus (DESIGN §5).

A change notice says "these records of this entity changed in this system"; it carries ids,
never record contents. On the wire it is a CloudEvents 1.0 structured-mode JSON document,
schema-versioned, self-contained (a copy resubmitted from Service Bus Explorer can be
processed on its own) and keyed by a deterministic id, so broker duplicate detection and the
ledger drop re-deliveries of the same change.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.bus.port import CLOUDEVENTS_CONTENT_TYPE, OutgoingMessage
from shared.systems import System as System

SCHEMA_VERSION = 1
EVENT_TYPE_PREFIX = "com.brightpearl-dynamics-sync.change"
Operation = Literal["created", "updated", "deleted", "changed"]

# Application property names (subscription SQL filters use these; keep in step with
# infra/topology.json).
PROP_ENTITY = "entity"
PROP_OPERATION = "operation"
PROP_SOURCE_SYSTEM = "source_system"
PROP_REPLAY_TO = "replay_to"
PROP_ATTEMPT = "attempt"
PROP_SCHEMA_VERSION = "schema_version"

_ID = re.compile(r"^[A-Za-z0-9{}._:-]{1,64}$")
MAX_IDS_PER_NOTICE = 500


class EnvelopeError(ValueError):
    """A message body is not a valid change notice; the message names the field."""


class ChangeNotice(BaseModel):
    """What changed, where, and when it was observed. Never record contents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: System
    entity: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    ids: tuple[str, ...] = Field(min_length=1, max_length=MAX_IDS_PER_NOTICE)
    operation: Operation = "changed"
    observed_at: datetime
    source: str = Field(
        min_length=1,
        max_length=256,
        description="the emitting account or organisation, e.g. /brightpearl/acme",
    )
    origin: Literal["webhook", "poller", "backfill", "resubmit", "reconcile", "test"] = "webhook"
    version: str | None = Field(
        None,
        max_length=128,
        description="what makes this change distinct from an earlier one of the same records "
        "(the event's raisedOn time, a row version); part of the deterministic id",
    )
    detail: dict[str, Any] = Field(
        default_factory=dict,
        description="small extra facts: changed attributes, initiating user, event name",
    )

    @field_validator("ids", mode="before")
    @classmethod
    def _ids_as_strings(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return tuple(str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value)
        return value

    @field_validator("ids")
    @classmethod
    def _valid_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not isinstance(item, str) or not _ID.match(item):
                raise ValueError(f"id {item!r} is not a valid record id")
        return value

    @field_validator("observed_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("observed_at must carry a time zone")
        return value.astimezone(UTC)

    @property
    def key(self) -> str:
        """Deterministic idempotency key: same change, same key."""
        material = "|".join(
            [
                self.system,
                self.source,
                self.entity,
                self.operation,
                ",".join(sorted(self.ids)),
                self.version or self.observed_at.isoformat(),
            ]
        )
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]


class Envelope(BaseModel):
    """A change notice on the wire plus delivery facts (attempt, replay target)."""

    model_config = ConfigDict(frozen=True)

    notice: ChangeNotice
    attempt: int = Field(1, ge=1)
    replay_to: str | None = None
    id: str
    waited: int = Field(
        0,
        ge=0,
        description="seconds spent waiting on other workers' claims "
        "(retry copies that did not spend an attempt)",
    )

    @classmethod
    def wrap(cls, notice: ChangeNotice) -> Envelope:
        return cls(notice=notice, id=notice.key)

    def retry(self, replay_to: str) -> Envelope:
        """The copy sent for a scheduled retry: next attempt, only for `replay_to`."""
        return self.model_copy(update={"attempt": self.attempt + 1, "replay_to": replay_to})

    def wait(self, replay_to: str, seconds: float) -> Envelope:
        """The copy sent after waiting on another worker: same attempt, `seconds` more waited."""
        return self.model_copy(
            update={"waited": self.waited + max(1, math.ceil(seconds)), "replay_to": replay_to}
        )

    # -- wire format -------------------------------------------------------------------
    def to_cloudevent(self) -> dict[str, Any]:
        n = self.notice
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": self.id,
            "source": n.source,
            "type": f"{EVENT_TYPE_PREFIX}.v{SCHEMA_VERSION}",
            "subject": f"{n.system}/{n.entity}",
            "time": n.observed_at.isoformat().replace("+00:00", "Z"),
            "datacontenttype": "application/json",
            "schemaversion": SCHEMA_VERSION,
            "attempt": self.attempt,
            "data": n.model_dump(mode="json", exclude={"source"}),
        }
        if self.replay_to:
            event["replayto"] = self.replay_to
        if self.waited:
            event["waited"] = self.waited
        return event

    def to_message(self) -> OutgoingMessage:
        n = self.notice
        props: dict[str, str | int | None] = {
            PROP_ENTITY: n.entity,
            PROP_OPERATION: n.operation,
            PROP_SOURCE_SYSTEM: n.system,
            PROP_ATTEMPT: self.attempt,
            PROP_SCHEMA_VERSION: SCHEMA_VERSION,
        }
        if self.replay_to:
            props[PROP_REPLAY_TO] = self.replay_to
        body = json.dumps(self.to_cloudevent(), separators=(",", ":"), sort_keys=True)
        # A retry copy is a new message (the original is completed), so its broker id
        # must differ from the original's or duplicate detection would drop it; and from the
        # copy another subscription sends of the same notice (two flows take `product`
        # notices), so the copy's id names the subscription it is for.
        message_id = self.id if self.attempt == 1 else f"{self.id}.a{self.attempt}"
        if self.waited:  # a wait copy keeps its attempt: its total wait keeps its id distinct
            message_id += f".w{self.waited}"
        if self.replay_to and message_id != self.id:
            message_id = f"{self.id}.{self.replay_to}{message_id[len(self.id) :]}"
        return OutgoingMessage(
            body=body.encode("utf-8"),
            message_id=message_id,
            application_properties=props,
            subject=f"{n.system}/{n.entity}/{n.operation}",
            content_type=CLOUDEVENTS_CONTENT_TYPE,
            correlation_id=self.id,
        )

    @classmethod
    def from_body(cls, body: bytes | str) -> Envelope:
        """Parse a message body; raise EnvelopeError naming the problem."""
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EnvelopeError(f"message body is not JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise EnvelopeError("message body must be a JSON object (CloudEvents structured mode)")
        if raw.get("specversion") != "1.0":
            raise EnvelopeError(f"specversion must be '1.0', got {raw.get('specversion')!r}")
        event_type = raw.get("type")
        expected_type = f"{EVENT_TYPE_PREFIX}.v{SCHEMA_VERSION}"
        if event_type != expected_type:
            raise EnvelopeError(f"type must be {expected_type!r}, got {event_type!r}")
        if raw.get("schemaversion") != SCHEMA_VERSION:
            raise EnvelopeError(
                f"schemaversion {raw.get('schemaversion')!r} is not supported (expected {SCHEMA_VERSION})"
            )
        for required in ("id", "source", "data"):
            if required not in raw:
                raise EnvelopeError(f"missing CloudEvents attribute {required!r}")
        data = raw["data"]
        if not isinstance(data, dict):
            raise EnvelopeError("'data' must be a JSON object")
        try:
            notice = ChangeNotice.model_validate({**data, "source": raw["source"]})
            return cls(
                notice=notice,
                id=str(raw["id"]),
                attempt=raw.get("attempt", 1),
                replay_to=raw.get("replayto"),
                waited=raw.get("waited", 0),
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EnvelopeError(f"data.{where}: {first['msg']}") from exc


def now_utc() -> datetime:
    return datetime.now(UTC)


def notices_in_chunks(
    system: System,
    entity: str,
    ids: list[str],
    *,
    per_notice: int,
    version: str,
    source: str,
    origin: Literal["webhook", "poller", "backfill", "resubmit", "reconcile", "test"],
    observed_at: datetime,
) -> list[Envelope]:
    """Change notices of `ids`, `per_notice` ids each, all of one version (a backfill run, a
    flow asking another to sync records it needs)."""
    return [
        Envelope.wrap(
            ChangeNotice(
                system=system,
                entity=entity,
                ids=tuple(ids[start : start + per_notice]),
                operation="changed",
                observed_at=observed_at,
                source=source,
                origin=origin,
                version=version,
            )
        )
        for start in range(0, len(ids), per_notice)
    ]
