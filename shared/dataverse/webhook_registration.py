"""Registers the integration's Dataverse webhook: one `serviceendpoint` (contract 8, HttpHeader
auth), one `sdkmessageprocessingstep` per (table, message) and, where a step needs one, its
pre-entity image (`sdkmessageprocessingstepimage`, imagetype 0, reference §7.1), through the Web API.

Idempotent: it compares the desired state with what is registered and only creates, updates
or deletes the difference. `authvalue` is write-only in Dataverse, so the endpoint's
`description` records a fingerprint (hash) of url + auth value to detect secret rotation.
`dry_run=True` computes the same actions without writing. The lead wires this into
`syncctl webhooks register --dataverse`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from shared.dataverse import odata
from shared.dataverse.errors import DataverseError

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient

WEBHOOK_CONTRACT = 8
AUTH_HTTP_HEADER = 5
STAGE_POST_OPERATION = 40
MODE_ASYNC = 1
STEP_PREFIX = "bpi-sync:"
MESSAGES = ("Create", "Update", "Delete")
IMAGE_PRE = 0  # sdkmessageprocessingstepimage.imagetype: 0 PreImage, 1 PostImage, 2 Both
PRE_IMAGE_ALIAS = "PreImage"  # the key of the image in the context's PreEntityImages


@dataclass(frozen=True)
class StepSpec:
    """One processing step: fire the webhook on `message` of `entity`; with `pre_image`, the
    step's pre-entity image carries those columns of the row as it was (a Delete's only way to
    say more than the deleted row's id)."""

    entity: str
    message: Literal["Create", "Update", "Delete"]
    filtering_attributes: tuple[str, ...] = ()
    mode: int = MODE_ASYNC
    stage: int = STAGE_POST_OPERATION
    rank: int = 1
    pre_image: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{STEP_PREFIX} {self.entity} {self.message}"

    @property
    def image_name(self) -> str:
        return f"{self.name} {PRE_IMAGE_ALIAS}"

    def validate(self) -> None:
        odata.prop(self.entity)
        if self.message not in MESSAGES:
            raise ValueError(f"step {self.name!r}: message must be one of {', '.join(MESSAGES)}")
        if self.filtering_attributes and self.message != "Update":
            raise ValueError(f"step {self.name!r}: filtering attributes apply to Update steps only")
        for attr in self.filtering_attributes:
            odata.prop(attr)
        if self.mode not in (0, 1):
            raise ValueError(f"step {self.name!r}: mode must be 0 (sync) or 1 (async)")
        if self.stage not in (10, 20, 40):
            raise ValueError(f"step {self.name!r}: stage must be 10, 20 or 40")
        if self.mode == MODE_ASYNC and self.stage != STAGE_POST_OPERATION:
            raise ValueError(f"step {self.name!r}: asynchronous steps must use stage 40 (post-operation)")
        if self.pre_image and self.message == "Create":
            raise ValueError(f"step {self.name!r}: a Create has no pre-entity image (the row did not exist)")
        for attr in self.pre_image:
            odata.prop(attr)


def entity_steps(environ: Mapping[str, str] | None = None) -> list[StepSpec]:
    """The steps every synced entity needs (shared/sync/registry.py): the messages (Create,
    Update, Delete by default) of each Dataverse table its spec watches, Update filtered to the
    columns its mapping reads (the mapping file named by the spec's setting in `environ`, default
    os.environ). A table of which the mapping reads no column gets no step: products are watched
    (Update only) while mappings/products.yaml gives Dynamics a field group to write back."""
    import os

    from shared.sync.registry import ENTITIES
    from shared.sync.spec import load

    env = os.environ if environ is None else environ
    steps: list[StepSpec] = []
    for spec in ENTITIES:
        loader = cast("Callable[[str | None], Any]", load(spec.mapping_loader))
        mapping = loader(env.get(spec.mapping_setting) or None)
        for table in spec.dataverse_tables:
            columns = cast("Callable[[Any], Sequence[str]]", load(table.columns))(mapping)
            ignored = (f"{table.logical_name}id", "modifiedon")
            watched = tuple(sorted(c for c in columns if c not in ignored))
            if not watched:  # the mapping reads nothing of this table (products' write-back off)
                continue
            for message in table.messages:
                attributes = watched if message == "Update" else ()
                image = table.delete_image if message == "Delete" else ()
                steps.append(
                    StepSpec(table.logical_name, message, filtering_attributes=attributes, pre_image=image)
                )
    return steps


@dataclass(frozen=True)
class Action:
    kind: Literal["create", "update", "delete", "unchanged"]
    resource: Literal["serviceendpoint", "step", "image"]
    name: str
    changes: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        detail = f" ({', '.join(f'{k}={v}' for k, v in self.changes.items())})" if self.changes else ""
        return f"{self.kind} {self.resource} {self.name!r}{detail}"


