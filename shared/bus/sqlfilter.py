"""Parses and evaluates the Service Bus SQL filter language (the subset subscription rules use).

Grammar (Service Bus "Subscription Rule SQL Filter Syntax", a SQL-92 subset):

    predicate  := NOT predicate | predicate AND predicate | predicate OR predicate
                | expr (= | <> | != | < | > | <= | >=) expr
                | property IS [NOT] NULL | expr [NOT] IN (expr, ...)
                | expr [NOT] LIKE pattern [ESCAPE 'c'] | EXISTS (property) | (predicate)
                | TRUE | FALSE
    expr       := constant | property | expr (+ | - | * | / | %) expr | (+ | -) expr | (expr)
    property   := [sys. | user.] name      name := identifier | [delimited] | "quoted"

Keywords are case-insensitive. A user property that is absent is NULL (unknown) and SQL
three-valued logic applies: a filter that evaluates to unknown does not match. System
properties need the `sys.` prefix; an unknown system property name is rejected when the
filter is compiled (the broker also treats it as an error). Comparing incompatible types
(a string with a number, a boolean with `<`) raises `FilterEvaluationError`, which the bus
turns into a dead-letter when the subscription has deadLetteringOnFilterEvaluationExceptions.

`compile_filter(text)` parses once; the returned `SqlFilter.matches(...)` is cheap.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Values a filter can see: application property values and system property values.
Value = str | int | float | bool | None

# Names accepted after `sys.` (case-insensitive) -> the canonical key of the system
# properties mapping the caller passes. `Label` is the classic name of `Subject`.
SYSTEM_PROPERTIES: dict[str, str] = {
    "messageid": "MessageId",
    "correlationid": "CorrelationId",
    "label": "Label",
    "subject": "Label",
    "to": "To",
    "replyto": "ReplyTo",
    "contenttype": "ContentType",
    "sessionid": "SessionId",
    "replytosessionid": "ReplyToSessionId",
}

_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ESCAPE", "EXISTS", "TRUE", "FALSE"}


class FilterSyntaxError(ValueError):
    """The filter text is not valid; names the position (0-based column) and the problem."""

    def __init__(self, text: str, position: int, problem: str):
        self.text = text
        self.position = position
        self.problem = problem
        pointer = f"{text}\n{' ' * position}^"
        super().__init__(f"SQL filter error at position {position}: {problem}\n{pointer}")


class FilterEvaluationError(Exception):
    """Evaluating a filter against one message failed (e.g. comparing a string with a number)."""


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class _Token:
    kind: str  # 'num', 'str', 'ident', 'kw', 'op', 'end'
    value: Any
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>'(?:[^']|'')*')
  | (?P<ident>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<bracket>\[(?:[^\]]|\]\])*\])
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<op><>|!=|<=|>=|[=<>+\-*/%(),.])
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            if text[pos] in "'\"[":
                raise FilterSyntaxError(text, pos, f"unterminated {text[pos]} ... literal or name")
            raise FilterSyntaxError(text, pos, f"unexpected character {text[pos]!r}")
        kind = match.lastgroup
        raw = match.group()
        if kind == "num":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(_Token("num", value, pos))
        elif kind == "str":
            tokens.append(_Token("str", raw[1:-1].replace("''", "'"), pos))
        elif kind == "ident":
            if raw.upper() in _KEYWORDS:
                tokens.append(_Token("kw", raw.upper(), pos))
            else:
                tokens.append(_Token("ident", raw, pos))
        elif kind == "bracket":
            tokens.append(_Token("ident", raw[1:-1].replace("]]", "]"), pos))
        elif kind == "quoted":
            tokens.append(_Token("ident", raw[1:-1].replace('""', '"'), pos))
        elif kind == "op":
            tokens.append(_Token("op", raw, pos))
        pos = match.end()
    tokens.append(_Token("end", None, len(text)))
    return tokens


# --------------------------------------------------------------------------- AST
# Every node compiles to a closure `(user_props, sys_props) -> value`. Predicates return
# True / False / None (unknown); expressions return a Value.
Evaluator = Callable[[Mapping[str, Value], Mapping[str, Value]], Any]


@dataclass(frozen=True)
class _Node:
    evaluate: Evaluator
    is_predicate: bool
    is_property: bool = False
    pos: int = 0
    property_ref: tuple[str, str] | None = None  # (scope, name) for EXISTS / IS NULL
    also_value: bool = False  # TRUE / FALSE are both a condition and a value


def _type_name(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def _is_number(value: Value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ORDER = {"<": operator.lt, ">": operator.gt, "<=": operator.le, ">=": operator.ge}


def _compare(op: str, left: Value, right: Value) -> bool | None:
    if left is None or right is None:
        return None
    if _is_number(left) and _is_number(right):
        pass
    elif isinstance(left, bool) and isinstance(right, bool):
        if op not in ("=", "<>", "!="):
            raise FilterEvaluationError(f"operator {op} cannot compare boolean values")
    elif isinstance(left, str) and isinstance(right, str):
        pass
    else:
        raise FilterEvaluationError(
            f"cannot compare {_type_name(left)} {left!r} with {_type_name(right)} {right!r}"
        )
    if op == "=":
        return left == right
    if op in ("<>", "!="):
        return left != right
    return bool(_ORDER[op](left, right))  # both numbers, or both text (checked above)


def _arith(op: str, left: Value, right: Value) -> Value:
    if left is None or right is None:
        return None
    if not (_is_number(left) and _is_number(right)):
        raise FilterEvaluationError(
            f"operator {op} needs numbers, got {_type_name(left)} and {_type_name(right)}"
        )
    assert isinstance(left, (int, float)) and isinstance(right, (int, float))
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        raise FilterEvaluationError(f"division by zero in operator {op}")
    if op == "/":
        if isinstance(left, int) and isinstance(right, int):
            return int(left / right)  # integer division truncates toward zero, as in SQL
        return left / right
    if isinstance(left, int) and isinstance(right, int):
        return int(left - right * int(left / right))
    return left % right


def _combine(a: bool | None, b: bool | None, decisive: bool) -> bool | None:
    """SQL's three-valued AND (`decisive` FALSE) and OR (`decisive` TRUE): a side with the
    decisive value decides; otherwise an unknown (NULL) side leaves the result unknown."""
    if a is decisive or b is decisive:
        return decisive
    if a is None or b is None:
        return None
    return not decisive


def _not(a: bool | None) -> bool | None:
    return None if a is None else not a


@functools.lru_cache(maxsize=256)
def _like_regex(pattern: str, escape: str | None) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape:
            if i + 1 >= len(pattern):
                raise FilterEvaluationError("LIKE pattern ends with the escape character")
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL)


# --------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # token helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def _advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, value: Any = None) -> bool:
        tok = self.tok
        return tok.kind == kind and (value is None or tok.value == value)

    def _accept(self, kind: str, value: Any = None) -> _Token | None:
        if self._is(kind, value):
            return self._advance()
        return None

    def _expect(self, kind: str, value: Any, what: str) -> _Token:
        if not self._is(kind, value):
            raise self._error(f"expected {what}, found {self._describe(self.tok)}")
        return self._advance()

    def _describe(self, tok: _Token) -> str:
        if tok.kind == "end":
            return "end of filter"
        if tok.kind == "str":
            return f"string '{tok.value}'"
        return repr(str(tok.value))

    def _error(self, problem: str, pos: int | None = None) -> FilterSyntaxError:
        return FilterSyntaxError(self.text, self.tok.pos if pos is None else pos, problem)

    # grammar
    def parse(self) -> _Node:
        if self._is("end"):
            raise self._error("the filter is empty")
        node = self._or()
        if not self._is("end"):
            raise self._error(f"unexpected {self._describe(self.tok)}")
        self._need_predicate(node)
        return node

    def _need_predicate(self, node: _Node) -> None:
        if not node.is_predicate:
            raise self._error("expected a condition (e.g. a comparison), found a value", node.pos)

    def _need_value(self, node: _Node) -> None:
        if node.is_predicate and not node.also_value:
            raise self._error("expected a value, found a condition", node.pos)

    def _or(self) -> _Node:
        return self._logical("OR", self._and, True)

    def _and(self) -> _Node:
        return self._logical("AND", self._not, False)

    def _logical(self, keyword: str, operand: Callable[[], _Node], decisive: bool) -> _Node:
        """A left-associative chain `a OR b OR ...` (or AND): the right side is not evaluated
        once the left alone decides (`decisive`: TRUE for OR, FALSE for AND)."""
        left = operand()
        while self._is("kw", keyword):
            pos = self._advance().pos
            right = operand()
            self._need_predicate(left)
            self._need_predicate(right)
            lf, rf = left.evaluate, right.evaluate

            def evaluate(
                u: Mapping[str, Value], s: Mapping[str, Value], lf: Evaluator = lf, rf: Evaluator = rf
            ) -> bool | None:
                a: bool | None = lf(u, s)
                if a is decisive:
                    return decisive
                return _combine(a, rf(u, s), decisive)

            left = _Node(evaluate, True, pos=pos)
        return left

    def _not(self) -> _Node:
        if self._is("kw", "NOT"):
            pos = self._advance().pos
            inner = self._not()
            self._need_predicate(inner)
            f = inner.evaluate
            return _Node(lambda u, s: _not(f(u, s)), True, pos=pos)
        return self._condition()

    def _condition(self) -> _Node:
        if self._is("kw", "EXISTS"):
            pos = self._advance().pos
            self._expect("op", "(", "'(' after EXISTS")
            prop = self._primary()
            if prop.property_ref is None:
                raise self._error("EXISTS needs a property name", prop.pos)
            self._expect("op", ")", "')' to close EXISTS")
            scope, name = prop.property_ref
            if scope == "sys":
                return _Node(lambda u, s: s.get(name) is not None, True, pos=pos)
            return _Node(lambda u, s: name in u, True, pos=pos)

        left = self._additive()
        tok = self.tok
        if tok.kind == "op" and tok.value in ("=", "<>", "!=", "<", ">", "<=", ">="):
            self._advance()
            right = self._additive()
            self._need_value(left)
            self._need_value(right)
            op, lf, rf = tok.value, left.evaluate, right.evaluate
            return _Node(lambda u, s: _compare(op, lf(u, s), rf(u, s)), True, pos=tok.pos)
        if self._is("kw", "IS"):
            self._advance()
            negate = self._accept("kw", "NOT") is not None
            self._expect("kw", "NULL", "NULL after IS [NOT]")
            if left.property_ref is None:
                raise self._error("IS [NOT] NULL needs a property name on its left", left.pos)
            f = left.evaluate
            if negate:
                return _Node(lambda u, s: f(u, s) is not None, True, pos=tok.pos)
            return _Node(lambda u, s: f(u, s) is None, True, pos=tok.pos)
        negate = False
        if (
            self._is("kw", "NOT")
            and self.tokens[self.i + 1].kind == "kw"
            and self.tokens[self.i + 1].value in ("IN", "LIKE")
        ):
            self._advance()
            negate = True
        if self._is("kw", "IN"):
            return self._in(left, negate)
        if self._is("kw", "LIKE"):
            return self._like(left, negate)
        return left

    def _in(self, left: _Node, negate: bool) -> _Node:
        pos = self._advance().pos
        self._need_value(left)
        self._expect("op", "(", "'(' after IN")
        items = [self._additive()]
        while self._accept("op", ","):
            items.append(self._additive())
        self._expect("op", ")", "')' to close the IN list")
        for item in items:
            self._need_value(item)
        lf = left.evaluate
        fs = tuple(item.evaluate for item in items)

        def ev_in(u: Mapping[str, Value], s: Mapping[str, Value]) -> bool | None:
            value = lf(u, s)
            if value is None:
                return None
            saw_unknown = False
            for f in fs:
                result = _compare("=", value, f(u, s))
                if result is True:
                    return not negate
                if result is None:
                    saw_unknown = True
            if saw_unknown:
                return None
            return negate

        return _Node(ev_in, True, pos=pos)

    def _like(self, left: _Node, negate: bool) -> _Node:
        pos = self._advance().pos
        self._need_value(left)
        pattern_tok = self._expect("str", None, "a string pattern after LIKE")
        escape: str | None = None
        if self._accept("kw", "ESCAPE"):
            esc_tok = self._expect("str", None, "a one-character string after ESCAPE")
            if len(esc_tok.value) != 1:
                raise self._error("ESCAPE needs exactly one character", esc_tok.pos)
            escape = esc_tok.value
        try:
            regex = _like_regex(pattern_tok.value, escape)
        except FilterEvaluationError as exc:
            raise self._error(str(exc), pattern_tok.pos) from exc
        lf = left.evaluate

        def ev_like(u: Mapping[str, Value], s: Mapping[str, Value]) -> bool | None:
            value = lf(u, s)
            if value is None:
                return None
            if not isinstance(value, str):
                raise FilterEvaluationError(f"LIKE needs a string, got {_type_name(value)} {value!r}")
            matched = regex.fullmatch(value) is not None
            return not matched if negate else matched

        return _Node(ev_like, True, pos=pos)

    def _additive(self) -> _Node:
        left = self._multiplicative()
        while self.tok.kind == "op" and self.tok.value in ("+", "-"):
            tok = self._advance()
            right = self._multiplicative()
            left = self._binary(tok, left, right)
        return left

    def _multiplicative(self) -> _Node:
        left = self._unary()
        while self.tok.kind == "op" and self.tok.value in ("*", "/", "%"):
            tok = self._advance()
            right = self._unary()
            left = self._binary(tok, left, right)
        return left

    def _binary(self, tok: _Token, left: _Node, right: _Node) -> _Node:
        self._need_value(left)
        self._need_value(right)
        op, lf, rf = tok.value, left.evaluate, right.evaluate
        return _Node(lambda u, s: _arith(op, lf(u, s), rf(u, s)), False, pos=tok.pos)

    def _unary(self) -> _Node:
        if self.tok.kind == "op" and self.tok.value in ("+", "-"):
            tok = self._advance()
            inner = self._unary()
            self._need_value(inner)
            f = inner.evaluate
            if tok.value == "+":
                return _Node(lambda u, s: _arith("+", 0, f(u, s)), False, pos=tok.pos)
            return _Node(lambda u, s: _arith("-", 0, f(u, s)), False, pos=tok.pos)
        return self._primary()

    def _primary(self) -> _Node:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self._advance()
            value = tok.value
            return _Node(lambda u, s: value, False, pos=tok.pos)
        if tok.kind == "kw" and tok.value in ("TRUE", "FALSE"):
            self._advance()
            flag = tok.value == "TRUE"
            # A boolean constant is both a value (x = TRUE) and a condition (TRUE).
            return _Node(lambda u, s: flag, True, pos=tok.pos, also_value=True)
        if tok.kind == "kw" and tok.value == "NULL":
            self._advance()
            return _Node(lambda u, s: None, False, pos=tok.pos)
        if tok.kind == "op" and tok.value == "(":
            self._advance()
            inner = self._or()
            self._expect("op", ")", "')'")
            return _Node(inner.evaluate, inner.is_predicate, pos=tok.pos, also_value=inner.also_value)
        if tok.kind == "ident":
            return self._property()
        raise self._error(f"expected a value or a property name, found {self._describe(tok)}")

    def _property(self) -> _Node:
        first = self._advance()
        scope = "user"
        name = first.value
        if self._is("op", ".") and first.value.lower() in ("sys", "user"):
            self._advance()
            name_tok = self.tok
            if name_tok.kind not in ("ident", "kw"):
                raise self._error(f"expected a property name after '{first.value}.'")
            self._advance()
            scope = first.value.lower()
            name = name_tok.value
            if scope == "sys":
                key = SYSTEM_PROPERTIES.get(str(name).lower())
                if key is None:
                    known = ", ".join(sorted({f"sys.{v}" for v in SYSTEM_PROPERTIES.values()}))
                    raise self._error(f"unknown system property 'sys.{name}' (known: {known})", name_tok.pos)
                return _Node(lambda u, s: s.get(key), False, True, first.pos, property_ref=("sys", key))
        elif self._is("op", "."):
            raise self._error(f"unknown property scope {first.value!r}; use 'sys.' or 'user.' or no prefix")
        prop = str(name)
        return _Node(lambda u, s: u.get(prop), False, True, first.pos, property_ref=("user", prop))


# --------------------------------------------------------------------------- public API
@dataclass(frozen=True)
class SqlFilter:
    """A compiled SQL filter. `matches` returns True only when the filter evaluates to TRUE."""

    text: str
    _evaluate: Evaluator

    def evaluate(
        self, application_properties: Mapping[str, Value], system_properties: Mapping[str, Value]
    ) -> bool | None:
        """True, False or None (unknown). Raises FilterEvaluationError on type errors."""
        try:
            result = self._evaluate(application_properties, system_properties)
        except FilterEvaluationError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # defensive: odd property values
            raise FilterEvaluationError(str(exc)) from exc
        return result if result is None else bool(result)

    def matches(
        self, application_properties: Mapping[str, Value], system_properties: Mapping[str, Value]
    ) -> bool:
        return self.evaluate(application_properties, system_properties) is True


@functools.lru_cache(maxsize=512)
def compile_filter(text: str) -> SqlFilter:
    """Parse `text` once (cached); raise FilterSyntaxError with the position on bad input."""
    if len(text) > 1024:
        raise FilterSyntaxError(text[:40] + "...", 0, "a filter is at most 1024 characters")
    node = _Parser(text).parse()
    return SqlFilter(text, node.evaluate)
