"""HTTP: the operations console under /api/ops/ (admin key; in the sandbox LOCAL_MASTER_KEY).

Pages (GET): `ops` the overview (flows with their state, last errors, backlog, cursors, API
budgets, anomaly flags; `?hours=`), `ops/data` the same figures as JSON, `ops/deadletters`
(`?reason=&subscription=`), `ops/deadletter?subscription=&id=` one dead letter's metadata and
fix, `ops/triage` dead letters grouped by cause (`syncctl dlq triage`),
`ops/history?system=&type=&id=` one record's history, `ops/review` the needs-review list,
`ops/static/<file>` the vendored chart library. Actions (POST forms whose `confirm` field must
name the action, else 400): `ops/deadletters/resubmit|purge`, `ops/triage/resubmit` (one group;
its `force` box for a group not safe in bulk), `ops/review/accept|dismiss`,
`ops/flows/pause|resume`, `ops/sync`; each is written to the audit (result `operator`). The data
come through shared/ops and shared.bus, the code `syncctl` uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
from shared.ops.busview import BusMessage
from shared.ops.console_html import (
    Links,
    as_json,
    render_dead_letter,
    render_dead_letters,
    render_done,
    render_error,
    render_history,
    render_outcomes,
    render_overview,
    render_review,
    render_triage,
)
from shared.ops.review import Decision
from shared.telemetry import get_logger

bp = func.Blueprint()
log = get_logger("ops")
ADMIN = func.AuthLevel.ADMIN
APP_ROOT = Path(__file__).resolve().parents[1]
STATIC_DIR = APP_ROOT / "shared" / "ops" / "static"
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
        form = _confirmed_form(req, action)
        targets = _targets(form)
        with _dead_letter_ops() as ops:
            outcomes = console.act(ops, runtime.state_store(), _pairs(), action, targets, actor=_actor(req))
    except (BadRequest, ValueError) as exc:
        return _html(render_error(400, str(exc), links), 400)
    except BusError as exc:
        return _html(render_error(503, f"the bus could not be reached: {exc}", links), 503)
    log.info("console %s of %d dead letter(s): %d done", action, len(targets), len(outcomes))
    return _html(render_outcomes(action, outcomes, links))


def _mapping_file(subscription: str) -> Path | None:
    """The mapping file the subscription's flow reads, as this app is configured."""
    import os

    from shared.ops.triage import mapping_file_of

    return mapping_file_of(subscription, os.environ, APP_ROOT)


@bp.function_name("ops_triage")
@bp.route(route="ops/triage", methods=["GET"], auth_level=ADMIN)
def ops_triage(req: func.HttpRequest) -> func.HttpResponse:
    """Dead letters grouped by cause (`syncctl dlq triage`): fix and bulk-resubmit safety per group."""
    links = _links(req)
    groups, error = [], None
    try:
        with _dead_letter_ops() as ops:
            groups = console.triage_groups(ops, _pairs(), mapping_file=_mapping_file)
    except BusError as exc:
        error = f"the bus could not be read: {exc}"
    return _html(render_triage(groups, links, error=error))


@bp.function_name("ops_triage_resubmit")
@bp.route(route="ops/triage/resubmit", methods=["POST"], auth_level=ADMIN)
def ops_triage_resubmit(req: func.HttpRequest) -> func.HttpResponse:
    """Resubmit one triage group (`syncctl dlq triage --resubmit <group> [--force]`): the dead-letter
    resubmit action, audited; a group not safe in bulk needs the `force` box."""
    from shared.ops.triage import find

    links = _links(req)
    try:
        form = _confirmed_form(req, "resubmit")
        name = _field(form, "group", required=True)
        pairs = _pairs()
        with _dead_letter_ops() as ops:
            try:
                group = find(console.triage_groups(ops, pairs, mapping_file=_mapping_file), name)
            except KeyError as exc:
                raise BadRequest(f"group: {exc.args[0]}") from None
            outcomes = console.resubmit_group(
                ops, runtime.state_store(), pairs, group, force=bool(_field(form, "force")), actor=_actor(req)
            )
    except (BadRequest, ValueError) as exc:
        return _html(render_error(400, str(exc), links), 400)
    except BusError as exc:
        return _html(render_error(503, f"the bus could not be reached: {exc}", links), 503)
    log.info("console resubmit of triage group %s: %d dead letter(s)", group.key, len(outcomes))
    return _html(render_outcomes("resubmit", outcomes, links))


