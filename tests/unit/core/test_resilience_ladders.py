"""Every class of both API error ladders resolves to its documented action, reason and fix,
and the retry policy takes each RETRY_* setting (guards for the table-driven ladder rules)."""

import pytest

from shared.brightpearl import errors as bp
from shared.dataverse import errors as dv
from shared.resilience import Action, BackoffPolicy, classify
from shared.settings import RetrySettings

RETRY, THROTTLE, REFRESH = Action.RETRY, Action.RETRY_AFTER_THROTTLE, Action.REFRESH_AUTH_THEN_RETRY
DEAD, IGNORE = Action.DEAD_LETTER, Action.IGNORE


@pytest.mark.parametrize(
    ("error", "action", "reason", "fix_starts"),
    [
        (bp.BrightpearlThrottled, THROTTLE, "BrightpearlThrottled", "Brightpearl's per-minute request cap"),
        (bp.BrightpearlAuthError, REFRESH, "BrightpearlAuthFailed", "Brightpearl rejected the credentials."),
        (bp.BrightpearlPreconditionFailed, RETRY, "BrightpearlStaleVersion", "The Brightpearl record"),
        (bp.BrightpearlUriTooLong, DEAD, "BrightpearlRejected", "Brightpearl rejected the write;"),
        (bp.BrightpearlNotFound, IGNORE, "BrightpearlRecordMissing", "The Brightpearl record no longer"),
        (bp.BrightpearlValidationError, DEAD, "BrightpearlRejected", "Brightpearl rejected the write;"),
        (bp.BrightpearlAmbiguousWrite, RETRY, "BrightpearlUnavailable", "Brightpearl answered 5xx"),
        (bp.BrightpearlUnavailable, RETRY, "BrightpearlUnavailable", "Brightpearl answered 5xx"),
        (bp.BrightpearlError, DEAD, "BrightpearlProtocolError", "Brightpearl answered in an unexpected"),
        (dv.DataverseThrottled, THROTTLE, "DataverseThrottled", "Dataverse service protection limits"),
        (dv.DataverseAuthError, REFRESH, "DataverseAuthFailed", "Dataverse rejected the token."),
        (dv.DataversePrivilegeError, REFRESH, "DataverseAuthFailed", "Dataverse rejected the token."),
        (dv.DataverseReferenceMissing, RETRY, "DataverseReferenceMissing", "A record this write refers to"),
        (dv.DataverseNotFound, IGNORE, "DataverseRecordMissing", "The Dataverse record no longer"),
        (dv.DataverseConcurrencyError, RETRY, "DataverseConcurrencyConflict", "The Dataverse record changed"),
        (dv.DataverseSchemaMissing, RETRY, "DataverseSchemaMissing", "The Dataverse environment lacks"),
        (dv.DataverseDuplicateError, DEAD, "DataverseRejected", "Dataverse rejected the write;"),
        (dv.DataverseValidationError, DEAD, "DataverseRejected", "Dataverse rejected the write;"),
        (dv.DataverseUnavailable, RETRY, "DataverseUnavailable", "Dataverse answered 5xx"),
        (dv.DataverseForeignLink, DEAD, "DataverseForeignLink", "A paging or delta link"),
        (dv.DataverseError, DEAD, "DataverseProtocolError", "Dataverse answered in an unexpected"),
    ],
)
def test_each_ladder_class_keeps_its_action_reason_and_fix(error, action, reason, fix_starts):
    verdict = classify(error("boom"))
    assert verdict is not None
    assert (verdict.action, verdict.reason) == (action, reason)
    assert verdict.fix.startswith(fix_starts)


def test_rejected_writes_say_what_their_message_names():
    assert classify(bp.BrightpearlValidationError("x")).fix == (
        "Brightpearl rejected the write; its message names the field. Fix the source record and resubmit."
    )
    assert classify(dv.DataverseValidationError("x")).fix == (
        "Dataverse rejected the write; its message names the column. Fix the source record and resubmit."
    )


def test_backoff_policy_takes_every_retry_setting():
    retry = RetrySettings.model_validate(
        {
            "RETRY_MAX_ATTEMPTS": "3",
            "RETRY_BASE_DELAY_SECONDS": "2",
            "RETRY_MAX_DELAY_SECONDS": "9",
            "RETRY_JITTER_RATIO": "0.1",
            "RETRY_OUTAGE_MAX_DELAY_SECONDS": "7",
            "RETRY_OUTAGE_GIVE_UP_SECONDS": "11",
        }
    )
    assert BackoffPolicy.from_settings(retry) == BackoffPolicy(
        max_attempts=3,
        base_delay=2.0,
        max_delay=9.0,
        jitter_ratio=0.1,
        outage_max_delay=7.0,
        outage_give_up=11.0,
    )
