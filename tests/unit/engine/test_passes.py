"""A flow with `records_per_pass` reads, decides and writes a large batch in passes, so a
backfill batch of 5,000 orders never holds all 5,000 at once; a failure in a later pass keeps
what the earlier passes wrote and retries only the notices of the records not yet written."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from shared.events import ChangeNotice, Envelope, now_utc
from shared.mapping.translation import Translation
from shared.outcomes import Completed, Outcome, RetryLater
from shared.sync.engine import PlainDecision, RecordSync, SyncRecord
from shared.sync.fakes import FakeBrightpearl, FakeDataverse, MemoryStateStore
from shared.sync.outcomes import BatchResults
from shared.sync.spec import FlowSpec
from shared.systems import System


class Thing(BaseModel):
    id: str


class Things(RecordSync[Thing]):
    """Reads things from a dict, writes them into `written`; `fail_on_read` names the read
    (1-based) that fails with a network error."""

    spec: ClassVar[FlowSpec] = FlowSpec(
        name="things-to-dataverse",
        source="brightpearl",
        target="dataverse",
        source_entities=("thing",),
        flow="tests:Things",
        record="thing",
        stamp_field="updatedOn",
    )
    link_entity = "thing"

    def __init__(self, per_pass: int | None, fail_on_read: int | None = None) -> None:
        super().__init__(
            brightpearl=FakeBrightpearl(), dataverse=FakeDataverse(), store=MemoryStateStore(), publish=list
        )
        self.records_per_pass = per_pass
        self.fail_on_read = fail_on_read
        self.reads: list[int] = []  # ids per read
        self.written: list[str] = []

    def fetch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        self.reads.append(len(ids))
        if self.fail_on_read == len(self.reads):
            raise httpx.ConnectError("connection refused")
        return {i: {"id": i} for i in ids}

    def to_canonical(self, system: System, record: dict[str, Any]) -> Translation[Thing]:
        return Translation(Thing(id=str(record["id"])))

    def match(self, records: list[SyncRecord[Thing]], results: BatchResults) -> None:
        pass  # every thing is new

    def decide_write(self, record: SyncRecord[Thing], current: Thing | None) -> PlainDecision[Thing]:
        return PlainDecision(record.read.value, "hash", should_write=True)

    def write(self, records: list[SyncRecord[Thing]], results: BatchResults) -> None:
        for r in self.to_write(records, results):
            self.written.append(r.source_id)
            r.target_id = f"dv-{r.source_id}"
            self.settle(r, results)


def envelopes(notices: int, ids_each: int) -> list[Envelope]:
    out = []
    for n in range(notices):
        ids = tuple(str(n * ids_each + i + 1) for i in range(ids_each))
        notice = ChangeNotice(
            system="brightpearl",
            entity="thing",
            ids=ids,
            operation="changed",
            source="/brightpearl/test",
            origin="backfill",
            observed_at=now_utc(),
            version=f"v{n}",
        )
        out.append(Envelope.wrap(notice))
    return out


def kinds(outcomes: list[Outcome]) -> list[str]:
    return [type(o).__name__ for o in outcomes]


def test_a_batch_of_25_notices_of_100_ids_is_read_and_written_1000_at_a_time() -> None:
    flow = Things(per_pass=1000)
    outcomes = flow.handle(envelopes(25, 100))
    assert flow.reads == [1000, 1000, 500]
    assert sorted(flow.written, key=int) == [str(i) for i in range(1, 2501)]
    assert all(isinstance(o, Completed) for o in outcomes)


def test_without_records_per_pass_the_whole_batch_is_one_read() -> None:
    flow = Things(per_pass=None)
    flow.handle(envelopes(25, 100))
    assert flow.reads == [2500]


def test_a_failed_second_pass_keeps_the_first_and_retries_only_the_notices_not_written() -> None:
    flow = Things(per_pass=1000, fail_on_read=2)
    outcomes = flow.handle(envelopes(25, 100))
    # the first 10 notices (ids 1-1000) were written in pass 1; the others wait for a retry
    assert flow.written == [str(i) for i in range(1, 1001)]
    assert kinds(outcomes) == ["Completed"] * 10 + ["RetryLater"] * 15
    retry = outcomes[10]
    assert isinstance(retry, RetryLater) and retry.reason == "NetworkError"
    assert flow.reads == [1000, 1000]  # no pass after the failed one: the service is not hammered


def test_a_failed_first_pass_retries_the_whole_batch_as_before() -> None:
    flow = Things(per_pass=1000, fail_on_read=1)
    outcomes = flow.handle(envelopes(25, 100))
    assert flow.written == []
    assert kinds(outcomes) == ["RetryLater"] * 25
