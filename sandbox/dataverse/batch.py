"""`$batch` for the simulator: multipart/mixed parsing (CRLF), change sets, Content-ID references,
stop-at-first-error vs `odata.continue-on-error`, and the nested multipart response."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sandbox.dataverse import errors as E
from sandbox.dataverse.engine import Engine
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import API_PREFIX, SimRequest, SimResponse

REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass
class Part:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    parts: list[Part] = field(default_factory=list)


def boundary_of(content_type: str) -> str | None:
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    return m.group(1) if m else None


def _split(body: bytes, boundary: str) -> list[bytes]:
    delim = b"--" + boundary.encode()
    chunks = body.split(delim)
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        parts.append(chunk.removeprefix(b"\r\n"))
    if not body.rstrip().endswith(delim + b"--"):
        raise ODataError(400, E.PAYLOAD_ERROR, f"The batch body is not terminated by '--{boundary}--'.")
    return parts


def _headers_and_rest(blob: bytes) -> tuple[dict[str, str], bytes]:
    head, sep, rest = blob.partition(b"\r\n\r\n")
    if not sep:
        head, rest = blob, b""
    headers: dict[str, str] = {}
    for line in head.decode("utf-8").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return headers, rest


def _parse_http(blob: bytes, content_id: str | None) -> Part:
    first, _, remainder = blob.partition(b"\r\n")
    bits = first.decode("utf-8").split(" ")
    if len(bits) < 2:
        raise ODataError(400, E.PAYLOAD_ERROR, f"Invalid request line in batch part: '{first[:100]!r}'.")
    if remainder.startswith(b"\r\n"):  # no headers: the body follows the blank line directly
        headers, body = {}, remainder[2:]
    else:
        headers, body = _headers_and_rest(remainder)
    return Part(bits[0].upper(), bits[1], headers, body.rstrip(b"\r\n"), content_id)


def parse_batch(body: bytes, content_type: str) -> list[Part | ChangeSet]:
    if b"\n" in body.replace(b"\r\n", b""):
        raise ODataError(
            400,
            E.PAYLOAD_ERROR,
            "Error identified in Payload provided by the user for Entity :'' ---> "
            "InnerException : System.ArgumentException: Stream was not readable.",
        )
    boundary = boundary_of(content_type)
    if not content_type.startswith("multipart/mixed") or not boundary:
        raise ODataError(
            400, E.PAYLOAD_ERROR, "A $batch request needs Content-Type multipart/mixed; boundary=..."
        )
    items: list[Part | ChangeSet] = []
    for blob in _split(body, boundary):
        headers, rest = _headers_and_rest(blob)
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            inner = boundary_of(ctype)
            if not inner:
                raise ODataError(400, E.PAYLOAD_ERROR, "A change set needs a boundary.")
            cs = ChangeSet()
            for sub in _split(rest, inner):
                sub_headers, sub_rest = _headers_and_rest(sub)
                cs.parts.append(_parse_http(sub_rest, sub_headers.get("content-id")))
            items.append(cs)
        else:
            items.append(_parse_http(rest, headers.get("content-id")))
    return items


class _ChangeSetFailed(Exception):
    def __init__(self, response: SimResponse, content_id: str | None):
        super().__init__("change set failed")
        self.response = response
        self.content_id = content_id


def _render_part(resp: SimResponse, content_id: str | None = None) -> bytes:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {resp.status} {REASONS.get(resp.status, '')}".rstrip()]
    headers = dict(resp.headers)
    if resp.status >= 400:
        headers.setdefault("REQ_ID", str(uuid.uuid4()))
    if headers.get("Content-Type", "").startswith("application/json") and resp.status == 200:
        headers["Content-Type"] = "application/json; odata.metadata=minimal; odata.streaming=true"
    for k, v in headers.items():
        lines.append(f"{k}: {v}")
    lines.append("")
    text = "\r\n".join(lines) + "\r\n"
    return text.encode("utf-8") + resp.body + b"\r\n"


def execute_batch(engine: Engine, outer: SimRequest) -> SimResponse:
    items = parse_batch(outer.body, outer.header("content-type") or "")
    count = sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)
    if count > engine.config.max_batch_parts:
        raise ODataError(
            400,
            E.INVALID_ARGUMENT,
            f"The number of requests in the batch ({count}) exceeds the limit of "
            f"{engine.config.max_batch_parts}.",
        )
    continue_on_error = "odata.continue-on-error" in outer.prefer
    content_ids: dict[str, str] = {}
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[bytes] = []
    failure: SimResponse | None = None
    for item in items:
        if isinstance(item, Part):
            resp = _run(engine, outer, item, content_ids)
            if resp.status >= 400 and not continue_on_error:
                failure = resp
                chunks = [_render_part(resp)]
                break
            chunks.append(_render_part(resp))
            continue
        cs_boundary = f"changesetresponse_{uuid.uuid4()}"
        sub_chunks: list[bytes] = []
        try:
            with engine.db.transaction():
                for part in item.parts:
                    if part.method == "GET":
                        raise _ChangeSetFailed(
                            SimResponse.error(
                                ODataError(
                                    400, E.PAYLOAD_ERROR, "GET requests are not allowed inside a change set."
                                )
                            ),
                            part.content_id,
                        )
                    resp = _run(engine, outer, part, content_ids)
                    if resp.status >= 400:
                        raise _ChangeSetFailed(resp, part.content_id)
                    if part.content_id is not None:
                        entity = resp.headers.get("OData-EntityId")
                        if entity:
                            content_ids[f"${part.content_id}"] = entity
                    sub_chunks.append(_render_part(resp, part.content_id))
        except _ChangeSetFailed as failed:
            # Whole change set rolled back and reported as its failing part (shape UNCONFIRMED
            # under continue-on-error; standard OData behaviour).
            if not continue_on_error:
                failure = failed.response
                chunks = [_render_part(failed.response, failed.content_id)]
                break
            chunks.append(_render_part(failed.response, failed.content_id))
            continue
        body = (
            b"".join(f"--{cs_boundary}\r\n".encode() + c for c in sub_chunks)
            + f"--{cs_boundary}--\r\n".encode()
        )
        chunks.append(f"Content-Type: multipart/mixed; boundary={cs_boundary}\r\n\r\n".encode() + body)
    payload = b"".join(f"--{boundary}\r\n".encode() + c for c in chunks) + f"--{boundary}--\r\n".encode()
    status = failure.status if failure is not None else 200
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}", "OData-Version": "4.0"}
    if continue_on_error:
        headers["Preference-Applied"] = "odata.continue-on-error"
    return SimResponse(status, headers, payload)


def _run(engine: Engine, outer: SimRequest, part: Part, content_ids: dict[str, str]) -> SimResponse:
    url = part.url
    if url.startswith("$"):
        ref, _, tail = url.partition("/")
        target = content_ids.get(ref)
        if target is None:
            return SimResponse.error(E.unknown_content_id(ref))
        url = target + ("/" + tail if tail else "")
    split = urlsplit(url)
    path = split.path
    marker = path.find(API_PREFIX)
    if marker != -1:
        path = path[marker + len(API_PREFIX) :]
    elif path.startswith("/"):
        return SimResponse.error(E.segment_not_found(path))
    from urllib.parse import unquote

    if path.strip("/") == "$batch":
        return SimResponse.error(ODataError(400, E.PAYLOAD_ERROR, "Batch requests cannot be nested."))
    inner = SimRequest(
        method=part.method,
        path=unquote(path),
        query=split.query,
        headers={**{k: v for k, v in outer.headers.items() if k.startswith("mscrm.")}, **part.headers},
        body=part.body,
        user=outer.user,
        base_url=outer.base_url,
        content_ids=content_ids,
    )
    return engine.handle(inner)
