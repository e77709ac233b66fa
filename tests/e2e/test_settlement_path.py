"""The real trigger path for each settlement case: local host -> flow trigger -> settlement -> bus."""

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sandbox.host import LocalHost
from shared import runtime
from shared.bus.local import LocalBus
from shared.events import ChangeNotice, Envelope
from shared.settings import load_settings
from tests.e2e.apps import recorder as script

ROOT = Path(__file__).resolve().parents[2]
TOPIC, SUB = "brightpearl-changes", "customers-to-dataverse"


class FakeClock:
    def __init__(self):
        self._now = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            return self._now

    def advance(self, seconds: float):
        with self._lock:
            self._now += timedelta(seconds=seconds)


class SchedulingRecorder:
    """The bus publisher, recording the delay of each scheduled retry copy."""

    def __init__(self, bus, clock):
        self.bus, self.clock, self.delays, self.copies = bus, clock, [], []

    def publish(self, topic, messages):
        self.bus.publish(topic, messages)

    def publish_scheduled(self, topic, messages, enqueue_at):
        self.delays.append((enqueue_at - self.clock()).total_seconds())
        self.copies.extend(messages)
        self.bus.publish_scheduled(topic, messages, enqueue_at)

    def check(self):
        self.bus.check()

    def close(self):
        pass


@pytest.fixture
def sandbox(tmp_path):
    values = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    values.update(
        LOCAL_BUS_PATH=str(tmp_path / "bus.sqlite3"),
        RETRY_MAX_ATTEMPTS="5",
        RETRY_BASE_DELAY_SECONDS="10",
        RETRY_MAX_DELAY_SECONDS="30",
        RETRY_JITTER_RATIO="0.2",
        # no batch gathering (host.json waits up to 5 s of real time for 10 messages)
        AzureFunctionsJobHost__extensions__serviceBus__minMessageBatchSize="1",
    )
    clock = FakeClock()
    bus = LocalBus(tmp_path / "bus.sqlite3", clock=clock)
    recorder = SchedulingRecorder(bus, clock)
    script.SEEN.clear()
    with runtime.override(settings=load_settings(values), publisher=recorder, clock=clock):
        host = LocalHost("tests.e2e.apps.scripted_flow_app", settings=values, bus=bus, port=0, clock=clock,
                         project_root=ROOT, poll_interval=0.02)
        with host:
            yield host, bus, clock, recorder
    bus.close()


def send(bus, record_id: str):
    notice = ChangeNotice(
        system="brightpearl", entity="contact", ids=(record_id,), operation="updated",
        observed_at=datetime(2026, 11, 1, 11, 59, tzinfo=UTC), source="/brightpearl/sandbox",
        version=record_id,
    )
    bus.publish(TOPIC, [Envelope.wrap(notice).to_message()])


def attempts(record):
    return [a for r, a in script.SEEN if r == record]


def test_completed(sandbox):
    host, bus, _, _ = sandbox
    send(bus, "ok")
    host.wait_idle()
    counts = bus.counts(TOPIC, SUB)
    assert attempts("ok") == [1]
    assert (counts.active, counts.scheduled, counts.dead_letter) == (0, 0, 0)


def test_dead_letter_with_reason_and_description(sandbox):
    host, bus, _, _ = sandbox
    send(bus, "poison")
    host.wait_idle()
    [dead] = bus.peek_dead_letters(TOPIC, SUB)
    assert dead.dead_letter_reason == "InvalidEmail"
    assert "Brightpearl contact poison" in dead.dead_letter_error_description
    assert attempts("poison") == [1]


def test_retry_copy_is_delivered_later_and_completes(sandbox):
    host, bus, clock, recorder = sandbox
    send(bus, "flaky")
    host.wait_idle()
    assert bus.counts(TOPIC, SUB).scheduled == 1
    [copy] = recorder.copies
    assert copy.application_properties["replay_to"] == SUB and copy.application_properties["attempt"] == 2
    clock.advance(recorder.delays[0] + 1)
    host.wait_idle()
    assert attempts("flaky") == [1, 2]
    counts = bus.counts(TOPIC, SUB)
    assert (counts.active, counts.scheduled, counts.dead_letter) == (0, 0, 0)


def test_retries_grow_with_jitter_are_capped_then_exhausted(sandbox):
    host, bus, clock, recorder = sandbox
    send(bus, "down")
    host.wait_idle()
    for _ in range(4):
        assert bus.counts(TOPIC, SUB).scheduled == 1
        clock.advance(recorder.delays[-1] + 1)
        host.wait_idle()
    assert attempts("down") == [1, 2, 3, 4, 5]
    d1, d2, d3, d4 = recorder.delays
    assert 8 <= d1 <= 12 and 16 <= d2 <= 24  # base 10 * 2^(n-1), +/- 20 %
    assert d1 < d2 < d3 and d3 == d4 == 30  # capped at RETRY_MAX_DELAY_SECONDS
    assert (d1, d2) != (10, 20)  # jittered, not nominal
    [dead] = bus.peek_dead_letters(TOPIC, SUB)
    assert dead.dead_letter_reason == "RetriesExhausted"
    assert "5 attempts" in dead.dead_letter_error_description
    assert "account 42 does not exist in Dataverse yet" in dead.dead_letter_error_description
    assert bus.counts(TOPIC, SUB).scheduled == 0


def test_server_given_delay_is_honoured_over_the_cap(sandbox):
    host, bus, _, recorder = sandbox
    send(bus, "throttled")
    host.wait_idle()
    assert recorder.delays == [600]


def test_unexpected_exception_abandons_until_max_delivery_count(sandbox):
    host, bus, _, _ = sandbox
    send(bus, "boom")
    host.wait_idle(timeout=30)
    [dead] = bus.peek_dead_letters(TOPIC, SUB)
    assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    assert attempts("boom") == [1] * 10  # the topology's maxDeliveryCount, no retry copies
    assert bus.counts(TOPIC, SUB).scheduled == 0
