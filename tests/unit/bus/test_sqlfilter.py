"""The Service Bus SQL filter subset: parsing, three-valued logic, errors with positions."""

from __future__ import annotations

import pytest

from shared.bus.sqlfilter import FilterEvaluationError, FilterSyntaxError, compile_filter
from shared.bus.topology import load_topology

NO_SYS: dict[str, object] = {}


def match(sql: str, props: dict | None = None, system: dict | None = None) -> bool:
    return compile_filter(sql).matches(props or {}, system or NO_SYS)


def test_rules_of_the_real_topology_route_by_entity_and_replay_to() -> None:
    topo = load_topology()
    sub = topo.topic("dataverse-changes").subscription("customers-to-brightpearl")
    rule = compile_filter(sub.rule.sql_filter)
    assert rule.matches({"entity": "contact"}, NO_SYS)
    assert rule.matches({"entity": "account"}, NO_SYS)
    assert not rule.matches({"entity": "product"}, NO_SYS)
    assert rule.matches({"entity": "contact", "replay_to": "customers-to-brightpearl"}, NO_SYS)
    assert not rule.matches({"entity": "contact", "replay_to": "orders-to-brightpearl"}, NO_SYS)
    assert not rule.matches({}, NO_SYS)


def test_missing_property_is_unknown_and_unknown_never_matches() -> None:
    assert compile_filter("color = 'red'").evaluate({}, NO_SYS) is None
    assert not match("color = 'red'")
    assert not match("NOT (color = 'red')")  # NOT unknown is still unknown
    assert not match("color <> 'red'")
    assert match("color IS NULL")
    assert not match("color IS NOT NULL")
    assert match("color IS NOT NULL", {"color": "red"})
    assert match("color = 'red' OR size > 3", {"size": 4})  # unknown OR true = true
    assert not match("color = 'red' AND size > 3", {"size": 4})  # unknown AND true = unknown
    assert compile_filter("color = 'red' AND size > 3").evaluate({"size": 1}, NO_SYS) is False


def test_in_and_not_in_with_unknowns() -> None:
    assert match("entity IN ('contact', 'account')", {"entity": "account"})
    assert not match("entity IN ('contact', 'account')", {"entity": "product"})
    assert match("entity NOT IN ('contact', 'account')", {"entity": "product"})
    assert not match("entity NOT IN ('contact')")  # missing property: unknown
    assert compile_filter("entity NOT IN ('contact')").evaluate({}, NO_SYS) is None
    assert match("n IN (1, 2.5, 3)", {"n": 2.5})


def test_exists_distinguishes_absent_from_present_null() -> None:
    assert match("EXISTS(replay_to)", {"replay_to": None})
    assert not match("EXISTS (replay_to)")
    assert match("NOT EXISTS(replay_to)")


def test_like_wildcards_escape_and_negation() -> None:
    assert match("subject LIKE 'bright%'", {"subject": "brightpearl/contact"})
    assert match("code LIKE 'A_C'", {"code": "ABC"})
    assert not match("code LIKE 'A_C'", {"code": "ABBC"})
    assert match("code LIKE '100!%' ESCAPE '!'", {"code": "100%"})
    assert not match("code LIKE '100!%' ESCAPE '!'", {"code": "1000"})
    assert match("code NOT LIKE 'x%'", {"code": "abc"})
    assert match("code LIKE 'a.c'", {"code": "a.c"})
    assert not match("code LIKE 'a.c'", {"code": "abc"})  # '.' is literal, not a regex dot


def test_comparisons_literals_and_quoting() -> None:
    assert match("name = 'O''Brien'", {"name": "O'Brien"})
    assert match("qty >= 10 AND qty < 10.5", {"qty": 10})
    assert match("qty != 3 AND qty <> 4", {"qty": 5})
    assert match("price <= 1e2", {"price": 100.0})
    assert match("flag = TRUE", {"flag": True})
    assert not match("flag = false", {"flag": True})
    assert match("name > 'a'", {"name": "b"})


def test_keywords_are_case_insensitive_and_names_can_be_delimited() -> None:
    assert match("entity in ('contact') and not (x is not null)", {"entity": "contact"})
    assert match("[order] = 1 AND [odd]]name] = 2", {"order": 1, "odd]name": 2})
    assert match('"with space" = 1', {"with space": 1})
    assert match("user.entity = 'contact'", {"entity": "contact"})


def test_system_properties_need_the_sys_prefix() -> None:
    system = {
        "MessageId": "m-1",
        "CorrelationId": "c-9",
        "Label": "brightpearl/contact/updated",
        "To": "flows",
        "ContentType": "application/json",
    }
    assert match("sys.MessageId = 'm-1' AND sys.CorrelationId = 'c-9'", {}, system)
    assert match("sys.Label LIKE 'brightpearl/%' AND sys.subject = sys.label", {}, system)
    assert match("sys.To = 'flows' AND sys.ContentType = 'application/json'", {}, system)
    assert not match("MessageId = 'm-1'", {}, system)  # without sys. it is a user property
    assert match("sys.ReplyTo IS NULL", {}, system)


def test_arithmetic_and_precedence() -> None:
    assert match("a + 2 * 3 = 7", {"a": 1})
    assert match("(a + 2) * 3 = 9", {"a": 1})
    assert match("-a = 5", {"a": -5})
    assert match("7 / 2 = 3 AND 7 % 3 = 1 AND 7.0 / 2 = 3.5")
    # AND binds tighter than OR
    assert match("a = 1 OR b = 1 AND c = 1", {"a": 1, "b": 0, "c": 0})
    assert not match("(a = 1 OR b = 1) AND c = 1", {"a": 1, "b": 0, "c": 0})


@pytest.mark.parametrize(
    ("sql", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("a = ", 4, "expected a value"),
        ("a = 'unterminated", 4, "unterminated"),
        ("a == 1", 3, "expected a value"),
        ("entity IN 'contact'", 10, "'(' after IN"),
        ("entity IN ('a', 'b'", 19, "')' to close the IN list"),
        ("a IS 1", 5, "NULL after IS"),
        ("sys.Colour = 'x'", 4, "unknown system property"),
        ("foo.bar = 1", 3, "unknown property scope"),
        ("a = 1 b = 2", 6, "unexpected 'b'"),
        ("entity", 0, "expected a condition"),
        ("a = 1 AND 5", 10, "expected a condition"),
        ("a LIKE b", 7, "string pattern"),
        ("a LIKE 'x' ESCAPE 'ab'", 18, "exactly one character"),
        ("a = 1 ; DROP", 6, "unexpected character ';'"),
        ("EXISTS(1)", 7, "EXISTS needs a property"),
    ],
)
def test_syntax_errors_name_the_position_and_the_problem(sql: str, position: int, fragment: str) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        compile_filter(sql)
    assert info.value.position == position
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("sql", "props"),
    [
        ("qty = 'ten'", {"qty": 10}),
        ("name > 3", {"name": "x"}),
        ("flag < TRUE", {"flag": False}),
        ("qty LIKE '1%'", {"qty": 10}),
        ("qty / 0 = 1", {"qty": 10}),
        ("name + 1 = 2", {"name": "x"}),
    ],
)
def test_type_errors_raise_filter_evaluation_error(sql: str, props: dict) -> None:
    with pytest.raises(FilterEvaluationError):
        compile_filter(sql).matches(props, NO_SYS)


def test_each_filter_text_is_compiled_once() -> None:
    text = "entity = 'compiled-once'"
    assert compile_filter(text) is compile_filter(text)
