"""Dataverse webhook bodies (RemoteExecutionContext JSON) -> change notices, with strict validation.

Reference §7.2: the body is a serialised RemoteExecutionContext; headers carry
x-ms-dynamics-entity-name / -request-name / -organization and, for payloads over 256 KB,
x-ms-dynamics-msg-size-exceeded, in which case ParentContext, InputParameters and the entity
images are dropped. A notice carries names of changed attributes, never their values.

A Delete names only the deleted row. When its step registers a pre-entity image of lookup
columns (DataverseTable.delete_image, e.g. a line's `salesorderid`), the records those lookups
name are announced too, as updated: deleting an order's line changes the order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.events import ChangeNotice
from shared.jsonbody import JsonBodyError, is_json_media_type, load_json_body
from shared.webhooks import WebhookRejected

GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# ASCII digits only, and the whole text (`$` would also accept a trailing newline); at most
# 15 digits of milliseconds, which covers every date up to the year 9999.
_DATE = re.compile(r"/Date\((-?[0-9]{1,15})([+-][0-9]{4})?\)/")
OPERATIONS = {"Create": "created", "Update": "updated", "Delete": "deleted"}
SIZE_EXCEEDED_HEADER = "x-ms-dynamics-msg-size-exceeded"
# Stamped by the platform on every write; not "changes" a flow cares about.
SYSTEM_STAMPS = frozenset(
    {
        "modifiedon",
        "modifiedby",
        "modifiedonbehalfby",
        "createdon",
        "createdby",
        "createdonbehalfby",
        "versionnumber",
        "overriddencreatedon",
    }
)


# The reason code of each refusal, by its HTTP status.
REASON_CODES = {
    400: "InvalidPayload",
    403: "UnknownOrganization",
    413: "BodyTooLarge",
    415: "UnsupportedMediaType",
    422: "UnsupportedMessage",
}


def _rejected(status: int, problem: str) -> WebhookRejected:
    return WebhookRejected(status, REASON_CODES.get(status, "Rejected"), problem)


class KeyValue(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str
    value: Any = None


class RemoteExecutionContext(BaseModel):
    """The fields of a RemoteExecutionContext the integration relies on."""

    model_config = ConfigDict(extra="ignore")

    MessageName: str = Field(min_length=1, max_length=100)
    PrimaryEntityName: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    PrimaryEntityId: str = Field(pattern=GUID_PATTERN)
    OrganizationId: str = Field(pattern=GUID_PATTERN)
    OrganizationName: str | None = Field(None, max_length=256)
    InitiatingUserId: str = Field(pattern=GUID_PATTERN)
    UserId: str | None = Field(None, pattern=GUID_PATTERN)
    CorrelationId: str | None = Field(None, pattern=GUID_PATTERN)
    OperationId: str | None = Field(None, pattern=GUID_PATTERN)
    OperationCreatedOn: str
    Depth: int = Field(ge=1, le=1000)
    Stage: int | None = None
    Mode: int | None = Field(None, ge=0, le=1)
    InputParameters: list[KeyValue] | None = None
    PreEntityImages: list[KeyValue] | None = None
    PostEntityImages: list[KeyValue] | None = None

    @field_validator("OperationCreatedOn")
    @classmethod
    def _ms_date(cls, value: str) -> str:
        parse_ms_date(value)  # the shape and the range
        return value


def parse_ms_date(value: str) -> datetime:
    """`/Date(1506409448000-0700)/` -> aware UTC datetime (the milliseconds are UTC; the offset
    only says how the sender displays it)."""
    m = _DATE.fullmatch(value)
    if not m:
        raise ValueError("must look like /Date(<milliseconds>[+-hhmm])/")
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m.group(1)))
    except OverflowError:
        raise ValueError(f"{value} is out of range (after the year 9999 or before the year 1)") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "body"
    return f"{where}: {err['msg']}"


def parse_webhook(
    body: bytes,
    headers: Mapping[str, str],
    *,
    organization_id: str | None = None,
    max_body_bytes: int = 256 * 1024,
    delete_images: Mapping[str, Sequence[str]] | None = None,
) -> list[ChangeNotice]:
    """Validate one webhook request and return its change notice(s). Raises WebhookRejected.

    `delete_images`: table -> lookup columns of its Delete step's pre-entity image
    (shared.sync.spec.delete_images); a Delete of such a table whose image names a record yields
    a second notice, that record `updated` (its `detail.via` names the deleted row)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if len(body) > max_body_bytes:
        raise _rejected(413, f"body of {len(body)} bytes exceeds WEBHOOK_MAX_BODY_BYTES ({max_body_bytes})")
    content_type = lowered.get("content-type", "")
    if not is_json_media_type(content_type):
        raise _rejected(415, f"Content-Type must be application/json, got {content_type!r}")
    try:
        raw = load_json_body(body)
    except JsonBodyError as exc:
        raise _rejected(400, str(exc)) from exc
    if not isinstance(raw, dict):
        raise _rejected(400, "body must be a JSON object (a RemoteExecutionContext)")
    try:
        ctx = RemoteExecutionContext.model_validate(raw)
    except ValidationError as exc:
        raise _rejected(400, _first_error(exc)) from exc

    operation = OPERATIONS.get(ctx.MessageName)
    if operation is None:
        raise _rejected(422, f"MessageName {ctx.MessageName!r} is not handled (Create, Update, Delete)")
    for header, name, value in (
        ("x-ms-dynamics-entity-name", "PrimaryEntityName", ctx.PrimaryEntityName),
        ("x-ms-dynamics-request-name", "MessageName", ctx.MessageName),
    ):
        sent = lowered.get(header)
        if sent is not None and sent != value:
            raise _rejected(400, f"header {header} {sent!r} does not match {name} {value!r}")
    if organization_id is not None and ctx.OrganizationId.lower() != organization_id.lower():
        raise _rejected(
            403,
            f"OrganizationId {ctx.OrganizationId} is not the configured organization "
            "(DATAVERSE_ORGANIZATION_ID)",
        )

    size_exceeded = SIZE_EXCEEDED_HEADER in lowered
    record_id = ctx.PrimaryEntityId.lower()
    changed: list[str] | None = None
    target = _target(ctx)
    if target is None:
        if not size_exceeded:
            raise _rejected(400, "InputParameters: a 'Target' parameter is required")
    else:
        logical = target.get("LogicalName")
        if logical is not None and logical != ctx.PrimaryEntityName:
            raise _rejected(
                400,
                f"InputParameters.Target.LogicalName {logical!r} does not match "
                f"PrimaryEntityName {ctx.PrimaryEntityName!r}",
            )
        target_id = str(target.get("Id") or "")
        if (
            target_id
            and target_id != "00000000-0000-0000-0000-000000000000"
            and target_id.lower() != record_id
        ):
            raise _rejected(400, "InputParameters.Target.Id does not match PrimaryEntityId")
        if ctx.MessageName != "Delete":
            changed = _attribute_names(target, primary_id=f"{ctx.PrimaryEntityName}id")
    pre_image = _pre_image(ctx, record_id)
    parents: list[tuple[str, str]] = []
    if ctx.MessageName == "Delete":
        for column in (delete_images or {}).get(ctx.PrimaryEntityName, ()):
            reference = _reference(pre_image, column)
            if reference is not None and reference not in parents:
                parents.append(reference)

    detail: dict[str, Any] = {
        "changed_attributes": changed,
        "initiating_user": ctx.InitiatingUserId.lower(),
        "message": ctx.MessageName,
        "depth": ctx.Depth,
    }
    if size_exceeded:
        detail["size_exceeded"] = True
    version = (ctx.OperationId or "").lower() or _row_version(target) or ctx.OperationCreatedOn
    try:
        notice = ChangeNotice(
            system="dataverse",
            entity=ctx.PrimaryEntityName,
            ids=(record_id,),
            operation=operation,  # type: ignore[arg-type]
            observed_at=parse_ms_date(ctx.OperationCreatedOn),
            source=f"/dataverse/{ctx.OrganizationId.lower()}",
            origin="webhook",
            version=version,
            detail=detail,
        )
        # the records the deleted row's pre-image names: changed by the deletion (their version
        # is the operation's, so a redelivery of the Delete is the same notice again)
        announced = [
            notice.model_copy(
                update={
                    "entity": entity,
                    "ids": (parent_id,),
                    "operation": "updated",
                    "detail": {**detail, "via": f"{ctx.PrimaryEntityName} {record_id} deleted"},
                }
            )
            for entity, parent_id in parents
        ]
    except ValidationError as exc:
        raise _rejected(400, _first_error(exc)) from exc
    return [notice, *announced]


