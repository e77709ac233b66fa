"""Reads untrusted JSON request bodies (the webhooks) within bounds, failing with one error type.

`json.loads` alone lets crafted bodies escape as unexpected exceptions (each a 500): nesting
about a thousand levels deep raises RecursionError, an integer literal over 4,300 digits
ValueError, and a `\\ud800` escape yields a lone surrogate that raises UnicodeEncodeError
wherever the text is later encoded. `load_json_body` turns every one of them into a
`JsonBodyError` whose message names the problem (and the field, where there is one), so the
webhooks answer 4xx. Webhook bodies are small, flat objects, so the bounds are tight.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32  # a RemoteExecutionContext nests about 8 levels; Brightpearl's body 1
MAX_NUMBER_CHARS = 40  # longer than any id, version number or /Date() milliseconds
JSON_MEDIA_TYPES = ("application/json", "text/json")


class JsonBodyError(ValueError):
    """The body is not JSON within the bounds; the message says why."""


def is_json_media_type(content_type: str | None) -> bool:
    """True for a missing Content-Type or exactly application/json or text/json (parameters
    such as `; charset=utf-8` allowed); `application/x-notjson` is not JSON."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type in ("", *JSON_MEDIA_TYPES)


def load_json_body(body: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON; raise JsonBodyError for invalid JSON, NaN/Infinity, over-long numbers,
    nesting deeper than `max_depth` or text that is not valid Unicode (lone surrogates)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JsonBodyError(f"body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise JsonBodyError(f"body nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JsonBodyError(f"body is not JSON: {exc}") from None
    _check(value, max_depth)
    return value


def _number(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonBodyError(
            f"number literal {text[:12]}… of {len(text)} characters exceeds {MAX_NUMBER_CHARS}"
        )


def _int(text: str) -> int:
    _number(text)
    return int(text)


def _float(text: str) -> float:
    _number(text)
    value = float(text)
    if not math.isfinite(value):
        raise JsonBodyError(f"number {text!r} is out of range")
    return value


def _constant(name: str) -> Any:
    raise JsonBodyError(f"{name} is not a JSON value")


def _check(value: Any, max_depth: int) -> None:
    """Walk the parsed value without recursion: bound the depth, reject lone surrogates."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, str):
            _text(item, f"field '{where}'" if where else "body")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise JsonBodyError(f"body nests deeper than {max_depth} levels (at '{where}')")
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(key, str):
                _text(key, f"a key in field '{where}'" if where else "a key of the body")
            path = f"{where}.{key}" if where else str(key)
            stack.append((child, path[:80], depth + 1))


def _text(text: str, label: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonBodyError(
            f"{label}: text contains an unpaired surrogate (\\u{ord(text[exc.start]):04x}); "
            "it is not valid Unicode"
        ) from None