def auth_value(function_key: str, secret: str, secret_header: str) -> str:
    """HttpHeader auth settings: the Functions key header plus our shared-secret header.

    Headers, not HttpQueryString (or WebhookKey's `?code=`): URL logs keep query strings, and
    the ingress accepts the shared secret only as a header.
    """
    return (
        "<settings>"
        f'<setting name="x-functions-key" value={quoteattr(function_key)} />'
        f"<setting name={quoteattr(secret_header)} value={quoteattr(secret)} />"
        "</settings>"
    )


def _fingerprint(url: str, value: str) -> str:
    return hashlib.sha256(f"{url}\n{value}".encode()).hexdigest()[:16]


def _description(fingerprint: str) -> str:
    return f"Managed by brightpearl-dynamics-sync (syncctl webhooks register). auth-fingerprint={fingerprint}"


def sync_dataverse_webhooks(
    client: DataverseClient,
    *,
    ingress_url: str,
    function_key: str,
    secret: str,
    steps: Sequence[StepSpec],
    dry_run: bool,
    endpoint_name: str = "bpi-sync-ingress",
    secret_header: str = "x-bpi-webhook-secret",  # noqa: S107 - a header name, not a secret
) -> list[Action]:
    parts = urlsplit(ingress_url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"ingress_url must be https (http only on loopback), got {ingress_url!r}")
    if not function_key or not secret:
        raise ValueError("function_key and secret are required")
    if not steps:
        raise ValueError("at least one step is required")
    for spec in steps:
        spec.validate()
    if len({s.name for s in steps}) != len(steps):
        raise ValueError("each (entity, message) may appear once")

    actions: list[Action] = []
    value = auth_value(function_key, secret, secret_header)
    description = _description(_fingerprint(ingress_url, value))
    endpoint_body = {
        "name": endpoint_name,
        "url": ingress_url,
        "contract": WEBHOOK_CONTRACT,
        "authtype": AUTH_HTTP_HEADER,
        "authvalue": value,
        "description": description,
    }

    existing = list(
        client.query(
            "serviceendpoints",
            select=["serviceendpointid", "name", "url", "contract", "authtype", "description"],
            filter=odata.eq("name", endpoint_name),
        )
    )
    endpoint_id: str | None
    if not existing:
        actions.append(Action("create", "serviceendpoint", endpoint_name, {"url": ingress_url}))
        endpoint_id = None if dry_run else client.create("serviceendpoints", endpoint_body)
    else:
        current = existing[0]
        endpoint_id = current.id
        changes: dict[str, Any] = {}
        if current.get("url") != ingress_url:
            changes["url"] = ingress_url
        if current.get("contract") != WEBHOOK_CONTRACT or current.get("authtype") != AUTH_HTTP_HEADER:
            changes["authtype"] = "HttpHeader"
        if current.get("description") != description:
            changes["auth"] = "rotated"
        if changes:
            actions.append(Action("update", "serviceendpoint", endpoint_name, changes))
            if not dry_run:
                assert endpoint_id is not None
                client.update("serviceendpoints", endpoint_id, endpoint_body)
        else:
            actions.append(Action("unchanged", "serviceendpoint", endpoint_name))

    registered: dict[str, Any] = {}
    if endpoint_id is not None:
        for step in client.query(
            "sdkmessageprocessingsteps",
            select=[
                "sdkmessageprocessingstepid",
                "name",
                "stage",
                "mode",
                "rank",
                "filteringattributes",
                "_sdkmessageid_value",
                "_sdkmessagefilterid_value",
            ],
            filter=odata.lookup_eq("eventhandler", endpoint_id),
        ):
            registered[str(step.get("name"))] = step
    images = _registered_images(client, registered.values())

    for spec in steps:
        message_id, filter_id = _message_and_filter(client, spec)
        desired = {
            "name": spec.name,
            "description": f"{spec.message} of {spec.entity} -> {endpoint_name}",
            "stage": spec.stage,
            "mode": spec.mode,
            "rank": spec.rank,
            "supporteddeployment": 0,
            "asyncautodelete": spec.mode == MODE_ASYNC,
            "filteringattributes": ",".join(sorted(spec.filtering_attributes)) or None,
        }
        binds = {
            "sdkmessageid@odata.bind": odata.bind("sdkmessages", message_id),
            "sdkmessagefilterid@odata.bind": odata.bind("sdkmessagefilters", filter_id),
        }
        current = registered.pop(spec.name, None)
        if current is None:
            actions.append(
                Action(
                    "create",
                    "step",
                    spec.name,
                    {"filteringattributes": desired["filteringattributes"], "mode": spec.mode},
                )
            )
            step_id = None
            if not dry_run:
                assert endpoint_id is not None
                step_id = client.create(
                    "sdkmessageprocessingsteps",
                    {
                        **desired,
                        **binds,
                        "eventhandler_serviceendpoint@odata.bind": odata.bind(
                            "serviceendpoints", endpoint_id
                        ),
                    },
                )
            actions += _sync_image(client, spec, step_id, [], dry_run=dry_run)
            continue
        changes = {
            k: desired[k]
            for k in ("stage", "mode", "rank", "filteringattributes")
            if _norm(current.get(k)) != _norm(desired[k])
        }
        if current.lookup("sdkmessageid") != message_id or current.lookup("sdkmessagefilterid") != filter_id:
            changes["message"] = spec.message
        if changes:
            actions.append(Action("update", "step", spec.name, changes))
            if not dry_run:
                assert current.id is not None
                client.update("sdkmessageprocessingsteps", current.id, {**desired, **binds})
        else:
            actions.append(Action("unchanged", "step", spec.name))
        actions += _sync_image(
            client, spec, current.id, images.get(str(current.id).lower(), []), dry_run=dry_run
        )

    for name, stale in sorted(registered.items()):
        if not name.startswith(STEP_PREFIX):
            continue  # someone else's step on our endpoint: leave it alone
        for image in images.get(str(stale.id).lower(), []):  # its images go with it
            actions.append(Action("delete", "image", str(image.get("name"))))
            if not dry_run:
                assert image.id is not None
                client.delete("sdkmessageprocessingstepimages", image.id)
        actions.append(Action("delete", "step", name))
        if not dry_run:
            assert stale.id is not None
            client.delete("sdkmessageprocessingsteps", stale.id)
    return actions