def _target(ctx: RemoteExecutionContext) -> dict[str, Any] | None:
    for param in ctx.InputParameters or []:
        if param.key == "Target":
            if not isinstance(param.value, dict):
                raise _rejected(400, "InputParameters.Target must be an Entity or EntityReference object")
            return param.value
    return None


def _pre_image(ctx: RemoteExecutionContext, record_id: str) -> dict[str, Any]:
    """The attributes of the context's pre-entity images ({logical name: value}), each image
    checked to be an Entity of the primary row."""
    values: dict[str, Any] = {}
    for image in ctx.PreEntityImages or []:
        where = f"PreEntityImages.{image.key[:40]}"
        entity = image.value
        if not isinstance(entity, dict):
            raise _rejected(400, f"{where} must be an Entity object")
        logical = entity.get("LogicalName")
        if logical is not None and logical != ctx.PrimaryEntityName:
            raise _rejected(
                400,
                f"{where}.LogicalName {logical!r} does not match PrimaryEntityName {ctx.PrimaryEntityName!r}",
            )
        image_id = str(entity.get("Id") or "")
        if image_id and image_id != "00000000-0000-0000-0000-000000000000" and image_id.lower() != record_id:
            raise _rejected(400, f"{where}.Id does not match PrimaryEntityId")
        attributes = entity.get("Attributes")
        if attributes is None:
            continue
        if not isinstance(attributes, list):
            raise _rejected(400, f"{where}.Attributes must be a list of {{key, value}}")
        for item in attributes:
            if not isinstance(item, dict) or not isinstance(item.get("key"), str):
                raise _rejected(400, f"{where}.Attributes items must be {{key, value}} objects")
            values[item["key"]] = item.get("value")
    return values


