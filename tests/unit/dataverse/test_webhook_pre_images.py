"""A Delete step's pre-entity image (reference §7.1-7.2): `syncctl webhooks register` gives the
salesorderdetail Delete step an image of the line's `salesorderid` once, and the ingress turns a
line's Delete into a notice of its order too (the deleted line can no longer be read)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.dataverse.webhook import WebhookRejected, parse_webhook
from shared.dataverse.webhook_registration import StepSpec, entity_steps
from shared.sync.registry import ENTITIES
from shared.sync.spec import delete_images
from tests.unit.dataverse.test_webhooks_end_to_end import receiver, register

__all__ = ["receiver"]

SAMPLES = Path(__file__).parent / "samples"
ORG = "a3b1c2d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
LINE = "7c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e"
ORDER = "3a4b5c6d-7e8f-4091-a2b3-c4d5e6f7a8b9"
IMAGES = {"salesorderdetail": ("salesorderid",)}
HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "x-ms-dynamics-entity-name": "salesorderdetail",
    "x-ms-dynamics-request-name": "Delete",
}
LINE_DELETE = StepSpec("salesorderdetail", "Delete", pre_image=("salesorderid",))
STEPS = [StepSpec("salesorderdetail", "Update", filtering_attributes=("quantity",)), LINE_DELETE]


def line_delete(**image: Any) -> dict[str, Any]:
    body = json.loads((SAMPLES / "delete_salesorderdetail.json").read_text())
    body["PreEntityImages"][0]["value"].update(image)
    return body


def parse(body: dict[str, Any], images: dict[str, tuple[str, ...]] | None = IMAGES):
    return parse_webhook(json.dumps(body).encode(), HEADERS, organization_id=ORG, delete_images=images)


# -- parsing -----------------------------------------------------------------------------------------
def test_a_line_delete_with_its_pre_image_announces_its_order_as_updated():
    deleted, order = parse(line_delete())
    assert (deleted.entity, deleted.ids, deleted.operation) == ("salesorderdetail", (LINE,), "deleted")
    assert (order.entity, order.ids, order.operation) == ("salesorder", (ORDER,), "updated")
    assert order.detail["via"] == f"salesorderdetail {LINE} deleted"
    assert order.detail["initiating_user"] == deleted.detail["initiating_user"]
    assert order.source == deleted.source and order.observed_at == deleted.observed_at
    assert order.key != deleted.key  # two messages; a redelivery of the Delete repeats both keys
    assert [n.key for n in parse(line_delete())] == [deleted.key, order.key]
    assert "Web order" not in json.dumps(order.model_dump(mode="json"))  # ids, never values


def test_without_an_image_or_a_declared_table_only_the_line_is_announced():
    body = line_delete()
    assert [n.entity for n in parse(body, images=None)] == ["salesorderdetail"]  # table not declared
    body["PreEntityImages"] = []  # no image registered (or dropped for size): the backstop's job
    assert [n.entity for n in parse(body)] == ["salesorderdetail"]


@pytest.mark.parametrize(
    ("image", "named"),
    [
        ({"Attributes": "salesorderid"}, "PreEntityImages.PreImage.Attributes must be a list"),
        ({"Attributes": [["salesorderid", ORDER]]}, "PreEntityImages.PreImage.Attributes items"),
        ({"LogicalName": "salesorder"}, "PreEntityImages.PreImage.LogicalName 'salesorder' does not match"),
        ({"Id": ORDER}, "PreEntityImages.PreImage.Id does not match PrimaryEntityId"),
        (
            {"Attributes": [{"key": "salesorderid", "value": ORDER}]},
            "PreEntityImages attribute 'salesorderid' must be an EntityReference",
        ),
        (
            {"Attributes": [{"key": "salesorderid", "value": {"Id": "42", "LogicalName": "salesorder"}}]},
            "PreEntityImages attribute 'salesorderid': Id must be a GUID",
        ),
        (
            {"Attributes": [{"key": "salesorderid", "value": {"Id": ORDER, "LogicalName": "Sales Order"}}]},
            "PreEntityImages attribute 'salesorderid': LogicalName must be a Dataverse table logical name",
        ),
    ],
)
def test_a_malformed_pre_image_is_rejected_400_naming_the_field(image: dict[str, Any], named: str):
    with pytest.raises(WebhookRejected) as caught:
        parse(line_delete(**image))
    assert caught.value.status == 400
    assert named in caught.value.problem


def test_an_image_that_is_not_an_entity_is_rejected_400():
    body = line_delete()
    body["PreEntityImages"][0]["value"] = "salesorderid"
    with pytest.raises(WebhookRejected, match=r"PreEntityImages\.PreImage must be an Entity object"):
        parse(body)


# -- the spec and registration -----------------------------------------------------------------------
def test_the_orders_spec_gives_only_the_line_delete_step_the_order_pre_image():
    assert delete_images(ENTITIES) == IMAGES
    imaged = [(s.entity, s.message, s.pre_image) for s in entity_steps({}) if s.pre_image]
    assert imaged == [("salesorderdetail", "Delete", ("salesorderid",))]
    with pytest.raises(ValueError, match="a Create has no pre-entity image"):
        StepSpec("salesorderdetail", "Create", pre_image=("salesorderid",)).validate()


def images(client) -> list[dict[str, Any]]:
    rows = client.query(
        "sdkmessageprocessingstepimages",
        select=[
            "name",
            "imagetype",
            "entityalias",
            "messagepropertyname",
            "attributes",
            "_sdkmessageprocessingstepid_value",
        ],
    )
    return [
        {k: r.get(k) for k in ("name", "imagetype", "entityalias", "messagepropertyname", "attributes")}
        | {"step": r.lookup("sdkmessageprocessingstepid")}
        for r in rows
    ]


def step_id(client, name: str) -> str | None:
    return next(
        (s.id for s in client.query("sdkmessageprocessingsteps", select=["name"]) if s["name"] == name), None
    )


def test_registration_creates_the_pre_image_once_and_a_second_run_changes_nothing(client, receiver):
    _, url = receiver
    planned = register(client, url, steps=STEPS, dry_run=True)
    assert [str(a) for a in planned if a.resource == "image"] == [
        "create image 'bpi-sync: salesorderdetail Delete PreImage' (attributes=salesorderid)"
    ]
    assert images(client) == []  # the dry run wrote nothing

    register(client, url, steps=STEPS)
    expected = {
        "name": "bpi-sync: salesorderdetail Delete PreImage",
        "imagetype": 0,
        "entityalias": "PreImage",
        "messagepropertyname": "Target",
        "attributes": "salesorderid",
        "step": step_id(client, "bpi-sync: salesorderdetail Delete"),
    }
    assert images(client) == [expected]

    again = register(client, url, steps=STEPS)
    assert {a.kind for a in again} == {"unchanged"}
    assert [a.resource for a in again].count("image") == 1
    assert images(client) == [expected]

    wider = StepSpec("salesorderdetail", "Delete", pre_image=("salesorderid", "productid"))
    [changed] = [a for a in register(client, url, steps=[STEPS[0], wider]) if a.resource == "image"]
    assert (changed.kind, changed.changes) == ("update", {"attributes": "productid,salesorderid"})
    assert [i["attributes"] for i in images(client)] == ["productid,salesorderid"]

    plain = StepSpec("salesorderdetail", "Delete")
    assert [(a.kind, a.resource) for a in register(client, url, steps=[STEPS[0], plain])][-1] == (
        "delete",
        "image",
    )
    assert images(client) == []

    register(client, url, steps=STEPS)
    removed = register(client, url, steps=STEPS[:1])  # the Delete step leaves, and its image with it
    assert [(a.kind, a.resource) for a in removed if a.kind == "delete"] == [
        ("delete", "image"),
        ("delete", "step"),
    ]
    assert images(client) == []


# -- through the simulator: a CRM user deletes a line ----------------------------------------------------
def test_a_crm_users_line_delete_reaches_the_ingress_with_the_order_named(sim, client, receiver, monkeypatch):
    import functions.ingress_dataverse as ingress

    monkeypatch.setattr(ingress, "DELETE_IMAGES", IMAGES)
    rec, url = receiver
    register(client, url, steps=STEPS)
    order = client.create("salesorders", {"name": "Web order"})
    line = client.create(
        "salesorderdetails",
        {
            "salesorderid@odata.bind": f"/salesorders({order})",
            "isproductoverridden": True,
            "productdescription": "Gift wrap",
            "priceperunit": 2.5,
            "quantity": 1,
        },
    )
    sim.admin.crm("DELETE", f"salesorderdetails({line})")
    sim.admin.drain()

    notices = rec.notices()
    assert [(n.entity, n.ids, n.operation) for n in notices] == [
        ("salesorderdetail", (line,), "deleted"),
        ("salesorder", (order,), "updated"),
    ]


def test_syncctl_webhooks_register_dataverse_shows_the_image(sim, dataverse_server, monkeypatch):
    from rich.console import Console
    from typer.testing import CliRunner

    import syncctl.webhooks
    from syncctl.main import app
    from tests.unit.cli.test_backfill_cli import EXAMPLE

    values = dict(EXAMPLE, DATAVERSE_URL=dataverse_server.url, DATAVERSE_TOKEN_URL=dataverse_server.token_url)
    for name, value in values.items():  # set before the command reads its settings file: these win
        if value != "":
            monkeypatch.setenv(name, str(value))
    monkeypatch.setattr(syncctl.webhooks, "console", Console(width=250))  # rows on one line each
    args = ["webhooks", "register", "--dataverse", "--ingress-url", "http://127.0.0.1:7071/api"]
    args += ["--function-key", "k3y-for-tests"]

    def image_rows(*extra: str) -> list[list[str]]:
        result = CliRunner().invoke(app, [*args, *extra], terminal_width=200)
        assert result.exit_code == 0, result.output
        rows = [[c.strip() for c in line.split("│")[1:-1]] for line in result.output.splitlines()]
        return [r for r in rows if len(r) > 2 and r[2].startswith("image ")]

    assert image_rows("--dry-run") == [
        ["dataverse", "create", "image bpi-sync: salesorderdetail Delete PreImage", "attributes=salesorderid"]
    ]
    assert image_rows()[0][1] == "create"
    assert image_rows() == [
        ["dataverse", "unchanged", "image bpi-sync: salesorderdetail Delete PreImage", ""]
    ]
