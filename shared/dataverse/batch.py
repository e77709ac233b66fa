"""Builds `$batch` request bodies (multipart/mixed, CRLF, change sets with Content-IDs) and parses
the nested multipart responses back into one result per operation, in order."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence

from shared.dataverse.errors import DataverseError, error_from_response
from shared.dataverse.models import BatchOperation, BatchResult

CRLF = "\r\n"


def build_batch(
    ops: Sequence[BatchOperation], service_root_path: str, *, change_set: bool = False
) -> tuple[str, bytes]:
    """(content type, body). `service_root_path` is e.g. `/api/data/v9.2/`."""
    boundary = f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    if change_set:
        cs = f"changeset_{uuid.uuid4()}"
        lines += [f"--{boundary}", f"Content-Type: multipart/mixed; boundary={cs}", ""]
        for i, op in enumerate(ops, start=1):
            lines.append(f"--{cs}")
            lines += _request_lines(op, i, service_root_path)
        lines.append(f"--{cs}--")
    else:
        for op in ops:
            lines.append(f"--{boundary}")
            lines += _request_lines(op, None, service_root_path)
    lines.append(f"--{boundary}--")
    lines.append("")
    return f"multipart/mixed; boundary={boundary}", CRLF.join(lines).encode("utf-8")


def build_change_sets(
    groups: Sequence[Sequence[BatchOperation]], service_root_path: str
) -> tuple[str, bytes]:
    """(content type, body) of one `$batch` whose every group is its own change set (atomic on
    its own; Content-IDs run across the whole request, as they must be unique in it)."""
    boundary = f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    content_id = 0
    for group in groups:
        cs = f"changeset_{uuid.uuid4()}"
        lines += [f"--{boundary}", f"Content-Type: multipart/mixed; boundary={cs}", ""]
        for op in group:
            content_id += 1
            lines.append(f"--{cs}")
            lines += _request_lines(op, content_id, service_root_path)
        lines.append(f"--{cs}--")
    lines.append(f"--{boundary}--")
    lines.append("")
    return f"multipart/mixed; boundary={boundary}", CRLF.join(lines).encode("utf-8")


def _request_lines(op: BatchOperation, content_id: int | None, service_root_path: str) -> list[str]:
    out = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        out.append(f"Content-ID: {content_id}")
    out += ["", f"{op.method.upper()} {service_root_path}{op.path} HTTP/1.1"]
    headers = dict(op.headers)
    if op.body is not None:
        headers.setdefault("Content-Type", "application/json; type=entry")
    out += [f"{k}: {v}" for k, v in headers.items()]
    out.append("")
    out.append(json.dumps(op.body, ensure_ascii=False) if op.body is not None else "")
    return out


def parse_change_sets(
    content_type: str, body: bytes, sizes: Sequence[int], *, context: str = "$batch"
) -> list[list[BatchResult]]:
    """The answer to `build_change_sets`: one result list per change set, in order. A change set
    that rolled back is answered by one part (its failing request): that error stands for every
    operation of the set. A set the answer does not reach (the batch stopped) is a DataverseError."""
    parts = _parts(body, _boundary(content_type))
    out: list[list[BatchResult]] = []
    for n, size in enumerate(sizes):
        if n >= len(parts):
            raise DataverseError(
                f"{context}: the answer holds {len(parts)} change sets of {len(sizes)}; the rest were not run"
            )
        headers, rest = _split_head(parts[n])
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            subs = [_split_head(sub)[1] for sub in _parts(rest, _boundary(ctype))]
            results = [_result(i, *_http_part(sub), context=context) for i, sub in enumerate(subs)]
        else:
            results = [_result(0, *_http_part(rest), context=context)]
        failed = next((r for r in results if r.error is not None), None)
        if failed is not None:  # rolled back (answered by its failing request, alone or not)
            results = [
                BatchResult(i, failed.status, failed.headers, failed.body, failed.error) for i in range(size)
            ]
        elif len(results) != size:
            raise DataverseError(
                f"{context}: change set {n + 1} answered {len(results)} parts for {size} operations"
            )
        out.append(results)
    return out


def _boundary(content_type: str) -> str:
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if not m:
        raise DataverseError(f"$batch response without a boundary: {content_type!r}")
    return m.group(1)


def _parts(body: bytes, boundary: str) -> list[bytes]:
    delim = ("--" + boundary).encode()
    chunks = body.split(delim)[1:]
    return [c.removeprefix(b"\r\n") for c in chunks if not c.startswith(b"--")]


def _split_head(blob: bytes) -> tuple[dict[str, str], bytes]:
    head, _, rest = blob.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("utf-8").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return headers, rest


def _http_part(blob: bytes) -> tuple[int, dict[str, str], bytes]:
    status_line, _, rest = blob.partition(b"\r\n")
    bits = status_line.decode("utf-8").split(" ")
    if len(bits) < 2 or not bits[1].isdigit():
        raise DataverseError(f"unexpected $batch part status line {status_line[:80]!r}")
    headers, body = _split_head(rest)
    return int(bits[1]), headers, body.rstrip(b"\r\n")


def parse_batch_response(content_type: str, body: bytes, *, context: str = "$batch") -> list[BatchResult]:
    """Flatten the response (change-set parts inline) into BatchResults in response order."""
    results: list[BatchResult] = []
    for part in _parts(body, _boundary(content_type)):
        headers, rest = _split_head(part)
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            for sub in _parts(rest, _boundary(ctype)):
                _, sub_rest = _split_head(sub)
                results.append(_result(len(results), *_http_part(sub_rest), context=context))
        else:
            results.append(_result(len(results), *_http_part(rest), context=context))
    return results


def _result(index: int, status: int, headers: dict[str, str], raw: bytes, *, context: str) -> BatchResult:
    payload = None
    if raw.strip():
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = raw.decode("utf-8", "replace")
    error = error_from_response(status, payload, headers, context=context) if status >= 400 else None
    return BatchResult(index=index, status=status, headers=headers, body=payload, error=error)
