"""Webhook delivery: registered serviceendpoints + processing steps -> RemoteExecutionContext POSTs.

Reference §7: contract 8 endpoints, auth types 4 (WebhookKey, ?code=), 5 (HttpHeader) and
6 (HttpQueryString) with the XML <settings> authvalue; x-ms-dynamics-* headers; 60 s timeout;
one more attempt on 502/503/504; synchronous steps roll the triggering operation back on
failure, asynchronous failures become failed system jobs (asyncoperation statuscode 31);
payloads over 256 KB lose ParentContext/InputParameters/images and gain
x-ms-dynamics-msg-size-exceeded.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from sandbox.dataverse import errors as E
from sandbox.dataverse import query as Q
from sandbox.dataverse.errors import ODataError
from sandbox.dataverse.protocol import utc_iso
from sandbox.dataverse.store import Event

if TYPE_CHECKING:
    from sandbox.dataverse.app import Simulator

CONTRACTS = "http://schemas.microsoft.com/xrm/2011/Contracts"


@dataclass
class Delivery:
    step: str
    mode: int
    message: str
    entity: str
    record_id: str
    status: int | None
    attempts: int
    ok: bool
    error: str | None
    size_exceeded: bool
    operation_id: str
    at: str


def ms_date(iso: str | None) -> str | None:
    if not iso:
        return None
    return f"/Date({int(Q._parse_datetime(iso).timestamp() * 1000)})/"


class WebhookService:
    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.deliveries: list[Delivery] = []
        self.fail_next = 0
        self.lock = threading.Lock()
        self.queue: queue.Queue[tuple[Event, dict[str, Any], dict[str, Any]] | None] = queue.Queue()
        self.pending = 0
        self.idle = threading.Condition(self.lock)
        self.worker = threading.Thread(target=self._run, name="dataverse-sim-webhooks", daemon=True)
        self.worker.start()

    def close(self) -> None:
        self.queue.put(None)

    # -- matching ----------------------------------------------------------------------------
    def steps_for(self, event: Event) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        rows = self.sim.engine.db.rows
        found = []
        for step in rows["sdkmessageprocessingstep"].values():
            if step.get("statecode", 0) != 0:
                continue
            msg_ref = step.get("sdkmessageid")
            msg = rows["sdkmessage"].get(msg_ref["id"]) if isinstance(msg_ref, dict) else None
            if msg is None or msg.get("name") != event.message:
                continue
            flt_ref = step.get("sdkmessagefilterid")
            if isinstance(flt_ref, dict):
                flt = rows["sdkmessagefilter"].get(flt_ref["id"])
                if flt is None or flt.get("primaryobjecttypecode") != event.table:
                    continue
            handler = step.get("eventhandler")
            endpoint = rows["serviceendpoint"].get(handler["id"]) if isinstance(handler, dict) else None
            if endpoint is None or endpoint.get("contract") != 8:
                continue
            filtering = [a.strip() for a in (step.get("filteringattributes") or "").split(",") if a.strip()]
            if event.message == "Update" and filtering and not set(filtering) & set(event.attributes):
                continue
            found.append((step, endpoint))
        return sorted(found, key=lambda se: se[0].get("rank") or 1)

    # -- hooks from the store ------------------------------------------------------------------
    def on_commit(self, events: list[Event]) -> None:
        """Synchronous steps run inside the transaction: a failure rolls the operation back."""
        for event in events:
            for step, endpoint in self.steps_for(event):
                if step.get("mode") == 0:
                    delivery = self._deliver(event, step, endpoint)
                    if not delivery.ok:
                        raise ODataError(
                            400,
                            E.PLUGIN_ERROR,
                            f"Endpoint unavailable: the synchronous webhook step '{step.get('name')}' "
                            f"failed ({delivery.error}).",
                        )

    def after_commit(self, events: list[Event]) -> None:
        for event in events:
            for step, endpoint in self.steps_for(event):
                if step.get("mode") != 0:
                    with self.lock:
                        self.pending += 1
                    self.queue.put((event, dict(step), dict(endpoint)))

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            event, step, endpoint = item
            try:
                delivery = self._deliver(event, step, endpoint)
                if not delivery.ok:
                    self._record_failed_job(step, delivery)
            finally:
                with self.lock:
                    self.pending -= 1
                    self.idle.notify_all()

    def drain(self, timeout: float = 30.0) -> bool:
        with self.lock:
            return self.idle.wait_for(lambda: self.pending == 0, timeout=timeout)

    # -- delivery ----------------------------------------------------------------------------------
    def _deliver(self, event: Event, step: dict[str, Any], endpoint: dict[str, Any]) -> Delivery:
        context = self.build_context(event, step)
        body = json.dumps(context, ensure_ascii=False).encode("utf-8")
        size_exceeded = False
        if len(body) > self.sim.config.webhook_size_limit_bytes:
            size_exceeded = True
            context["ParentContext"] = None
            context["InputParameters"] = []
            context["PreEntityImages"] = []
            context["PostEntityImages"] = []
            body = json.dumps(context, ensure_ascii=False).encode("utf-8")
        url, headers = self._target(endpoint)
        org = self.sim.config.organization_name
        headers.update(
            {
                "Content-Type": "application/json; charset=utf-8",
                "x-ms-dynamics-organization": f"{org}.crm.dynamics.com",
                "x-ms-dynamics-entity-name": event.table,
                "x-ms-dynamics-request-name": event.message,
                "x-ms-correlation-request-id": context["CorrelationId"],
            }
        )
        if size_exceeded:
            headers["x-ms-dynamics-msg-size-exceeded"] = "true"
        attempts, status, error, ok = 0, None, None, False
        with self.lock:
            injected = self.fail_next > 0
            if injected:
                self.fail_next -= 1
        if injected:
            error = "injected failure (sandbox fault)"
        else:
            while attempts < 2:
                attempts += 1
                headers["x-request-id"] = str(uuid.uuid4())
                try:
                    resp = httpx.post(
                        url, content=body, headers=headers, timeout=self.sim.config.webhook_timeout_seconds
                    )
                    status = resp.status_code
                    ok = 200 <= status < 300
                    error = None if ok else f"HTTP {status}"
                    if ok or status not in (502, 503, 504):
                        break
                except httpx.HTTPError as exc:
                    error = f"{type(exc).__name__}"
                    break
        delivery = Delivery(
            step=str(step.get("name")),
            mode=int(step.get("mode") or 0),
            message=event.message,
            entity=event.table,
            record_id=event.record_id,
            status=status,
            attempts=attempts,
            ok=ok,
            error=error,
            size_exceeded=size_exceeded,
            operation_id=context["OperationId"],
            at=utc_iso(self.sim.clock.now()),
        )
        with self.lock:
            self.deliveries.append(delivery)
        return delivery

    def _target(self, endpoint: dict[str, Any]) -> tuple[str, dict[str, str]]:
        url = str(endpoint.get("url") or "")
        auth = endpoint.get("authtype")
        value = endpoint.get("authvalue") or ""
        headers: dict[str, str] = {}
        params: list[tuple[str, str]] = []
        if auth == 4:
            params.append(("code", value))
        elif auth in (5, 6):
            pairs = parse_auth_settings(value)
            if auth == 5:
                headers.update(pairs)
            else:
                params.extend(pairs.items())
        if params:
            parts = urlsplit(url)
            query = (parts.query + "&" if parts.query else "") + urlencode(params)
            url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
        return url, headers

    def _record_failed_job(self, step: dict[str, Any], delivery: Delivery) -> None:
        sim = self.sim
        with sim.lock:
            db = sim.engine.db
            job_id = str(uuid.uuid4())
            now = utc_iso(sim.clock.now())
            db.rows["asyncoperation"][job_id] = {
                "asyncoperationid": job_id,
                "name": str(step.get("name")),
                "friendlymessage": "The webhook call failed.",
                "message": f"Webhook delivery failed: {delivery.error}",
                "errorcode": -2147204719,
                "completedon": now,
                "createdon": now,
                "modifiedon": now,
                "owningextensionid": {
                    "id": step["sdkmessageprocessingstepid"],
                    "table": "sdkmessageprocessingstep",
                    "nav": "owningextensionid_sdkmessageprocessingstep",
                },
                "statecode": 3,
                "statuscode": 31,
                "versionnumber": db.next_version(),
                "__seq": db.next_seq(),
                "__created_version": db.version,
            }

    # -- RemoteExecutionContext -------------------------------------------------------------------
    def typed(self, table: str, name: str, value: Any) -> Any:
        column = self.sim.engine.schema.tables[table].columns.get(name)
        if value is None or column is None:
            return value
        if column.is_lookup and isinstance(value, dict):
            target = self.sim.engine.schema.tables[value["table"]]
            rec = self.sim.engine.db.rows[target.logical_name].get(value["id"]) or {}
            return {
                "__type": f"EntityReference:{CONTRACTS}",
                "Id": value["id"],
                "KeyAttributes": [],
                "LogicalName": value["table"],
                "Name": rec.get(target.primary_name),
                "RowVersion": None,
            }
        if column.type in ("picklist", "state", "status"):
            return {"__type": f"OptionSetValue:{CONTRACTS}", "Value": value}
        if column.type == "money":
            return {"__type": f"Money:{CONTRACTS}", "Value": value}
        if column.type == "datetime":
            return ms_date(value)
        return value

    def entity(self, table: str, record_id: str, attributes: dict[str, Any]) -> dict[str, Any]:
        return {
            "__type": f"Entity:{CONTRACTS}",
            "Attributes": [
                {"key": k, "value": self.typed(table, k, v)}
                for k, v in attributes.items()
                if not k.startswith("__") and k != "authvalue"
            ],
            "EntityState": None,
            "FormattedValues": [],
            "Id": record_id,
            "KeyAttributes": [],
            "LogicalName": table,
            "RelatedEntities": [],
            "RowVersion": str(attributes.get("versionnumber")) if attributes.get("versionnumber") else None,
        }

    def _images(self, step: dict[str, Any], event: Event, kind: int) -> list[dict[str, Any]]:
        images = []
        for image in self.sim.engine.db.rows["sdkmessageprocessingstepimage"].values():
            ref = image.get("sdkmessageprocessingstepid")
            if not isinstance(ref, dict) or ref["id"] != step["sdkmessageprocessingstepid"]:
                continue
            if image.get("imagetype") not in (kind, 2):
                continue
            source = event.pre_image if kind == 0 else event.post_image
            if source is None:
                continue
            wanted = [a.strip() for a in (image.get("attributes") or "").split(",") if a.strip()]
            attrs = {k: v for k, v in source.items() if not wanted or k in wanted}
            images.append(
                {
                    "key": image.get("entityalias") or "image",
                    "value": self.entity(event.table, event.record_id, attrs),
                }
            )
        return images

    def build_context(self, event: Event, step: dict[str, Any]) -> dict[str, Any]:
        cfg = self.sim.config
        now = ms_date(utc_iso(self.sim.clock.now()))
        if event.message == "Delete":
            target: dict[str, Any] = {
                "__type": f"EntityReference:{CONTRACTS}",
                "Id": event.record_id,
                "KeyAttributes": [],
                "LogicalName": event.table,
                "Name": None,
                "RowVersion": None,
            }
        else:
            target = self.entity(event.table, event.record_id, event.attributes)
        correlation = event.correlation_id or str(uuid.uuid5(uuid.NAMESPACE_OID, f"{event.record_id}{now}"))
        operation_id = str(uuid.uuid4())
        common = {
            "BusinessUnitId": str(uuid.uuid5(uuid.NAMESPACE_URL, cfg.organization_id)),
            "CorrelationId": correlation,
            "Depth": 1,
            "InitiatingUserId": event.user_id,
            "IsExecutingOffline": False,
            "IsInTransaction": step.get("mode") == 0,
            "IsOfflinePlayback": False,
            "IsolationMode": 1 if step.get("mode") == 0 else 2,
            "MessageName": event.message,
            "Mode": int(step.get("mode") or 0),
            "OperationCreatedOn": now,
            "OperationId": operation_id,
            "OrganizationId": cfg.organization_id,
            "OrganizationName": cfg.organization_name,
            "OutputParameters": [{"key": "id", "value": event.record_id}]
            if event.message == "Create"
            else [],
            "OwningExtension": {
                "Id": step["sdkmessageprocessingstepid"],
                "KeyAttributes": [],
                "LogicalName": "sdkmessageprocessingstep",
                "Name": step.get("name"),
                "RowVersion": None,
            },
            "PrimaryEntityId": event.record_id,
            "PrimaryEntityName": event.table,
            "RequestId": None,
            "SecondaryEntityName": "none",
            "SharedVariables": [],
            "UserId": event.user_id,
        }
        parent = dict(
            common,
            Stage=30,
            ParentContext=None,
            InputParameters=[{"key": "Target", "value": target}],
            PreEntityImages=[],
            PostEntityImages=[],
            SharedVariables=[
                {
                    "key": "ChangedEntityTypes",
                    "value": [
                        {
                            "__type": "KeyValuePairOfstringstring:#System.Collections.Generic",
                            "key": event.table,
                            "value": event.message,
                        }
                    ],
                }
            ],
        )
        return dict(
            common,
            InputParameters=[{"key": "Target", "value": target}],
            ParentContext=parent,
            PreEntityImages=self._images(step, event, 0),
            PostEntityImages=self._images(step, event, 1),
            Stage=int(step.get("stage") or 40),
        )

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(d) for d in self.deliveries]


def parse_auth_settings(value: str) -> dict[str, str]:
    """`<settings><setting name="x" value="y"/></settings>` -> {"x": "y"} (format per COMMUNITY)."""
    if not value:
        return {}
    try:
        root = ET.fromstring(value)  # noqa: S314 - trusted admin-supplied registration data
    except ET.ParseError:
        return {}
    return {s.get("name", ""): s.get("value", "") for s in root.iter("setting") if s.get("name")}
