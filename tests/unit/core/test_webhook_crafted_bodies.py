"""Crafted bodies never make either webhook answer 500: each gets a 4xx with an error code and
publishes nothing (explicit cases from the outside review, then hypothesis-generated ones)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import functions.ingress_dataverse as ingress_dataverse
from functions import ingress
from shared import runtime
from shared.brightpearl.webhook import BODY_TEMPLATE_FIELDS
from shared.settings import load_settings
from tests.unit.core.test_ingress import VALUES, HealthyStore, RecordingPublisher, delivery
from tests.unit.dataverse.test_ingress_dataverse import SECRET as DV_SECRET
from tests.unit.dataverse.test_ingress_dataverse import settings as dataverse_settings

SAMPLE = json.loads((Path(__file__).parents[1] / "dataverse" / "samples" / "update_contact.json").read_text())
DEEP = b"[" * 1000 + b"]" * 1000
HUGE_INT = b"9" * 4301


class RecordingAudit:
    def __init__(self) -> None:
        self.entries: list[Any] = []

    def record_many(self, entries: Any) -> list[Any]:
        self.entries += list(entries)
        return self.entries


class RecordingStore(HealthyStore):
    def __init__(self) -> None:
        self.audit = RecordingAudit()


@contextlib.contextmanager
def recording() -> Iterator[RecordingPublisher]:
    publisher = RecordingPublisher()
    app_settings = load_settings(dict(VALUES))
    previous = ingress_dataverse.publisher_factory
    ingress_dataverse.publisher_factory = lambda _settings: publisher
    try:
        with runtime.override(settings=app_settings, publisher=publisher, state_store=RecordingStore()):
            yield publisher
    finally:
        ingress_dataverse.publisher_factory = previous


def post_brightpearl(body: bytes) -> tuple[int, dict[str, Any]]:
    req = func.HttpRequest(
        "POST",
        "http://127.0.0.1:7071/api/webhooks/brightpearl",
        headers={"content-type": "application/json"},
        body=body,
    )
    response = ingress.brightpearl_webhook(req)
    return response.status_code, json.loads(response.get_body() or b"{}")


def post_dataverse(body: bytes) -> tuple[int, dict[str, Any]]:
    req = func.HttpRequest(
        "POST",
        "http://127.0.0.1:7071/api/webhooks/dataverse",
        headers={"content-type": "application/json", "x-bpi-webhook-secret": DV_SECRET},
        body=body,
    )
    response = ingress_dataverse.handle(req, dataverse_settings(WEBHOOK_MAX_BODY_BYTES="300000"))
    return response.status_code, json.loads(response.get_body() or b"{}")


def assert_rejected(answer: tuple[int, dict[str, Any]], publisher: RecordingPublisher) -> None:
    status, body = answer
    assert 400 <= status < 500, (status, body)
    assert body.get("error") and body.get("message")
    assert publisher.sent == []


def assert_no_server_error(answer: tuple[int, dict[str, Any]], publisher: RecordingPublisher) -> None:
    status, body = answer
    if status == 202:  # a valid delivery: published, or audited as ignored (no flow consumes it)
        assert len(publisher.sent) == (0 if body.get("ignored") else 1)
        publisher.sent.clear()
    else:
        assert_rejected(answer, publisher)


def bp_body(**overrides: Any) -> bytes:
    return json.dumps(delivery(**overrides)).encode()


def dv_body(**overrides: Any) -> bytes:
    return json.dumps({**SAMPLE, **overrides}).encode()


BRIGHTPEARL_CASES = {
    "nested 1000 levels": b'{"secret": ' + DEEP + b"}",
    "nested 1000 levels, right secret": bp_body()[:-1] + b', "deep": ' + DEEP + b"}",
    "integer of 4301 digits": b'{"id": ' + HUGE_INT + b"}",
    "integer of 4301 digits, right secret": bp_body()[:-1] + b', "n": ' + HUGE_INT + b"}",
    "lone surrogate in the secret": bp_body(secret="\ud800"),
    "lone surrogate in a key": bp_body()[:-1] + b', "\\udfff": 1}',
    "raisedOn past the year 9999 in UTC": bp_body(raisedOn="9999-12-31T23:59:59-01:00"),
    "raisedOn before the year 1 in UTC": bp_body(raisedOn="0001-01-01T00:00:00+01:00"),
    "NaN": bp_body()[:-1] + b', "n": NaN}',
    "float overflow": bp_body()[:-1] + b', "n": 1e999}',
    "not UTF-8": b'{"secret": "\xff"}',
    "Arabic-Indic digits in the id set": bp_body(id="\u0661\u0662\u0663"),
}

DATAVERSE_CASES = {
    "nested 1000 levels": DEEP,
    "nested 1000 levels inside a valid context": dv_body()[:-1] + b', "Deep": ' + DEEP + b"}",
    "integer of 4301 digits": dv_body()[:-1] + b', "N": ' + HUGE_INT + b"}",
    "lone surrogate": dv_body(MessageName="\udc00"),
    "date past the year 9999": dv_body(OperationCreatedOn="/Date(253402300800000)/"),
    "date of 4301 digits": dv_body(OperationCreatedOn="/Date(" + "9" * 4301 + ")/"),
    "date with a trailing newline": dv_body(OperationCreatedOn="/Date(1506409448000)/\n"),
    "date with Arabic-Indic digits": dv_body(OperationCreatedOn="/Date(\u0661\u0662\u0663)/"),
    "Depth of 4301 digits": dv_body()[:-1].replace(b'"Depth": 1', b'"Depth": ' + HUGE_INT) + b"}",
}


@pytest.mark.parametrize("body", BRIGHTPEARL_CASES.values(), ids=BRIGHTPEARL_CASES.keys())
def test_crafted_brightpearl_bodies_get_a_4xx_and_publish_nothing(body):
    with recording() as publisher:
        assert_rejected(post_brightpearl(body), publisher)


@pytest.mark.parametrize("body", DATAVERSE_CASES.values(), ids=DATAVERSE_CASES.keys())
def test_crafted_dataverse_bodies_get_a_4xx_and_publish_nothing(body):
    with recording() as publisher:
        assert_rejected(post_dataverse(body), publisher)


def test_the_checks_name_the_problem():
    with recording():
        assert "nests deeper" in post_brightpearl(BRIGHTPEARL_CASES["nested 1000 levels"])[1]["message"]
        assert "'secret'" in post_brightpearl(BRIGHTPEARL_CASES["lone surrogate in the secret"])[1]["message"]
        out_of_range = post_brightpearl(BRIGHTPEARL_CASES["raisedOn past the year 9999 in UTC"])[1]
        assert out_of_range["error"] == "InvalidField" and "raisedOn" in out_of_range["message"]
        date = post_dataverse(DATAVERSE_CASES["date past the year 9999"])[1]["message"]
        assert "OperationCreatedOn" in date and "out of range" in date


# -- generated ------------------------------------------------------------------------------
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec=None)),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.builds(
    timezone,
    st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)),
)
raised_on = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    offsets,
)
ms_dates = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(lambda ms: f"/Date({ms})/"),
    st.from_regex(r"/Date\([-0-9\u0660-\u0669]{1,30}([+-][0-9]{4})?\)/\n?", fullmatch=True),
)
crafted = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@crafted
@given(
    overrides=st.dictionaries(
        st.sampled_from([*BODY_TEMPLATE_FIELDS, "extra"]),
        json_values | raised_on | st.from_regex(r"[0-9\u0660-\u0669,.\- ]{1,20}", fullmatch=True),
        max_size=3,
    )
)
def test_generated_brightpearl_bodies_never_get_a_5xx(overrides):
    with recording() as publisher:
        assert_no_server_error(post_brightpearl(bp_body(**overrides)), publisher)


@crafted
@given(body=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_never_get_a_5xx_from_either_webhook(body):
    with recording() as publisher:
        assert_no_server_error(post_brightpearl(body), publisher)
        assert_no_server_error(post_dataverse(body), publisher)


@crafted
@given(
    overrides=st.dictionaries(
        st.sampled_from(
            [
                "MessageName",
                "PrimaryEntityName",
                "PrimaryEntityId",
                "OrganizationId",
                "InitiatingUserId",
                "OperationCreatedOn",
                "Depth",
                "InputParameters",
                "OperationId",
            ]
        ),
        json_values | ms_dates,
        max_size=3,
    )
)
def test_generated_dataverse_contexts_never_get_a_5xx(overrides):
    with recording() as publisher:
        assert_no_server_error(post_dataverse(dv_body(**overrides)), publisher)


# -- lenient parsing made strict --------------------------------------------------------------
def test_id_sets_take_ascii_digits_only():
    from shared.brightpearl.idset import IdSetError, parse_id_set

    assert parse_id_set("1-3,7") == [1, 2, 3, 7]
    for text in ("\u0661\u0662\u0663", "1-\u0663", "\uff11\uff12"):  # Arabic-Indic, fullwidth digits
        with pytest.raises(IdSetError, match="is not an id"):
            parse_id_set(text)


def test_ms_dates_must_be_the_whole_value_in_ascii_digits():
    from shared.dataverse.webhook import parse_ms_date

    assert parse_ms_date("/Date(1506409448000-0700)/").year == 2017
    for text in ("/Date(1506409448000)/\n", "/Date(\u0661\u0662\u0663)/", "/Date(253402300800000)/"):
        with pytest.raises(ValueError, match=r"must look like|out of range"):
            parse_ms_date(text)


@pytest.mark.parametrize(
    ("content_type", "json_ok"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Text/JSON", True),
        (None, True),
        ("application/x-notjson", False),
        ("application/jsonp", False),
        ("text/plain; note=json", False),
    ],
)
def test_json_content_types_are_matched_exactly(content_type, json_ok):
    from shared.jsonbody import is_json_media_type

    assert is_json_media_type(content_type) is json_ok