IMAGE_COLUMNS = ("imagetype", "entityalias", "messagepropertyname", "attributes")


def _registered_images(client: DataverseClient, steps: Iterable[Any]) -> dict[str, list[Any]]:
    """Our images (named with STEP_PREFIX) of the registered steps, by lower-case step id (one
    query)."""
    step_ids = {str(s.id).lower() for s in steps if s.id is not None}
    if not step_ids:
        return {}
    found: dict[str, list[Any]] = {}
    for image in client.query(
        "sdkmessageprocessingstepimages",
        select=[
            "sdkmessageprocessingstepimageid",
            "name",
            *IMAGE_COLUMNS,
            "_sdkmessageprocessingstepid_value",
        ],
        filter=odata.startswith("name", STEP_PREFIX),
    ):
        step_id = str(image.lookup("sdkmessageprocessingstepid") or "").lower()
        if step_id in step_ids:
            found.setdefault(step_id, []).append(image)
    return found


def _sync_image(
    client: DataverseClient, spec: StepSpec, step_id: str | None, current: list[Any], *, dry_run: bool
) -> list[Action]:
    """The step's pre-entity image (`spec.pre_image`) created, updated or removed to match; our
    other images on the step (an older name) removed."""
    actions: list[Action] = []
    mine = next((i for i in current if i.get("name") == spec.image_name), None)
    for other in current:
        if other is not mine:
            actions.append(Action("delete", "image", str(other.get("name"))))
            if not dry_run:
                client.delete("sdkmessageprocessingstepimages", other.id)
    if not spec.pre_image:
        if mine is not None:
            actions.append(Action("delete", "image", spec.image_name))
            if not dry_run:
                client.delete("sdkmessageprocessingstepimages", mine.id)
        return actions
    desired = {
        "name": spec.image_name,
        "imagetype": IMAGE_PRE,
        "entityalias": PRE_IMAGE_ALIAS,
        "messagepropertyname": "Target",
        "attributes": ",".join(sorted(spec.pre_image)),
    }
    if mine is None:
        actions.append(Action("create", "image", spec.image_name, {"attributes": desired["attributes"]}))
        if not dry_run and step_id is not None:
            client.create(
                "sdkmessageprocessingstepimages",
                {
                    **desired,
                    "sdkmessageprocessingstepid@odata.bind": odata.bind("sdkmessageprocessingsteps", step_id),
                },
            )
        return actions
    changes = {k: desired[k] for k in IMAGE_COLUMNS if _norm(mine.get(k)) != _norm(desired[k])}
    if changes:
        actions.append(Action("update", "image", spec.image_name, changes))
        if not dry_run:
            client.update("sdkmessageprocessingstepimages", mine.id, desired)
    else:
        actions.append(Action("unchanged", "image", spec.image_name))
    return actions


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return ",".join(sorted(v.strip() for v in value.split(",") if v.strip())) or None
    return value


def _message_and_filter(client: DataverseClient, spec: StepSpec) -> tuple[str, str]:
    messages = list(
        client.query("sdkmessages", select=["sdkmessageid", "name"], filter=odata.eq("name", spec.message))
    )
    if not messages or messages[0].id is None:
        raise DataverseError(f"sdkmessage {spec.message!r} not found")
    filters = list(
        client.query(
            "sdkmessagefilters",
            select=["sdkmessagefilterid", "primaryobjecttypecode"],
            filter=odata.eq("primaryobjecttypecode", spec.entity)
            & odata.eq("sdkmessageid/name", spec.message),
        )
    )
    if not filters or filters[0].id is None:
        raise DataverseError(
            f"table {spec.entity!r} has no sdkmessagefilter for {spec.message!r}; is the table name right?"
        )
    return messages[0].id, filters[0].id