def _reference(image: Mapping[str, Any], column: str) -> tuple[str, str] | None:
    """(table, id) of the EntityReference the image holds in lookup `column`; None when the
    image lacks it (no image registered, an empty lookup, or dropped for size)."""
    value = image.get(column)
    if value is None:
        return None
    where = f"PreEntityImages attribute {column!r}"
    if not isinstance(value, dict):
        raise _rejected(400, f"{where} must be an EntityReference object {{Id, LogicalName}}")
    ref_id, logical = value.get("Id"), value.get("LogicalName")
    if not isinstance(ref_id, str) or not re.fullmatch(GUID_PATTERN[1:-1], ref_id):
        raise _rejected(400, f"{where}: Id must be a GUID")
    if not isinstance(logical, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", logical):
        raise _rejected(400, f"{where}: LogicalName must be a Dataverse table logical name")
    return logical, ref_id.lower()


def _attribute_names(target: Mapping[str, Any], *, primary_id: str) -> list[str]:
    attributes = target.get("Attributes")
    if attributes is None:
        return []
    if not isinstance(attributes, list):
        raise _rejected(400, "InputParameters.Target.Attributes must be a list of {key, value}")
    names = set()
    for item in attributes:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise _rejected(400, "InputParameters.Target.Attributes items must be {key, value} objects")
        name = item["key"]
        if not re.match(r"^[a-z_][a-z0-9_]{0,99}$", name):
            raise _rejected(400, f"attribute name {name[:40]!r} is not a Dataverse logical name")
        if name != primary_id and name not in SYSTEM_STAMPS:
            names.add(name)
    return sorted(names)


def _row_version(target: Mapping[str, Any] | None) -> str | None:
    if target is None:
        return None
    value = target.get("RowVersion")
    return str(value) if value else None
