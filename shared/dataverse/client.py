"""Dataverse Web API client (httpx + any azure.core TokenCredential).

One `DataverseClient` per process is thread-safe and shared by all workers. It sends the
headers of reference §1.3, caches the bearer token and re-acquires it once after a 401,
caps in-flight requests (52, lowered to the server's `x-ms-dop-hint`), retries with tenacity
(Retry-After on 429 for any method; exponential backoff with jitter on 502/503/504 and network
errors only where a repeat is safe, i.e. idempotent calls or a connection never opened), drops
the server-affinity cookie, and raises the error ladder of shared/dataverse/errors.py.
It sends its bearer token only under the configured service root: a `@odata.nextLink` or
stored delta link to another host (or outside `/api/data/<version>/`) is refused with
DataverseForeignLink instead of being followed.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import TokenCredential
from tenacity import RetryCallState

from shared.dataverse import odata
from shared.dataverse.batch import build_batch, build_change_sets, parse_batch_response, parse_change_sets
from shared.dataverse.bulk import write_bulk
from shared.dataverse.credentials import TokenCache, build_credential
from shared.dataverse.errors import (
    DataverseError,
    DataverseForeignLink,
    DataverseNotFound,
    DataverseThrottled,
    DataverseUnavailable,
    DataverseValidationError,
    error_from_response,
    refine_not_found,
)
from shared.dataverse.models import (
    BatchOperation,
    BatchResult,
    BulkResult,
    Page,
    Record,
    UpsertResult,
    WhoAmI,
)
from shared.dataverse.odata import Filter, Key
from shared.dataverse.paging import NextLinkPaginator
from shared.dataverse.settings import DataverseSettings
from shared.dataverse.tables import LOGICAL_NAMES, PRIMARY_IDS
from shared.retrying import Retryable, call_with_retries

T = TypeVar("T")
R = TypeVar("R")

TRANSIENT_STATUSES = (502, 503, 504)


class ConcurrencyGate:
    """A resizable semaphore: at most `limit` requests in flight across threads."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._in_flight = 0
        self.max_in_flight = 0
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return self._limit

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self._limit = max(1, limit)
            self._cond.notify_all()

    def __enter__(self) -> ConcurrencyGate:
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight < self._limit)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify()