def _confirmed_form(req: func.HttpRequest, action: str) -> dict[str, list[str]]:
    """The posted form; BadRequest unless its `confirm` field names the action."""
    form = parse_qs((req.get_body() or b"").decode("utf-8", "replace"))
    if _field(form, "confirm") != action:
        raise BadRequest(f"confirm: must be {action!r} to {action} (tick the confirmation)")
    return form


def _field(form: dict[str, list[str]], name: str, *, required: bool = False) -> str:
    value = (form.get(name) or [""])[0].strip()
    if required and not value:
        raise BadRequest(f"{name}: required")
    return value


def _actor(req: func.HttpRequest) -> str:
    """Who acts: the console, and the signed-in user when Entra authentication fronts the app."""
    user = (req.headers.get("x-ms-client-principal-name") or "").strip()
    return f"console ({user[:60]})" if user else "console"


def _targets(form: dict[str, list[str]]) -> list[tuple[str, str]]:
    """(subscription, message id) pairs: `subscription` + `message_id` for one dead letter, or
    repeated `target` fields `<subscription>/<message id>` for several."""
    if _field(form, "subscription") or _field(form, "message_id"):
        return [(_field(form, "subscription", required=True), _field(form, "message_id", required=True))]
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


# ----------------------------------------------------------------------------- operator loop
@bp.function_name("ops_history")
@bp.route(route="ops/history", methods=["GET"], auth_level=ADMIN)
def ops_history(req: func.HttpRequest) -> func.HttpResponse:
    """One record's history (`syncctl history`): audit of both linked records, link, bus."""
    from shared.ops.history import record_history
    from shared.ops.records import RecordInputError, record

    links = _links(req)
    system = (req.params.get("system") or "brightpearl").strip().lower()
    record_type, record_id = (req.params.get("type") or "").strip(), (req.params.get("id") or "").strip()
    found, error, status = None, None, 200
    if record_type and record_id:
        try:
            ref = record(system, record_type, record_id)
            found = record_history(runtime.state_store(), ref, bus=_bus_reader([f.name for f in ref.flows]))
        except RecordInputError as exc:
            error, status = str(exc), 400
    page = render_history(
        links, system=system, record_type=record_type, record_id=record_id, history=found, error=error
    )
    return _html(page, status)


def _bus_reader(flows: list[str]) -> Callable[[set[str]], Sequence[BusMessage]]:
    """The bus messages naming some ids on the flows' subscriptions (shared.ops.busview)."""
    from shared.bus.topology import Topology, load_topology
    from shared.ops.busview import bus_messages

    settings = runtime.settings().bus
    pairs = [(t, s) for t, s in _pairs() if s in flows]
    # the local bus is opened with the topology; Service Bus needs none (infra/ is not deployed)
    topology = load_topology() if settings.backend == "local" else cast(Topology, None)
    return lambda ids: bus_messages(settings, topology, pairs, ids=ids)


@bp.function_name("ops_sync")
@bp.route(route="ops/sync", methods=["POST"], auth_level=ADMIN)
def ops_sync(req: func.HttpRequest) -> func.HttpResponse:
    """Sync one record now (`syncctl sync`): its change notice published, the request audited."""
    from shared.ops.records import RecordInputError, record
    from shared.ops.sync_now import runtime_publish, runtime_source

    links = _links(req)
    try:
        form = _confirmed_form(req, "sync")
        ref = record(
            _field(form, "system", required=True),
            _field(form, "type", required=True),
            _field(form, "id", required=True),
        )
        sent = console.sync_record(
            runtime.state_store(),
            ref,
            publish=runtime_publish,
            source=runtime_source(ref.system),
            now=runtime.clock(),
            actor=_actor(req),
        )
    except (BadRequest, RecordInputError) as exc:
        return _html(render_error(400, str(exc), links), 400)
    except BusError as exc:
        return _html(render_error(503, f"the bus could not be reached: {exc}", links), 503)
    lines = [
        f"notice {sent.message_id} published for {', '.join(sent.flows)}",
        "its outcome appears in the record's history when the flow has run it",
    ]
    back = {"system": ref.system, "type": ref.name, "id": ref.record_id}
    return _html(render_done(f"{ref.label}: sync requested", lines, links, "history", back))


