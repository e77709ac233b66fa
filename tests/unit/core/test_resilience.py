"""The error table and retry timing."""

import random

import httpx
import pytest

from shared.brightpearl.errors import BrightpearlThrottled, BrightpearlValidationError
from shared.dataverse.errors import DataverseNotFound, DataverseThrottled
from shared.events import EnvelopeError
from shared.outcomes import Completed, DeadLetter, RetryLater
from shared.resilience import Action, BackoffPolicy, classify, outcome_for_error


@pytest.mark.parametrize(
    ("error", "action", "reason"),
    [
        (BrightpearlThrottled("cap", retry_after=42), Action.RETRY_AFTER_THROTTLE, "BrightpearlThrottled"),
        (BrightpearlValidationError("bad"), Action.DEAD_LETTER, "BrightpearlRejected"),
        (DataverseThrottled("429", retry_after=5), Action.RETRY_AFTER_THROTTLE, "DataverseThrottled"),
        (DataverseNotFound("gone"), Action.IGNORE, "DataverseRecordMissing"),
        (EnvelopeError("x"), Action.DEAD_LETTER, "MalformedMessage"),
        (httpx.ConnectError("refused"), Action.RETRY, "NetworkError"),
        (httpx.ReadTimeout("slow"), Action.RETRY, "NetworkTimeout"),
    ],
)
def test_each_error_resolves_to_one_action(error, action, reason):
    verdict = classify(error)
    assert verdict.action is action and verdict.reason == reason
    assert verdict.fix


def test_unknown_errors_are_not_guessed():
    assert classify(KeyError("bug")) is None
    with pytest.raises(KeyError):
        outcome_for_error(KeyError("bug"), "Brightpearl contact 1")


def test_outcomes_carry_server_delay_and_operator_text():
    retry = outcome_for_error(BrightpearlThrottled("cap", retry_after=42), "Brightpearl contact 7")
    assert isinstance(retry, RetryLater) and retry.delay == 42 and "contact 7" in retry.error
    dead = outcome_for_error(BrightpearlValidationError("lastName is required"), "Brightpearl contact 7")
    assert isinstance(dead, DeadLetter)
    assert "lastName is required" in dead.description and "contact 7" in dead.description
    assert isinstance(outcome_for_error(DataverseNotFound("gone"), "Dataverse contact x"), Completed)


def test_backoff_grows_is_jittered_capped_and_honours_the_server():
    policy = BackoffPolicy(max_attempts=10, base_delay=10, max_delay=300, jitter_ratio=0.2)
    rng = random.Random(7)
    delays = [policy.delay(a, rng=rng) for a in range(1, 9)]
    for attempt, delay in enumerate(delays[:5], start=1):
        nominal = 10 * 2 ** (attempt - 1)
        assert 0.8 * nominal <= delay <= min(1.2 * nominal, 300)
    assert delays[1] > delays[0] and delays[3] > delays[2]
    assert all(d <= 300 for d in delays) and delays[-1] == 300
    # jitter: two runs differ
    other = [policy.delay(a, rng=random.Random(8)) for a in range(1, 5)]
    assert other != delays[:4]
    # the server's delay wins when longer, even above the cap
    assert policy.delay(1, server_delay=45, rng=rng) == 45
    assert policy.delay(1, server_delay=900, rng=rng) == 900
    assert policy.exhausted(10) and not policy.exhausted(9)
