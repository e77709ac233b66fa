"""The simulator's Web API behaves as the reference says (§12 must-haves), seen over raw HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET

CT = "Content-Type"


@pytest.fixture
def api(sim):
    token = httpx.post(
        sim.server.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "scope": f"{sim.url}/.default",
        },
    ).json()["access_token"]
    with httpx.Client(
        base_url=f"{sim.url}/api/data/v9.2/",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "OData-Version": "4.0"},
    ) as c:
        yield c


def err(resp: httpx.Response) -> tuple[int, str, str]:
    body = resp.json()["error"]
    return resp.status_code, body["code"], body["message"]


def new(api, entity_set: str, body: dict) -> str:
    resp = api.post(entity_set, json=body)
    assert resp.status_code == 204, resp.text
    return resp.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_token_endpoint_errors(sim):
    url = sim.server.token_url
    bad_secret = httpx.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": "nope",
            "scope": f"{sim.url}/.default",
        },
    )
    assert bad_secret.status_code == 401 and bad_secret.json()["error"] == "invalid_client"
    bad_scope = httpx.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "scope": "https://other/.default",
        },
    )
    assert bad_scope.json()["error"] == "invalid_scope"
    wrong_tenant = httpx.post(f"{sim.url}/not-a-tenant/oauth2/v2.0/token", data={})
    assert "AADSTS90002" in wrong_tenant.json()["error_description"]


def test_unauthenticated_requests_get_401_with_authorization_uri(sim):
    resp = httpx.get(f"{sim.url}/api/data/v9.2/contacts")
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith(
        "Bearer authorization_uri=https://login.microsoftonline.com/"
    )


def test_headers_and_names_are_case_sensitive(api):
    resp = api.get("Contacts")
    assert err(resp) == (404, "0x8006088a", "Resource not found for the segment 'Contacts'.")
    assert resp.headers["OData-Version"] == "4.0"
    assert resp.headers["Content-Type"] == "application/json; odata.metadata=minimal"
    assert err(api.get("contacts", params={"$select": "FullName"})) == (
        400,
        "0x0",
        "Could not find a property named 'FullName' on type 'Microsoft.Dynamics.CRM.contact'.",
    )
    status, _, message = err(api.post("contacts", json={"LastName": "x"}))
    assert (
        status == 400
        and "Invalid property 'LastName' was found in entity 'Microsoft.Dynamics.CRM.contact'" in message
    )
    assert api.patch("contacts", json={}).status_code == 405
    assert api.get("WhoAmI").json()["UserId"]
    assert api.post("WhoAmI").status_code == 404


def test_create_with_representation_and_upsert_statuses(api):
    resp = api.post(
        "contacts?$select=lastname", json={"lastname": "R"}, headers={"Prefer": "return=representation"}
    )
    assert resp.status_code == 201 and "OData-EntityId" not in resp.headers
    assert resp.headers["Preference-Applied"] == "return=representation"
    body = resp.json()
    assert body["@odata.context"].endswith("$metadata#contacts(lastname)/$entity")
    assert set(body) == {"@odata.context", "@odata.etag", "lastname", "contactid"}

    key = "contacts(bpi_brightpearlid='K1')"
    assert api.patch(key, json={"lastname": "a"}, headers={"If-Match": "*"}).status_code == 404
    first = api.patch(key, json={"lastname": "a"})
    assert first.status_code == 204 and first.headers["OData-EntityId"].endswith(key)
    assert err(api.patch(key, json={"lastname": "b"}, headers={"If-None-Match": "*"}))[:2] == (
        412,
        "0x80040237",
    )
    rep = api.patch(key, json={"lastname": "c"}, headers={"Prefer": "return=representation"})
    assert rep.status_code == 200 and rep.headers["ETag"] == rep.json()["@odata.etag"]


def test_etags_conditional_get_and_delete(api):
    cid = new(api, "contacts", {"lastname": "E"})
    etag = api.get(f"contacts({cid})").json()["@odata.etag"]
    assert api.get(f"contacts({cid})", headers={"If-None-Match": etag}).status_code == 304
    annotated = api.get(
        f"contacts({cid})", headers={"If-None-Match": etag, "Prefer": 'odata.include-annotations="*"'}
    )
    assert annotated.status_code == 200  # never 304 with annotations
    api.patch(f"contacts({cid})", json={"lastname": "E2"})
    assert err(api.delete(f"contacts({cid})", headers={"If-Match": etag}))[:2] == (412, "0x80060882")
    assert api.delete(f"contacts({cid})").status_code == 204
    assert err(api.delete(f"contacts({cid})")) == (
        404,
        "0x80040217",
        f"contact With Id = {cid} Does Not Exist",
    )


def test_key_forms(api):
    assert err(api.get("contacts(emailaddress1='x')"))[0] == 400
    assert "The key in the request URI is not valid" in err(api.get("contacts(emailaddress1='x')"))[2]
    aid = new(api, "accounts", {"name": "K", "accountnumber": "AN-1"})
    assert api.get("accounts(accountnumber='AN-1')").json()["accountid"] == aid
    assert api.get(f"accounts(accountid={aid})").json()["accountid"] == aid


def test_restrict_and_cascade_deletes(api):
    cid = new(api, "contacts", {"lastname": "Owner"})
    pl = api.get("pricelevels").json()["value"][0]["pricelevelid"]
    order = new(
        api,
        "salesorders",
        {
            "name": "O",
            "customerid_contact@odata.bind": f"/contacts({cid})",
            "pricelevelid@odata.bind": f"/pricelevels({pl})",
        },
    )
    case = new(api, "incidents", {"title": "Case", "customerid_contact@odata.bind": f"/contacts({cid})"})
    assert err(api.delete(f"contacts({cid})"))[:2] == (405, "0x80040227")
    assert api.delete(f"salesorders({order})").status_code == 204
    assert api.delete(f"contacts({cid})").status_code == 204
    assert api.get(f"incidents({case})").status_code == 404  # cascaded


def test_validation_codes(api):
    status, code, message = err(api.post("contacts", json={"lastname": "x" * 51}))
    assert (status, code) == (400, "0x80044331")
    assert message == (
        "A validation error occurred.  The length of the 'lastname' attribute of the 'contact' "
        "entity exceeded the maximum allowed length of '50'."
    )
    assert err(api.post("accounts", json={"name": "x", "customertypecode": 99}))[0] == 400
    assert api.post("accounts", json={}).status_code == 204  # ApplicationRequired is not enforced
    assert err(api.post("products", json={"name": "no number"}))[0] == 400  # productnumber SystemRequired


def test_duplicate_detection_only_when_asked(api):
    new(api, "contacts", {"lastname": "D", "emailaddress1": "dup@example.com"})
    assert api.post("contacts", json={"lastname": "D", "emailaddress1": "dup@example.com"}).status_code == 204
    resp = api.post(
        "contacts",
        json={"lastname": "D", "emailaddress1": "dup@example.com"},
        headers={"MSCRM.SuppressDuplicateDetection": "false"},
    )
    assert err(resp)[:2] == (412, "0x80040333")


def test_state_machines_and_actions(api):
    cid = new(api, "contacts", {"lastname": "S"})
    case = new(api, "incidents", {"title": "Broken", "customerid_contact@odata.bind": f"/contacts({cid})"})
    status, _, message = err(api.patch(f"incidents({case})", json={"statecode": 1}))
    assert status == 400 and "use the CloseIncidentRequest message instead" in message
    assert (
        api.post(
            "CloseIncident",
            json={
                "IncidentResolution": {
                    "@odata.type": "Microsoft.Dynamics.CRM.incidentresolution",
                    "subject": "Fixed",
                    "incidentid@odata.bind": f"/incidents({case})",
                },
                "Status": 5,
            },
        ).status_code
        == 204
    )
    resolved = api.get(f"incidents({case})", params={"$select": "statecode,statuscode,ticketnumber"}).json()
    assert (resolved["statecode"], resolved["statuscode"]) == (1, 5)
    assert resolved["ticketnumber"].startswith("CAS-")

    pl = api.get("pricelevels").json()["value"][0]["pricelevelid"]
    order = new(
        api,
        "salesorders",
        {
            "name": "O",
            "customerid_contact@odata.bind": f"/contacts({cid})",
            "pricelevelid@odata.bind": f"/pricelevels({pl})",
            "freightamount": 5,
        },
    )
    new(
        api,
        "salesorderdetails",
        {
            "salesorderid@odata.bind": f"/salesorders({order})",
            "isproductoverridden": True,
            "productdescription": "Widget",
            "quantity": 2,
            "priceperunit": 10.0,
            "tax": 1.5,
        },
    )
    totals = api.get(f"salesorders({order})").json()
    assert (totals["totallineitemamount"], totals["totaltax"], totals["totalamount"]) == (20.0, 1.5, 26.5)
    assert totals["ordernumber"].startswith("ORD-") and totals["_transactioncurrencyid_value"]
    assert (
        api.post(
            "salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder",
            json={
                "OrderClose": {
                    "@odata.type": "Microsoft.Dynamics.CRM.orderclose",
                    "subject": "Shipped",
                    "salesorderid@odata.bind": f"/salesorders({order})",
                },
                "Status": 100001,
            },
        ).status_code
        == 204
    )
    assert api.get(f"salesorders({order})").json()["statecode"] == 3
    assert err(api.patch(f"salesorders({order})", json={"name": "late edit"}))[0] == 400  # only active orders
    assert api.get("salesorders/Microsoft.Dynamics.CRM.FulfillSalesOrder").status_code == 404


def test_products_start_as_draft_and_publish(api):
    schedule = api.get("uomschedules").json()["value"][0]["uomscheduleid"]
    family = new(
        api,
        "products",
        {
            "name": "Family",
            "productnumber": "F-1",
            "productstructure": 2,
            "defaultuomscheduleid@odata.bind": f"/uomschedules({schedule})",
        },
    )
    child = new(
        api,
        "products",
        {"name": "Child", "productnumber": "C-1", "parentproductid@odata.bind": f"/products({family})"},
    )
    assert api.get(f"products({family})").json()["statecode"] == 2  # Draft
    assert err(api.patch(f"products({child})", json={"statecode": 0, "statuscode": 1}))[0] == 400
    assert api.post(f"products({family})/Microsoft.Dynamics.CRM.PublishProductHierarchy").status_code == 204
    assert api.get(f"products({child})").json()["statecode"] == 0


def test_query_options(api):
    for name in ("Beta", "alpha", "Gamma"):
        new(api, "accounts", {"name": name, "revenue": len(name) * 100.0})
    resp = api.get(
        "accounts",
        params={"$select": "name", "$orderby": "name desc", "$count": "true", "$filter": "revenue ge 500"},
    )
    assert [r["name"] for r in resp.json()["value"]] == ["Gamma", "alpha"]
    assert resp.json()["@odata.count"] == 2
    assert api.get("accounts/$count").text == "3"
    assert api.get("accounts/$count").headers["content-type"].startswith("text/plain")
    assert api.get("accounts", params={"$skip": "1"}).status_code == 400
    top = api.get("accounts", params={"$top": "1"}, headers={"Prefer": "odata.maxpagesize=2"})
    assert len(top.json()["value"]) == 2  # $top ignored with maxpagesize
    assert top.headers["Preference-Applied"] == "odata.maxpagesize=2"
    link = top.json()["@odata.nextLink"]
    assert "$skiptoken=" in link
    assert api.get(link.replace("%22", "%27")).status_code == 400  # an edited skip token is refused
    assert len(api.get(link, headers={"Prefer": "odata.maxpagesize=2"}).json()["value"]) == 1


def test_expand_and_lookup_paths(api):
    aid = new(api, "accounts", {"name": "Parent Co"})
    new(api, "contacts", {"lastname": "Kid", "parentcustomerid_account@odata.bind": f"/accounts({aid})"})
    found = api.get(
        "contacts",
        params={
            "$filter": "parentcustomerid_account/name eq 'parent co'",
            "$select": "lastname",
            "$expand": "parentcustomerid_account($select=name)",
        },
    ).json()["value"]
    assert found[0]["parentcustomerid_account"]["name"] == "Parent Co"
    acc = api.get(
        f"accounts({aid})", params={"$expand": "contact_customer_accounts($select=lastname)"}
    ).json()
    assert [c["lastname"] for c in acc["contact_customer_accounts"]] == ["Kid"]
    guid_quoted = api.get("contacts", params={"$filter": f"_parentcustomerid_value eq '{aid}'"}).json()[
        "value"
    ]
    assert len(guid_quoted) == 1


def test_batch_protocol_details(api, sim):
    bare_lf = "--b\nContent-Type: application/http\n\nGET /api/data/v9.2/accounts HTTP/1.1\n\n--b--\n"
    resp = api.post("$batch", content=bare_lf, headers={CT: "multipart/mixed; boundary=b"})
    assert err(resp)[1] == "0x80048d19" and "Stream was not readable" in err(resp)[2]
    body = (
        "--b\r\nContent-Type: multipart/mixed; boundary=cs\r\n\r\n"
        "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        'POST /api/data/v9.2/accounts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{"name":"Ref"}\r\n'
        "--cs\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 2\r\n\r\n"
        "POST /api/data/v9.2/contacts HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        '{"lastname":"ByRef","parentcustomerid_account@odata.bind":"$1"}\r\n'
        "--cs--\r\n--b--\r\n"
    )
    resp = api.post("$batch", content=body, headers={CT: "multipart/mixed; boundary=b"})
    assert resp.status_code == 200 and "boundary=batchresponse_" in resp.headers["content-type"]
    assert "changesetresponse_" in resp.text and "Content-ID: 2" in resp.text
    contact = api.get("contacts", params={"$filter": "lastname eq 'ByRef'"}).json()["value"][0]
    assert contact["_parentcustomerid_value"]
    forward = body.replace('"$1"', '"$9"')
    resp = api.post("$batch", content=forward, headers={CT: "multipart/mixed; boundary=b"})
    assert (
        resp.status_code == 400
        and "Content-ID Reference: '$9' does not exist in the batch context." in resp.text
    )
    stop = (
        "--b\r\nContent-Type: application/http\r\n\r\nPOST /api/data/v9.2/contacts HTTP/1.1\r\n"
        'Content-Type: application/json\r\n\r\n{"lastname":"' + "x" * 60 + '"}\r\n'
        "--b\r\nContent-Type: application/http\r\n\r\nPOST /api/data/v9.2/contacts HTTP/1.1\r\n"
        'Content-Type: application/json\r\n\r\n{"lastname":"after"}\r\n--b--\r\n'
    )
    resp = api.post("$batch", content=stop, headers={CT: "multipart/mixed; boundary=b"})
    assert resp.status_code == 400  # stop at the first error: outer status is the failing one
    assert api.get("contacts", params={"$filter": "lastname eq 'after'"}).json()["value"] == []


def test_bulk_messages(api):
    ok = api.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "M1"},
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "M2"},
            ]
        },
    )
    assert ok.status_code == 200 and len(ok.json()["Ids"]) == 2
    no_type = api.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [{"lastname": "x"}]}
    )
    assert no_type.status_code == 400
    rollback = api.post(
        "contacts/Microsoft.Dynamics.CRM.CreateMultiple",
        json={
            "Targets": [
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "Kept?"},
                {"@odata.type": "Microsoft.Dynamics.CRM.contact", "lastname": "x" * 51},
            ]
        },
    )
    assert rollback.status_code == 400
    assert api.get("contacts", params={"$filter": "lastname eq 'Kept?'"}).json()["value"] == []
    delete = api.post("contacts/Microsoft.Dynamics.CRM.DeleteMultiple", json={"Targets": []})
    assert err(delete)[2] == "DeleteMultiple has not yet been implemented."
    assert (
        api.post(
            "tasks/Microsoft.Dynamics.CRM.UpsertMultiple",
            json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.task", "subject": "x"}]},
        ).status_code
        == 400
    )
    filters = api.get(
        "sdkmessagefilters",
        params={"$filter": "sdkmessageid/name eq 'CreateMultiple' and primaryobjecttypecode eq 'contact'"},
    ).json()
    assert len(filters["value"]) == 1  # the documented support probe


def test_change_tracking_rejects_query_options(api):
    resp = api.get(
        "contacts", params={"$filter": "lastname eq 'x'"}, headers={"Prefer": "odata.track-changes"}
    )
    assert err(resp)[2] == 'The "$filter" query parameter isn\'t supported when Change Tracking is enabled.'
    tracked = api.get("contacts", params={"$select": "lastname"}, headers={"Prefer": "odata.track-changes"})
    assert tracked.headers["Preference-Applied"] == "odata.track-changes"
    cid = new(api, "contacts", {"lastname": "gone"})
    api.delete(f"contacts({cid})")
    delta = api.get(tracked.json()["@odata.deltaLink"]).json()
    assert delta["@odata.context"].endswith("/$delta")
    assert delta["value"] == [
        {"@odata.context": delta["value"][0]["@odata.context"], "id": cid, "reason": "deleted"}
    ]
    assert delta["value"][0]["@odata.context"].endswith("$metadata#contacts/$deletedEntity")


def test_admin_surface(sim):
    created = sim.admin.call(
        "POST", "seed", {"contacts": 6, "accounts": 2, "products": 2, "orders": 2, "cases": 1}
    )
    assert created["created"] == {"account": 2, "contact": 6, "product": 2, "salesorder": 2, "incident": 1}
    assert sim.admin.call("GET", "tables")["contact"] == 6
    assert all("@" in r["emailaddress1"] for r in sim.admin.rows("contact"))
    with pytest.raises(AssertionError):
        sim.admin.config(no_such_knob=1)
    with pytest.raises(AssertionError):
        sim.admin.fault(kind="418")
    assert json.loads(json.dumps(sim.admin.call("GET", "config")))["window_seconds"] == 300.0
