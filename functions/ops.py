"""HTTP: the operations console under /api/ops/ (admin key; in the sandbox LOCAL_MASTER_KEY).

Pages (GET): `ops` the overview (flows, last errors, backlog, cursors, API budgets; `?hours=`),
`ops/data` the same figures as JSON, `ops/deadletters` (`?reason=&subscription=`),
`ops/deadletter?subscription=&id=` one dead letter's metadata and its fix, `ops/static/<file>`
the vendored chart library. Actions (POST, form fields `subscription`, `message_id` and
`confirm` equal to the action): `ops/deadletters/resubmit` and `ops/deadletters/purge`; each
is written to the audit (shared/ops/console.py). The data come through shared/ops and
shared.bus, the code `syncctl` uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

from shared import runtime
from shared.bus.backlog import Backlog
from shared.bus.deadletters import DeadLetterOps, LocalDeadLetters
from shared.bus.port import BusError
from shared.ops import console, metrics, runbook
from shared.ops.console_html import (
    Links,
    as_json,
    render_dead_letter,
    render_dead_letters,
    render_error,
    render_outcomes,
    render_overview,
)
from shared.telemetry import get_logger

bp = func.Blueprint()
log = get_logger("ops")
ADMIN = func.AuthLevel.ADMIN
STATIC_DIR = Path(__file__).resolve().parents[1] / "shared" / "ops" / "static"
STATIC = {"uPlot.iife.min.js": "text/javascript", "uPlot.min.css": "text/css"}


class BadRequest(ValueError):
    """A request parameter is missing or invalid; the message names it."""


def _links(req: func.HttpRequest) -> Links:
    path = urlsplit(req.url).path
    at = path.lower().find("/ops")
    return Links(path[: at + 4] if at >= 0 else "/api/ops", req.params.get("code"))


def _html(body: str, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        body,
        status_code=status,
        mimetype="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _hours(req: func.HttpRequest) -> float:
    raw = req.params.get("hours") or "24"
    try:
        hours = float(raw)
    except ValueError:
        raise BadRequest(f"hours: {raw!r} is not a number of hours") from None
    if not 0 < hours <= 24 * 90:
        raise BadRequest(f"hours: {raw!r} must be more than 0 and at most {24 * 90} (the audit retention)")
    return hours


def _pairs() -> list[tuple[str, str]]:
    """(topic, subscription) of every wired flow: its subscription is named after it."""
    from shared.sync import registry

    return [(runtime.topic(flow.topic_setting), flow.name) for flow in registry.flows()]


@contextmanager
def _dead_letter_ops() -> Iterator[DeadLetterOps]:
    bus = runtime.settings().bus
    if bus.backend == "local":
        yield LocalDeadLetters(runtime.publisher())  # the process's own LocalBus
        return
    from shared.bus.deadletters import ServiceBusDeadLetters

    ops = ServiceBusDeadLetters(bus)
    try:
        yield ops
    finally:
        ops.close()


def _backlog() -> list[Backlog]:
    bus = runtime.settings().bus
    if bus.backend == "local":
        return metrics.bus_backlog("local", _pairs(), bus=runtime.publisher())
    from shared.bus.servicebus import build_admin_client

    with build_admin_client(bus) as admin:
        return metrics.bus_backlog("servicebus", _pairs(), admin=admin)


def _budget() -> metrics.RequestBudget | None:
    budget = getattr(getattr(runtime.brightpearl(), "transport", None), "budget", None)
    return metrics.request_budget(budget) if budget is not None else None


def _dataverse() -> dict[str, int]:
    client = runtime.dataverse()
    return {"calls": client.calls, "retries": client.retries}


def _overview(req: func.HttpRequest) -> tuple[console.Overview, float]:
    from shared.sync import registry

    hours = _hours(req)
    now = runtime.clock()
    window = metrics.Window.last(hours, now)
    ov = console.overview(
        runtime.state_store(),
        window,
        flows=[f.name for f in registry.flows()],
        backlog=_backlog,
        budget=_budget,
        dataverse=_dataverse,
        now=now,
    )
    return ov, hours


@bp.function_name("ops_console")
@bp.route(route="ops", methods=["GET"], auth_level=ADMIN)
def ops_console(req: func.HttpRequest) -> func.HttpResponse:
    links = _links(req)
    try:
        ov, hours = _overview(req)
    except BadRequest as exc:
        return _html(render_error(400, str(exc), links), 400)
    return _html(render_overview(ov, links, hours, runbook.fixes()))


@bp.function_name("ops_data")
@bp.route(route="ops/data", methods=["GET"], auth_level=ADMIN)
def ops_data(req: func.HttpRequest) -> func.HttpResponse:
    try:
        ov, _ = _overview(req)
    except BadRequest as exc:
        return func.HttpResponse(
            as_json({"error": "BadRequest", "message": str(exc)}),
            status_code=400,
            mimetype="application/json",
        )
    return func.HttpResponse(
        as_json(ov.as_dict()),
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


@bp.function_name("ops_dead_letters")
@bp.route(route="ops/deadletters", methods=["GET"], auth_level=ADMIN)
def ops_dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    links = _links(req)
    reason = (req.params.get("reason") or "").strip()
    subscription = (req.params.get("subscription") or "").strip()
    pairs = _pairs()
    names = [s for _, s in pairs]
    if subscription and subscription not in names:
        message = f"subscription: {subscription!r} is not one of {', '.join(names)}"
        return _html(render_error(400, message, links), 400)
    listed, error = [], None
    try:
        with _dead_letter_ops() as ops:
            listed = console.dead_letters(ops, pairs, subscription=subscription or None)
    except BusError as exc:
        error = f"the bus could not be read: {exc}"
    page = render_dead_letters(
        console.with_reason(listed, reason),
        links,
        reason=reason,
        subscription=subscription,
        subscriptions=names,
        reasons=console.reasons(listed),
        error=error,
    )
    return _html(page)


@bp.function_name("ops_dead_letter")
@bp.route(route="ops/deadletter", methods=["GET"], auth_level=ADMIN)
def ops_dead_letter(req: func.HttpRequest) -> func.HttpResponse:
    links = _links(req)
    subscription, message_id = req.params.get("subscription") or "", req.params.get("id") or ""
    if not subscription or not message_id:
        return _html(render_error(400, "subscription and id are required", links), 400)
    try:
        with _dead_letter_ops() as ops:
            item = console.find_dead_letter(ops, _pairs(), subscription, message_id)
    except BusError as exc:
        return _html(render_error(503, f"the bus could not be read: {exc}", links), 503)
    if item is None:
        return _html(render_error(404, f"no dead letter {message_id!r} in {subscription!r}", links), 404)
    return _html(render_dead_letter(item, links, runbook.fix_for(item.reason)))


@bp.function_name("ops_dead_letter_action")
@bp.route(route="ops/deadletters/{action:alpha}", methods=["POST"], auth_level=ADMIN)
def ops_dead_letter_action(req: func.HttpRequest) -> func.HttpResponse:
    links = _links(req)
    name = (req.route_params.get("action") or "").lower()
    try:
        if name not in console.ACTIONS:
            raise BadRequest(f"action: {name!r} is not one of {', '.join(console.ACTIONS)}")
        action = cast(console.Action, name)
        form = parse_qs((req.get_body() or b"").decode("utf-8", "replace"))
        if (form.get("confirm") or [""])[0] != action:
            raise BadRequest(f"confirm: must be {action!r} to {action} (tick the confirmation)")
        targets = _targets(form)
        with _dead_letter_ops() as ops:
            outcomes = console.act(ops, runtime.state_store(), _pairs(), action, targets)
    except (BadRequest, ValueError) as exc:
        return _html(render_error(400, str(exc), links), 400)
    except BusError as exc:
        return _html(render_error(503, f"the bus could not be reached: {exc}", links), 503)
    log.info("console %s of %d dead letter(s): %d done", action, len(targets), len(outcomes))
    return _html(render_outcomes(action, outcomes, links))


def _targets(form: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(subscription, message id) pairs: `subscription` + `message_id` for one dead letter, or
    repeated `target` fields `<subscription>/<message id>` for several."""
    subscription = (form.get("subscription") or [""])[0].strip()
    message_id = (form.get("message_id") or [""])[0].strip()
    if subscription or message_id:
        for field, value in (("subscription", subscription), ("message_id", message_id)):
            if not value:
                raise BadRequest(f"{field}: required")
        return [(subscription, message_id)]
    targets = []
    for value in form.get("target") or []:
        sub, _, mid = value.strip().partition("/")
        if not sub or not mid:
            raise BadRequest(f"target: {value!r} is not <subscription>/<message id>")
        targets.append((sub, mid))
    if not targets:
        raise BadRequest("subscription and message_id (or target): required")
    return targets


@bp.function_name("ops_static")
@bp.route(route="ops/static/{name}", methods=["GET"], auth_level=ADMIN)
def ops_static(req: func.HttpRequest) -> func.HttpResponse:
    name = req.route_params.get("name") or ""
    if name not in STATIC:
        return func.HttpResponse("not found", status_code=404)
    return func.HttpResponse(
        (STATIC_DIR / name).read_bytes(),
        mimetype=STATIC[name],
        charset="utf-8",
        headers={"Cache-Control": "max-age=86400"},
    )
