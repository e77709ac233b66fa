"""The engine's request and reply: SimRequest, SimResponse, the user, Prefer, ETags and timestamps.

Transport-free, so the HTTP app, `$batch` parts, the in-process client and seeding all build
the same `SimRequest` and get the same `SimResponse`.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from sandbox.dataverse import query as Q
from sandbox.dataverse.errors import ODataError

API_PREFIX = "/api/data/v9.2/"
JSON_CT = "application/json; odata.metadata=minimal"
LOOKUP_VALUE_RE = re.compile(r"_(\w+)_value")  # a lookup's value property: _parentcustomerid_value


@dataclass
class User:
    id: str
    name: str
    kind: str = "application"  # application | interactive


@dataclass
class SimRequest:
    method: str
    path: str  # after /api/data/v9.2/, percent-decoded
    query: str  # raw query string (percent-encoded)
    headers: dict[str, str]  # lower-case names
    body: bytes
    user: User
    base_url: str
    content_ids: dict[str, str] = field(default_factory=dict)  # batch: "$1" -> entity URL

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(self.query, keep_blank_values=True))

    @property
    def prefer(self) -> dict[str, str]:
        return parse_prefer(self.header("prefer") or "")


@dataclass
class SimResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
        h = {"Content-Type": JSON_CT, "OData-Version": "4.0"}
        h.update(headers or {})
        return cls(status, h, json.dumps(payload, ensure_ascii=False).encode("utf-8"))

    @classmethod
    def empty(cls, status: int = 204, headers: dict[str, str] | None = None) -> SimResponse:
        h = {"OData-Version": "4.0"}
        h.update(headers or {})
        return cls(status, h, b"")

    @classmethod
    def error(cls, exc: ODataError) -> SimResponse:
        return cls.json(exc.status, exc.body(), exc.headers)


def parse_prefer(header: str) -> dict[str, str]:
    prefs: dict[str, str] = {}
    for part in Q.split_top_level(header.replace('"', "\x00").replace("\x00", '"')):
        if not part:
            continue
        if "=" in part:
            k, v = part.split("=", 1)
            prefs[k.strip().lower()] = v.strip().strip('"')
        else:
            prefs[part.strip().lower()] = ""
    return prefs


def utc_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_guid() -> str:
    return str(uuid.uuid4())


def etag(record: dict[str, Any]) -> str:
    return f'W/"{record["versionnumber"]}"'


def visible(record: dict[str, Any]) -> dict[str, Any]:
    """The record without the engine's bookkeeping (`__seq`, `__created_version`, ...)."""
    return {k: v for k, v in record.items() if not k.startswith("__")}
