"""Sync one record now, by id, from either side (`syncctl sync <entity> --from <system> <id>`).

Publishes the change notice a webhook would have sent for the record (one id, operation
`changed`) to the topic of the flows reading that system, so the flows do the work exactly as
for a live change. Its version is unique per request, so the broker's duplicate detection never
drops it and an earlier dead letter of the same record version does not swallow it either.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events import ChangeNotice, Envelope
from shared.ops.records import RecordInputError, RecordRef
from shared.sync.spec import SYSTEM_TITLES


@dataclass(frozen=True)
class SyncRequest:
    """The notice published for a record: its message id, the topic setting and the flows it reaches."""

    record: RecordRef
    message_id: str
    envelope_id: str
    topic_setting: str
    flows: tuple[str, ...]
    notice_entity: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "record": {"system": self.record.system, "type": self.record.name, "id": self.record.record_id},
            "messageId": self.message_id,
            "envelopeId": self.envelope_id,
            "topicSetting": self.topic_setting,
            "flows": list(self.flows),
            "noticeEntity": self.notice_entity,
        }


def sync_notice(ref: RecordRef, *, source: str, now: datetime, actor: str = "syncctl") -> Envelope:
    """The change notice a webhook would send for `ref` (unique per request)."""
    if not ref.reading_flows:
        targets = sorted({f.target for f in ref.flows} | {f.source for f in ref.flows} - {ref.system})
        masters = " or ".join(f"--from {t}" for t in targets) or "another system"
        raise RecordInputError(
            f"no flow reads {ref.name} records from {SYSTEM_TITLES[ref.system]}: "
            f"{SYSTEM_TITLES[ref.system]} only receives them; sync them {masters}"
        )
    notice = ChangeNotice(
        system=ref.system,
        entity=ref.notice_entity,
        ids=(ref.record_id,),
        operation="changed",
        observed_at=now,
        source=source,
        origin="backfill",
        version=f"sync:{now.isoformat()}:{uuid.uuid4().hex[:8]}",  # unique even at the same instant
        detail={"requested_by": actor[:64]},
    )
    return Envelope.wrap(notice)


def request_sync(
    ref: RecordRef,
    *,
    publish: Callable[[str, list[Envelope]], None],
    source: str,
    now: datetime,
    actor: str = "syncctl",
) -> SyncRequest:
    """Publish the notice for `ref` through `publish(topic_setting, envelopes)`."""
    envelope = sync_notice(ref, source=source, now=now, actor=actor)
    flows = ref.reading_flows
    setting = flows[0].topic_setting
    publish(setting, [envelope])
    return SyncRequest(
        record=ref,
        message_id=envelope.to_message().message_id,
        envelope_id=envelope.id,
        topic_setting=setting,
        flows=tuple(f.name for f in flows),
        notice_entity=envelope.notice.entity,
    )


def runtime_publish(topic_setting: str, envelopes: list[Envelope]) -> None:
    """Publish through this process's bus (shared.runtime), to the topic the setting names."""
    from shared import runtime

    runtime.publisher_to(topic_setting)(envelopes)


def runtime_source(system: str) -> str:
    """The `source` a webhook of `system` gives its notices (as the backfill does)."""
    from shared import runtime

    if system == "brightpearl":
        return f"/brightpearl/{runtime.settings().brightpearl.account}"
    return runtime.dataverse_source()