@bp.function_name("ops_review")
@bp.route(route="ops/review", methods=["GET"], auth_level=ADMIN)
def ops_review(req: func.HttpRequest) -> func.HttpResponse:
    """The needs-review list (`syncctl review list`)."""
    from shared.ops.review import needs_review

    links = _links(req)
    try:
        days = _days(req.params.get("days"))
        items = needs_review(runtime.state_store().audit, _flow_names(), days=days)
    except BadRequest as exc:
        return _html(render_error(400, str(exc), links), 400)
    return _html(render_review(items, links, days=days))


def _days(raw: str | None) -> int:
    text = (raw or "14").strip()
    if not text.isdigit() or not 1 <= int(text) <= 90:
        raise BadRequest(f"days: {text!r} must be a whole number of days from 1 to 90")
    return int(text)


def _flow_names() -> list[str]:
    from shared.sync import registry

    return [f.name for f in registry.flows()]


@bp.function_name("ops_review_decision")
@bp.route(route="ops/review/{decision:alpha}", methods=["POST"], auth_level=ADMIN)
def ops_review_decision(req: func.HttpRequest) -> func.HttpResponse:
    """Accept (sync again) or dismiss a needs-review record (`syncctl review accept|dismiss`)."""
    from shared.ops.records import RecordInputError
    from shared.ops.review import DECISIONS, find, needs_review
    from shared.ops.sync_now import runtime_publish, runtime_source

    links = _links(req)
    decision = (req.route_params.get("decision") or "").lower()
    try:
        if decision not in DECISIONS:
            raise BadRequest(f"decision: {decision!r} is not one of {', '.join(DECISIONS)}")
        form = _confirmed_form(req, decision)
        key = _field(form, "key", required=True)
        store = runtime.state_store()
        item = find(needs_review(store.audit, _flow_names(), days=_days(_field(form, "days"))), key)
        if item is None:
            raise BadRequest(f"key: nothing waits for review under {key!r}")
        entry = console.decide_review(
            store,
            item,
            cast(Decision, decision),
            publish=runtime_publish,
            source=runtime_source,
            now=runtime.clock(),
            actor=_actor(req),
        )
    except (BadRequest, RecordInputError, ValueError) as exc:
        return _html(render_error(400, str(exc), links), 400)
    except BusError as exc:
        return _html(render_error(503, f"the bus could not be reached: {exc}", links), 503)
    return _html(render_done(f"{item.key}: {entry.reason_code}", [entry.description], links, "review"))


@bp.function_name("ops_flow_action")
@bp.route(route="ops/flows/{action:alpha}", methods=["POST"], auth_level=ADMIN)
def ops_flow_action(req: func.HttpRequest) -> func.HttpResponse:
    """Pause or resume one flow (`syncctl flow pause|resume`), audited."""
    from shared.ops.flow_control import CACHE_SECONDS

    links = _links(req)
    action = (req.route_params.get("action") or "").lower()
    try:
        if action not in ("pause", "resume"):
            raise BadRequest(f"action: {action!r} is not pause or resume")
        form = _confirmed_form(req, action)
        flow = _field(form, "flow", required=True)
        if flow not in _flow_names():
            raise BadRequest(f"flow: {flow!r} is not one of {', '.join(_flow_names())}")
        store, actor = runtime.state_store(), _actor(req)
        if action == "pause":
            found, new = console.pause_flow(
                store, flow, now=runtime.clock(), actor=actor, reason=_field(form, "reason")
            )
            title = f"{flow}: {'paused' if new else 'already paused'}"
            lines = [
                f"paused since {found.since.isoformat()} by {found.by}; its messages wait on the bus, "
                f"looked at again every {found.recheck_seconds} s"
            ]
        else:
            ended = console.resume_flow(store, flow, actor=actor)
            title = f"{flow}: {'resumed' if ended else 'was not paused'}"
            lines = [f"its postponed messages run within {ended.recheck_seconds} s"] if ended else []
    except BadRequest as exc:
        return _html(render_error(400, str(exc), links), 400)
    lines.append(f"every instance sees the change within {CACHE_SECONDS:.0f} s")
    return _html(render_done(title, lines, links))
