"""Timer triggers: NCRONTAB schedules on the host's clock, past-due runs, run on startup, no overlap."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import azure.functions as func
import httpx
import pytest

from sandbox.host import HostConfigError
from tests.unit.host.conftest import FUNCTION_KEY, MASTER_KEY, base_settings

APP = "tests.unit.host.apps.timer_app"


def wait_for(condition, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def runs(host, name: str) -> list[func.TimerRequest]:
    return [request for function, request in host.module.RUNS if function == name]


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 11, 28, hour, minute, second, tzinfo=UTC)


def test_timer_runs_on_its_schedule_and_reports_missed_runs_as_past_due(make_host, clock):
    with make_host(APP, clock=clock) as host:  # clock at 12:00:01; schedule every 5 minutes
        time.sleep(0.2)  # many polls: nothing is due before 12:05
        assert runs(host, "poll") == []

        clock.set(at(12, 5))
        wait_for(lambda: len(runs(host, "poll")) == 1, "the 12:05 run")
        on_time = runs(host, "poll")[0]
        assert isinstance(on_time, func.TimerRequest)
        assert on_time.past_due is False
        assert on_time.schedule_status["Next"] == at(12, 10).isoformat()

        host.wait_idle()  # the run is over and 12:10 is armed
        clock.set(at(12, 31))  # 12:10 ... 12:30 were missed: one run, flagged past due
        wait_for(lambda: len(runs(host, "poll")) == 2, "the catch-up run")
        time.sleep(0.2)
        assert len(runs(host, "poll")) == 2
        assert runs(host, "poll")[1].past_due is True
        assert runs(host, "poll")[1].schedule_status["Last"] == at(12, 5).isoformat()


def test_run_on_startup_and_run_timer(make_host, clock):
    with make_host(APP, clock=clock) as host:
        wait_for(lambda: len(runs(host, "nightly")) == 1, "the start-up run")
        assert runs(host, "nightly")[0].past_due is False

        result = host.run_timer("poll")
        assert result.succeeded and result.function_name == "poll"
        [manual] = runs(host, "poll")
        assert manual.past_due is False
        with pytest.raises(KeyError):
            host.run_timer("nightly-typo")


def test_runs_of_one_timer_never_overlap(make_host, clock):
    host = make_host(APP, clock=clock)
    host.module.HOLD.clear()
    with host:
        clock.set(at(12, 5))
        wait_for(host.module.ENTERED.is_set, "the scheduled run to start")
        manual = threading.Thread(target=host.run_timer, args=("poll",))
        manual.start()
        time.sleep(0.2)
        assert host.module.STATE["current"] == 1  # the manual run waits for the scheduled one
        host.module.HOLD.set()
        manual.join(10)
        assert not manual.is_alive()

    assert len(runs(host, "poll")) == 2
    assert host.module.STATE["max"] == 1


def test_schedule_must_be_six_field_ncrontab(make_host):
    with pytest.raises(HostConfigError, match="6-field NCRONTAB"):
        make_host(APP, settings=base_settings(POLL_SCHEDULE="*/5 * * * *"))
    with pytest.raises(HostConfigError, match="not a valid NCRONTAB"):
        make_host(APP, settings=base_settings(POLL_SCHEDULE="0 */5 * * * funday"))


def test_schedule_setting_must_exist(make_host):
    settings = base_settings()
    del settings["POLL_SCHEDULE"]
    with pytest.raises(HostConfigError, match="'POLL_SCHEDULE' is not set"):
        make_host(APP, settings=settings)


def test_admin_api_runs_a_timer_function_with_the_master_key(make_host, clock):
    with make_host(APP, clock=clock) as host:
        url = f"{host.base_url}/admin/functions/poll"
        assert httpx.post(url).status_code == 401
        assert httpx.post(url, headers={"x-functions-key": FUNCTION_KEY}).status_code == 401
        assert runs(host, "poll") == []

        assert httpx.post(url, headers={"x-functions-key": MASTER_KEY}, json={"input": ""}).status_code == 202
        wait_for(lambda: len(runs(host, "poll")) == 1, "the admin run")
        assert runs(host, "poll")[0].past_due is False

        missing = httpx.post(f"{host.base_url}/admin/functions/nope", headers={"x-functions-key": MASTER_KEY})
        assert missing.status_code == 404