class DataverseClient:
    def __init__(
        self,
        url: str,
        credential: TokenCredential,
        *,
        api_version: str = "v9.2",
        max_concurrency: int = 52,
        timeout: float = 10.0,
        write_timeout: float = 120.0,
        max_retries: int = 6,
        max_retry_after: float = 60.0,
        page_size: int = 5000,
        bulk_batch_size: int = 1000,
        batch_size: int = 100,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.service_root = f"{self.url}/api/data/{api_version}/"
        self.service_root_path = urlsplit(self.service_root).path
        self.tokens = TokenCache(credential, f"{self.url}/.default")
        self.max_concurrency = max(1, min(max_concurrency, 52))
        self.gate = ConcurrencyGate(self.max_concurrency)
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.page_size = page_size
        self.bulk_batch_size = bulk_batch_size
        self.batch_size = batch_size
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self._rng = random.Random()
        self.calls = 0  # HTTP requests sent (including retries)
        self.retries = 0
        self._stats_lock = threading.Lock()
        self._http = httpx.Client(
            base_url=self.service_root,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                "If-None-Match": "null",
            },
            transport=transport,
            limits=httpx.Limits(
                max_connections=self.max_concurrency + 8, max_keepalive_connections=self.max_concurrency
            ),
            event_hooks={"response": [self._drop_cookies]},
        )

    @classmethod
    def from_settings(
        cls, settings: DataverseSettings, credential: TokenCredential | None = None, **overrides: Any
    ) -> DataverseClient:
        options: dict[str, Any] = {
            "api_version": settings.api_version,
            "max_concurrency": settings.max_concurrency,
            "timeout": settings.timeout_seconds,
            "write_timeout": settings.write_timeout_seconds,
            "max_retries": settings.max_retries,
            "max_retry_after": settings.max_retry_after_seconds,
            "page_size": settings.page_size,
            "bulk_batch_size": settings.bulk_batch_size,
            "batch_size": settings.batch_size,
        }
        options.update(overrides)
        return cls(settings.url, credential or build_credential(settings), **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _drop_cookies(self, response: httpx.Response) -> None:
        # Requests must spread across web servers: never keep the affinity cookie (reference §8).
        self._http.cookies.clear()

    # ======================================================================= transport
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        write: bool | None = None,
    ) -> httpx.Response:
        """Send one request with auth, concurrency cap, Retry-After and backoff. Raises the ladder.

        `path` is relative to the service root, or an absolute link Dataverse gave us
        (nextLink, deltaLink), which must lie under the service root (DataverseForeignLink).
        """
        self.check_link(path)
        method = method.upper()
        if method == "GET":
            self.check_url_length(path, params)
        if idempotent is None:
            idempotent = method in ("GET", "DELETE", "PUT")
        if write is None:
            write = method != "GET"
        timeout = self.write_timeout if write else self.timeout
        send_headers = dict(headers or {})
        body = content
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json")
        return call_with_retries(
            lambda n: self._send(method, path, params, body, send_headers, timeout, idempotent, n),
            max_retries=self.max_retries,
            backoff=lambda state: self._backoff(state.attempt_number - 1),
            sleep=self._sleep,
            before_sleep=self._count_retry,
        )

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
        send_headers: dict[str, str],
        timeout: float,
        idempotent: bool,
        attempt: int,
    ) -> httpx.Response:
        """One attempt (with one token refresh on 401); `Retryable` when a repeat is safe."""
        refreshed = False
        while True:
            token = self.tokens.get()
            send_headers["Authorization"] = f"Bearer {token}"
            with self.gate:
                with self._stats_lock:
                    self.calls += 1
                try:
                    response = self._http.request(
                        method, path, params=params, content=body, headers=send_headers, timeout=timeout
                    )
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                    # Never sent: safe to repeat whatever the method.
                    error = DataverseUnavailable(
                        f"{method} {_short(path)}: connection failed ({type(exc).__name__})"
                    )
                    raise Retryable(error) from exc
                except (
                    httpx.TimeoutException,
                    httpx.RemoteProtocolError,
                    httpx.ReadError,
                    httpx.WriteError,
                ) as exc:
                    error = DataverseUnavailable(f"{method} {_short(path)}: {type(exc).__name__}")
                    if not idempotent:
                        raise error from exc
                    raise Retryable(error) from exc
            self._adapt(response)
            if response.status_code < 400 or response.status_code == 304:
                return response
            if response.status_code == 401 and not refreshed:
                refreshed = True
                self.tokens.get(force=True, stale=token)
                continue
            failure = error_from_response(
                response.status_code,
                _json_or_none(response),
                dict(response.headers),
                context=f"{method} {_short(path)}",
            )
            table = LOGICAL_NAMES.get(path.split("(")[0].split("/")[0])
            failure = refine_not_found(failure, method, path, table)
            if isinstance(failure, DataverseThrottled):
                # Service protection: the server's Retry-After first, for any method.
                retry_after = failure.retry_after
                delay = retry_after if retry_after is not None else self._backoff(attempt - 1)
                if delay > self.max_retry_after:
                    raise failure
                raise Retryable(failure, delay)
            if response.status_code in TRANSIENT_STATUSES and idempotent:
                raise Retryable(failure)
            raise failure

    def _count_retry(self, state: RetryCallState) -> None:
        with self._stats_lock:
            self.retries += 1

    def check_url_length(self, path: str, params: Mapping[str, str] | None = None) -> None:
        """Refuse a GET whose URL (as httpx would send it) is longer than Dataverse accepts
        (odata.MAX_URL_LENGTH): a look-up that should have been split with odata.in_chunks."""
        url = self._http.build_request("GET", path, params=params).url
        length = len(str(url))
        if length > odata.MAX_URL_LENGTH:
            relative = url.path.removeprefix(self.service_root_path)
            entity_set = relative.split("(")[0].split("/")[0] or relative
            raise DataverseValidationError(
                f"GET {entity_set}: the URL is {length:,} characters; Dataverse accepts at most "
                f"{odata.MAX_URL_LENGTH:,}. Not sent: split the look-up (odata.in_chunks)"
            )

    def check_link(self, link: str, *, what: str = "link") -> None:
        """Raise DataverseForeignLink unless `link` is relative or under the service root
        (same scheme, host and port, no user info, path below /api/data/<version>/)."""
        try:
            url = httpx.URL(link)
        except httpx.InvalidURL as exc:
            raise DataverseForeignLink(f"{what} is not a valid URL ({exc}); not followed") from None
        if not (url.scheme or url.host or link.startswith("//")):
            if any(segment == ".." for segment in url.path.split("/")):
                raise DataverseForeignLink(f"{what} {url.path[:80]!r} climbs out of the service root")
            return
        root = httpx.URL(self.service_root)
        origin = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
        if (url.scheme, url.host, url.port) != (root.scheme, root.host, root.port):
            problem = f"points at {origin}, another host than DATAVERSE_URL ({self.url})"
        elif url.userinfo:
            problem = "carries user information"
        elif not url.path.startswith(root.path) or ".." in url.path.split("/"):
            problem = f"is outside the service root {root.path} (path {url.path[:80]!r})"
        else:
            return
        raise DataverseForeignLink(
            f"{what} {problem}; not followed, so the bearer token is not sent there",
            status=None,
        )

    def _backoff(self, attempt: int) -> float:
        base = min(self.backoff_cap, self.backoff_base * 2.0**attempt)
        return base * (0.8 + 0.4 * self._rng.random())

    def _adapt(self, response: httpx.Response) -> None:
        hint = response.headers.get("x-ms-dop-hint")
        if hint and hint.isdigit():
            wanted = max(1, min(self.max_concurrency, int(hint)))
            if wanted != self.gate.limit:
                self.gate.set_limit(wanted)

    def map_concurrent(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """Run `fn` over `items` with as many threads as the gate allows; results in order."""
        work = list(items)
        if len(work) <= 1:
            return [fn(w) for w in work]
        with ThreadPoolExecutor(max_workers=min(len(work), self.gate.limit)) as pool:
            return list(pool.map(fn, work))

    # ======================================================================= records
    def who_am_i(self) -> WhoAmI:
        body = self.request("GET", "WhoAmI").json()
        return WhoAmI(body["UserId"], body["BusinessUnitId"], body["OrganizationId"])

    def get(
        self,
        entity_set: str,
        key: Key,
        *,
        select: Sequence[str] | None = None,
        expand: str | None = None,
        annotations: bool = False,
    ) -> Record:
        params = {}
        if select:
            params["$select"] = ",".join(odata.prop(s) for s in select)
        if expand:
            params["$expand"] = expand
        headers = {"Prefer": 'odata.include-annotations="*"'} if annotations else None
        resp = self.request("GET", odata.record_path(entity_set, key), params=params, headers=headers)
        return Record.from_json(entity_set, resp.json(), PRIMARY_IDS.get(entity_set))

    def get_or_none(self, entity_set: str, key: Key, **kwargs: Any) -> Record | None:
        try:
            return self.get(entity_set, key, **kwargs)
        except DataverseNotFound:
            return None

    def create(self, entity_set: str, data: Mapping[str, Any], *, detect_duplicates: bool = False) -> str:
        """POST a new row; returns its id (from OData-EntityId)."""
        headers = {"MSCRM.SuppressDuplicateDetection": "false"} if detect_duplicates else None
        resp = self.request(
            "POST", odata.prop(entity_set), json_body=dict(data), headers=headers, idempotent=False
        )
        record_id = odata.entity_id_from_url(
            resp.headers.get("OData-EntityId") or resp.headers.get("Location", "")
        )
        if record_id is None:
            raise DataverseError(f"create on {entity_set} answered without an OData-EntityId")
        return record_id

    def update(self, entity_set: str, key: Key, data: Mapping[str, Any], *, etag: str | None = None) -> None:
        """PATCH an existing row only (If-Match: * or the given ETag); never creates."""
        self.request(
            "PATCH",
            odata.record_path(entity_set, key),
            json_body=dict(data),
            headers={"If-Match": etag or "*"},
            idempotent=True,
        )

    def upsert(
        self,
        entity_set: str,
        key: Key,
        data: Mapping[str, Any],
        *,
        create_only: bool = False,
        return_id: bool = True,
    ) -> UpsertResult:
        """PATCH by id or alternate key: creates when missing, updates when present.

        With `return_id` the response carries the row's id and whether it was created (201/200).
        """
        headers: dict[str, str] = {}
        params: dict[str, str] = {}
        if create_only:
            headers["If-None-Match"] = "*"
        pk = PRIMARY_IDS.get(entity_set)
        if return_id and pk:
            headers["Prefer"] = "return=representation"
            params["$select"] = pk
        resp = self.request(
            "PATCH",
            odata.record_path(entity_set, key),
            json_body=dict(data),
            headers=headers,
            params=params,
            idempotent=True,
        )
        if resp.status_code in (200, 201) and resp.content:
            body = resp.json()
            return UpsertResult(str(body.get(pk)) if pk and body.get(pk) else None, resp.status_code == 201)
        entity = resp.headers.get("OData-EntityId", "")
        return UpsertResult(odata.entity_id_from_url(entity), None)

    def delete(self, entity_set: str, key: Key, *, etag: str | None = None) -> None:
        headers = {"If-Match": etag} if etag else None
        self.request("DELETE", odata.record_path(entity_set, key), headers=headers)

    def associate(self, entity_set: str, key: Key, navigation: str, target: str) -> None:
        """Set a single-valued lookup: PUT <record>/<nav>/$ref {"@odata.id": <target URL>}."""
        self.request(
            "PUT",
            f"{odata.record_path(entity_set, key)}/{odata.prop(navigation)}/$ref",
            json_body={"@odata.id": f"{self.service_root}{target.lstrip('/')}"},
        )

    def disassociate(self, entity_set: str, key: Key, navigation: str) -> None:
        self.request("DELETE", f"{odata.record_path(entity_set, key)}/{odata.prop(navigation)}/$ref")

    def call_action(
        self, name: str, body: Mapping[str, Any] | None = None, *, bound_to: str | None = None
    ) -> Any:
        """POST an action: unbound `CloseIncident`, or bound `salesorders` + `FulfillSalesOrder`."""
        path = f"{bound_to}/Microsoft.Dynamics.CRM.{odata.prop(name)}" if bound_to else odata.prop(name)
        resp = self.request("POST", path, json_body=dict(body or {}), idempotent=False)
        return resp.json() if resp.content else None

    # ======================================================================= queries
    def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: Filter | None = None,
        orderby: Sequence[str] | None = None,
        expand: str | None = None,
        top: int | None = None,
        page_size: int | None = None,
        count: bool = False,
        annotations: bool = False,
    ) -> Iterator[Page]:
        """Pages of a query, following @odata.nextLink verbatim with the same Prefer header."""
        params: dict[str, str] = {}
        if select:
            params["$select"] = ",".join(odata.prop(s) for s in select)
        if filter is not None:
            if not isinstance(filter, Filter):
                raise TypeError("filter must be built with shared.dataverse.odata (escaped values)")
            params["$filter"] = filter.text
        if orderby:
            params["$orderby"] = ",".join(_orderby(o) for o in orderby)
        if expand:
            params["$expand"] = expand
        if count:
            params["$count"] = "true"
        prefer = []
        if top is not None:
            params["$top"] = str(int(top))  # $top and maxpagesize are not combined (reference §3.8)
        else:
            prefer.append(f"odata.maxpagesize={page_size or self.page_size}")
        if annotations:
            prefer.append('odata.include-annotations="*"')
        headers = {"Prefer": ",".join(prefer)} if prefer else None
        pk = PRIMARY_IDS.get(entity_set)
        paginator = NextLinkPaginator(
            self, odata.prop(entity_set), params=params, headers=headers, what=f"the query on {entity_set}"
        )
        for body in paginator:
            yield Page(
                [Record.from_json(entity_set, row, pk) for row in body.get("value", [])],
                next_link=body.get("@odata.nextLink"),
                delta_link=body.get("@odata.deltaLink"),
                count=body.get("@odata.count"),
            )

    def query(self, entity_set: str, **kwargs: Any) -> Iterator[Record]:
        """Every record of a query, across pages (see `pages` for the options)."""
        for page in self.pages(entity_set, **kwargs):
            yield from page.records

    def count(self, entity_set: str, filter: Filter | None = None) -> int:
        params = {"$filter": filter.text} if filter is not None else None
        return int(self.request("GET", f"{odata.prop(entity_set)}/$count", params=params).text.strip())

    # ======================================================================= $batch
    def execute_batch(
        self, ops: Sequence[BatchOperation], *, continue_on_error: bool = True, change_set: bool = False
    ) -> list[BatchResult]:
        """Send up to 1000 operations in one `$batch`; one BatchResult per operation, in order.

        `change_set=True` makes them atomic. Without continue-on-error, the first failure is raised.
        """
        if not ops:
            return []
        if len(ops) > 1000:
            raise ValueError("a $batch holds at most 1000 operations")
        content_type, body = build_batch(ops, self.service_root_path, change_set=change_set)
        headers = {"Content-Type": content_type}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        idempotent = all(op.method.upper() in ("GET", "PATCH", "PUT", "DELETE") for op in ops)
        resp = self.request("POST", "$batch", content=body, headers=headers, idempotent=idempotent)
        results = parse_batch_response(resp.headers.get("Content-Type", ""), resp.content)
        if change_set and len(results) == 1 and len(ops) > 1 and results[0].error is not None:
            # The whole change set rolled back: every operation failed with that error.
            return [
                BatchResult(i, results[0].status, results[0].headers, results[0].body, results[0].error)
                for i in range(len(ops))
            ]
        if len(results) != len(ops):
            failures = [r for r in results if r.error is not None]
            if failures:
                raise failures[0].error  # type: ignore[misc]
            raise DataverseError(f"$batch answered {len(results)} parts for {len(ops)} operations")
        for result, op in zip(results, ops, strict=True):
            if result.error is not None:
                entity_set = op.path.split("(")[0].split("/")[0]
                result.error = refine_not_found(
                    result.error, op.method, op.path, LOGICAL_NAMES.get(entity_set)
                )
        if not continue_on_error:
            for r in results:
                if r.error is not None:
                    raise r.error
        return results

    def execute_change_sets(self, groups: Sequence[Sequence[BatchOperation]]) -> list[list[BatchResult]]:
        """Send many change sets in one `$batch` (at most 1000 operations in all), each atomic on
        its own, with continue-on-error between them: one result list per group, in order (an
        empty group: an empty list). A group that rolled back carries its failing request's
        error on every operation."""
        sent = [g for g in groups if g]
        total = sum(len(g) for g in sent)
        if not sent:
            return [[] for _ in groups]
        if total > 1000:
            raise ValueError(f"a $batch holds at most 1000 operations, these change sets have {total}")
        content_type, body = build_change_sets(sent, self.service_root_path)
        headers = {"Content-Type": content_type, "Prefer": "odata.continue-on-error"}
        idempotent = all(op.method.upper() in ("GET", "PATCH", "PUT", "DELETE") for g in sent for op in g)
        resp = self.request("POST", "$batch", content=body, headers=headers, idempotent=idempotent)
        answers = iter(
            parse_change_sets(resp.headers.get("Content-Type", ""), resp.content, [len(g) for g in sent])
        )
        out = [next(answers) if g else [] for g in groups]
        for group, results in zip(groups, out, strict=True):
            for result, op in zip(results, group, strict=True):
                if result.error is not None:
                    entity_set = op.path.split("(")[0].split("/")[0]
                    result.error = refine_not_found(
                        result.error, op.method, op.path, LOGICAL_NAMES.get(entity_set)
                    )
        return out

    # ======================================================================= bulk
    def create_multiple(
        self, entity_set: str, rows: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> BulkResult:
        """CreateMultiple in batches, falling back to $batch per row when a batch fails."""
        return write_bulk(self, "CreateMultiple", entity_set, rows, **kwargs)

    def upsert_multiple(
        self, entity_set: str, rows: Sequence[Mapping[str, Any]], *, key_columns: Sequence[str], **kwargs: Any
    ) -> BulkResult:
        """UpsertMultiple by alternate key in batches, falling back to $batch per row on failure."""
        return write_bulk(self, "UpsertMultiple", entity_set, rows, key_columns=key_columns, **kwargs)

    def update_multiple(
        self, entity_set: str, rows: Sequence[Mapping[str, Any]], **kwargs: Any
    ) -> BulkResult:
        """UpdateMultiple (each row carries its primary id) with the same fallback."""
        return write_bulk(self, "UpdateMultiple", entity_set, rows, **kwargs)


def _orderby(clause: str) -> str:
    bits = clause.split()
    if len(bits) == 2 and bits[1] in ("asc", "desc"):
        return f"{odata.prop(bits[0])} {bits[1]}"
    if len(bits) == 1:
        return odata.prop(bits[0])
    raise odata.ODataValueError(f"invalid orderby clause {clause!r}")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _short(path: str) -> str:
    return path.split("?")[0][:120]
