"""The API's request and reply (the `{"response"}` / `{"errors"}` envelope of reference
§1.5), id sets in paths, and the route table type every resource's routes share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.brightpearl.errors import ApiError, bad
from shared.brightpearl.idset import IdSetError, parse_id_set

NOT_AUTHENTICATED = "Not authenticated. You must provide a valid authentication token."
TOO_MANY = "You have sent too many requests. Please wait before sending another request"
IDS = r"(?P<ids>\d[\d,.\-]*)"


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: Any
    host: str


@dataclass
class Reply:
    status: int
    payload: Any  # full JSON document (envelope), or None for an empty body


def ok(value: Any = None, status: int = 200, **extra: Any) -> Reply:
    payload: dict[str, Any] = {} if value is None else {"response": value}
    payload.update(extra)
    return Reply(status, payload)


def throttled() -> Reply:
    return Reply(503, {"response": TOO_MANY})


def found(items: list[Any], what: str) -> Reply:
    """The items, or 404 `No {what} Found` when there are none."""
    if not items:
        raise ApiError(404, "CMNC-404", f"No {what} Found")
    return ok(items)


def error_reply(exc: ApiError) -> Reply:
    """An ApiError as Brightpearl answers it (401 has its own plain-string body)."""
    if exc.status == 401:
        return Reply(401, {"response": NOT_AUTHENTICATED})
    return Reply(exc.status, {"errors": [{"code": exc.code, "message": exc.message}]})


def id_set(text: str, limit: int | None = None) -> list[int]:
    try:
        ids = parse_id_set(text, max_ids=1_000_000)
    except IdSetError as exc:
        raise bad(f"invalid ID set {text!r}: {exc}", "CMNC-030") from exc
    if limit is not None and len(ids) > limit:
        raise bad(f"the ID set names {len(ids)} resources; at most {limit} per request", "CMNC-031")
    return ids


Handler = Callable[[Req, re.Match[str]], Reply]
RouteSpec = tuple[str, str, Handler]  # method, path pattern (below the account), handler
CompiledRoute = tuple[str, re.Pattern[str], Handler, str]  # ... compiled, with a name for the counters


def compile_routes(table: list[RouteSpec]) -> list[CompiledRoute]:
    out = []
    for method, pattern, handler in table:
        name = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern.replace("(?:/", "[/").replace(")?", "]"))
        out.append((method, re.compile(pattern), handler, name))
    return out
