"""The operations console's pages: plain server-rendered HTML, every value escaped, charts drawn by
the vendored uPlot (shared/ops/static, no CDN) from figures embedded in the page.

Links and forms carry the key the page was opened with (`?code=`), as the Functions host reads it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from shared.bus.deadletters import DeadLetter, Outcome
from shared.ops.console import ACTIONS, Action, Overview, Panel, metadata
from shared.ops.flow_control import Pause
from shared.ops.history import RecordHistory
from shared.ops.metrics import OUTCOME_RESULTS, AuditRow, FlowActivity
from shared.ops.review import ReviewItem
from shared.ops.runbook import Fix
from shared.ops.triage import TriageGroup

WINDOWS = (("1 h", 1), ("6 h", 6), ("24 h", 24), ("7 days", 168))
# The overview's panels (section ids) and the items of the App Insights workbook
# (infra/workbook.json) showing the same from telemetry in Azure; a test keeps them in step.
PANELS: dict[str, tuple[str, ...]] = {
    "flows": ("outcomes", "e2e-latency"),
    "errors": ("dead-letters-by-reason",),
    "backlog": ("backlog-metric", "dead-letters-metric"),
    "cursors": ("poller-age",),
    "budgets": ("throttling",),
    "reconciliation": ("reconcile-findings",),
    "anomalies": ("anomalies",),
}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;gap:20px;align-items:center}
header a{color:#cfe0ff;text-decoration:none}header h1{font-size:17px;margin:0}
main{padding:16px 20px;max-width:1400px}section{background:#fff;border:1px solid #dde1e8;
border-radius:6px;padding:12px 16px;margin-bottom:16px}h2{font-size:15px;margin:0 0 8px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;
border-bottom:1px solid #eceef2;vertical-align:top}td.n,th.n{text-align:right;
font-variant-numeric:tabular-nums}.err{color:#a4161a}.muted{color:#6b7385}.ok{color:#1b7f3b}
.chart{margin:8px 0}.flash{background:#e8f5e9;border-color:#9ad0a5}form.inline{display:inline}
button{padding:4px 10px}details{margin:6px 0}code{font-size:12px}
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _md(text: str) -> str:
    """Runbook text as HTML: escaped, its `code` spans shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text))


class Links:
    """URLs under the console's base path that carry the key."""

    def __init__(self, base: str, key: str | None) -> None:
        self.base, self.key = base.rstrip("/"), key

    def to(self, path: str = "", **params: object) -> str:
        query = {k: str(v) for k, v in params.items() if v not in (None, "")}
        if self.key:
            query["code"] = self.key
        url = f"{self.base}/{path}".rstrip("/")
        return f"{url}?{urlencode(query)}" if query else url


def _page(title: str, links: Links, body: str, *, charts: bool = False) -> str:
    assets = ""
    if charts:
        assets = (
            f'<link rel="stylesheet" href="{_e(links.to("static/uPlot.min.css"))}">'
            f'<script src="{_e(links.to("static/uPlot.iife.min.js"))}"></script>'
        )
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
        f"<meta name=viewport content='width=device-width'>{assets}<style>{_CSS}</style></head><body>"
        f'<header><h1>bpsync operations</h1><a href="{_e(links.to())}">Overview</a>'
        f'<a href="{_e(links.to("deadletters"))}">Dead letters</a>'
        f'<a href="{_e(links.to("triage"))}">Triage</a>'
        f'<a href="{_e(links.to("review"))}">Needs review</a>'
        f'<a href="{_e(links.to("history"))}">Record history</a></header><main>{body}</main>'
        + (_CHART_SCRIPT if charts else "")
        + "</body></html>"
    )


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ") if at else ""


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return '<span class="muted">–</span>'
    text = f"{value:.2f}" if isinstance(value, float) and not value.is_integer() else f"{value:.0f}"
    return f"{text}{unit}"


def _table(columns: Sequence[str], rows: str | Sequence[str], empty: str) -> str:
    """A table with these column titles (a leading # right-aligns a numeric column), or `empty`."""
    body = rows if isinstance(rows, str) else "".join(rows)
    if not body:
        return empty
    head = "".join(
        f'<th class="n">{_e(c[1:])}</th>' if c.startswith("#") else f"<th>{_e(c)}</th>" for c in columns
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _ms(value: float | None) -> str:
    """Milliseconds, whole (histogram percentiles are not exact to the millisecond)."""
    return _num(None if value is None else float(round(value)), " ms")


def _panel_error(panel: Panel) -> str:
    return f'<p class="err">{_e(panel.error)}</p>' if panel.error else ""


# ----------------------------------------------------------------------------- overview
def render_overview(ov: Overview, links: Links, hours: float, fixes: dict[str, Fix]) -> str:
    windows = " · ".join(
        f"<b>{label}</b>" if value == hours else f'<a href="{_e(links.to(hours=value))}">{label}</a>'
        for label, value in WINDOWS
    )
    body = (
        f"<p>Window: {_e(_when(ov.window.since))} to {_e(_when(ov.window.until))} ({windows})</p>"
        + _flows_section(ov, links)
        + _errors_section(ov.errors, fixes, links)
        + _backlog_section(ov.backlog, links)
        + _cursors_section(ov.cursors)
        + _budget_section(ov)
        + _reconciliation_section(ov.reconciliation)
        + _anomalies_section(ov.anomalies, links)
    )
    return _page("bpsync operations", links, body, charts=True)


def _flows_section(ov: Overview, links: Links) -> str:
    if ov.flows_error:
        return f'<section id=flows><h2>Flows</h2><p class="err">{_e(ov.flows_error)}</p></section>'
    head = "".join(f'<th class="n">{_e(r)}</th>' for r in OUTCOME_RESULTS)
    pauses = {p.flow: p for p in ov.pauses.value or []}
    rows = []
    for f in ov.flows:
        cells = "".join(
            f'<td class="n" data-testid="{_e(f.flow)}:{_e(r)}">{f.total(r)}</td>' for r in OUTCOME_RESULTS
        )
        d = f.as_dict()
        lat, proc = d["latency_s"], d["processing_ms"]
        note = (
            ' <span class="err" title="more rows than the page reads">(truncated)</span>'
            if f.truncated
            else ""
        )
        rows.append(
            f'<tr><td><a href="#flow-{_e(f.flow)}">{_e(f.flow)}</a>{note}</td>{cells}'
            f'<td class="n" data-testid="{_e(f.flow)}:latency-p50">{_num(lat["p50"], " s")}</td>'
            f'<td class="n" data-testid="{_e(f.flow)}:latency-p95">{_num(lat["p95"], " s")}</td>'
            f'<td class="n">{_ms(proc["p50"])}</td><td class="n">{_ms(proc["p95"])}</td>'
            f'<td class="n" data-testid="{_e(f.flow)}:operator">{sum(f.operator_actions.values())}</td>'
            f"<td>{_flow_state(f.flow, pauses, links)}</td></tr>"
        )
    table = (
        f"<table><thead><tr><th>flow</th>{head}<th class=n>latency p50</th><th class=n>latency p95</th>"
        "<th class=n>batch p50</th><th class=n>batch p95</th><th class=n>operator actions</th>"
        "<th>state</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    details = "".join(_flow_details(f) for f in ov.flows)
    title = "<h2>Flows: records by outcome</h2>"
    return f"<section id=flows>{title}{_panel_error(ov.pauses)}{table}{details}</section>"


def _flow_state(flow: str, pauses: dict[str, Pause], links: Links) -> str:
    """Running or paused (since when, by whom, why), with the form that changes it."""
    from shared.sync import registry

    if flow not in {f.name for f in registry.flows()}:
        return '<span class="muted">not a flow</span>'
    paused = pauses.get(flow)
    if paused is None:
        state = f'<span class="ok" data-testid="{_e(flow)}:state">running</span> '
        form = _action_form(
            "flows/pause", "pause", links, _hidden(flow=flow), f"pause {flow}", f"pause-{flow}"
        )
    else:
        state = (
            f'<span class="err" data-testid="{_e(flow)}:state">paused</span> since {_e(_when(paused.since))} '
            f"by {_e(paused.by)}{': ' + _e(paused.reason) if paused.reason else ''} "
        )
        form = _action_form(
            "flows/resume", "resume", links, _hidden(flow=flow), f"resume {flow}", f"resume-{flow}"
        )
    return f"<details><summary>{state}</summary>{form}</details>"


def _flow_details(f: FlowActivity) -> str:
    reasons = (
        "".join(
            f'<tr><td>{_e(result)}</td><td data-testid="{_e(f.flow)}:reason:{_e(result)}:{_e(reason)}">'
            f'{_e(reason) or "<span class=muted>(none)</span>"}</td><td class="n">{count}</td></tr>'
            for (result, reason), count in sorted(f.outcomes.items(), key=lambda kv: -kv[1])
        )
        or '<tr><td colspan=3 class="muted">no records in this window</td></tr>'
    )
    chart = {
        "x": [int(s.timestamp()) for s in f.window.starts()],
        "series": {result: values for result, values in sorted(f.series.items())},
    }
    return (
        f'<details id="flow-{_e(f.flow)}"{" open" if f.rows else ""}>'
        f"<summary><b>{_e(f.flow)}</b>: {f.rows} audit rows</summary>"
        f"<div class=chart data-chart='{_e(json.dumps(chart))}'></div>"
        "<table><thead><tr><th>result</th><th>reason code</th><th class=n>records</th></tr></thead>"
        f"<tbody>{reasons}</tbody></table></details>"
    )


def _errors_section(errors: Sequence[AuditRow], fixes: dict[str, Fix], links: Links) -> str:
    rows = []
    for e in errors:
        fix = fixes.get(e.reason)
        fix_text = _md(fix.fix) if fix else '<span class="muted">no entry in docs/operations.md</span>'
        rows.append(
            f"<tr><td>{_e(_when(e.at))}</td><td>{_e(e.flow)}</td><td>{_e(e.result)}</td>"
            f'<td data-testid="error-reason">{_e(e.reason)}</td>'
            f"<td>{_e(e.source_system)} {history_link(links, e.source_system, e.entity, e.source_id)}</td>"
            f'<td>{_e(e.description)}</td><td data-testid="error-fix">{fix_text}</td></tr>'
        )
    body = _table(
        ("at", "flow", "result", "reason", "record", "description", "fix (docs/operations.md)"),
        rows,
        '<p class="muted">No dead letters or needs-review records in this window.</p>',
    )
    return f"<section id=errors><h2>Last errors</h2>{body}</section>"


def _backlog_section(panel: Panel, links: Links) -> str:
    rows = []
    for b in panel.value or []:
        dead = (
            f'<a href="{_e(links.to("deadletters", subscription=b.subscription))}">{b.dead_lettered}</a>'
            if b.dead_lettered
            else "0"
        )
        rows.append(
            f"<tr><td>{_e(b.topic)}</td><td>{_e(b.subscription)}</td>"
            f'<td class="n" data-testid="backlog:{_e(b.subscription)}:active">{b.active}</td>'
            f'<td class="n" data-testid="backlog:{_e(b.subscription)}:scheduled">{_num(b.scheduled)}</td>'
            f'<td class="n" data-testid="backlog:{_e(b.subscription)}:dead">{dead}</td>'
            f'<td class="n">{_num(b.locked)}</td><td class="n">{_num(b.deferred)}</td>'
            f'<td class="muted">{_e(b.note)}</td></tr>'
        )
    table = (
        "<table><thead><tr><th>topic</th><th>subscription</th><th class=n>active</th>"
        "<th class=n>scheduled (retries)</th><th class=n>dead-lettered</th><th class=n>locked</th>"
        f"<th class=n>deferred</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    return f"<section id=backlog><h2>Backlog per subscription</h2>{_panel_error(panel)}{table}</section>"


def _cursors_section(panel: Panel) -> str:
    rows = "".join(
        f"<tr><td><code>{_e(c.name)}</code></td><td>{_e(c.poller)}</td><td>{_e(_when(c.updated_at))}</td>"
        f'<td class="n" data-testid="cursor:{_e(c.name)}">{_e(_age(c.age_seconds))}</td></tr>'
        for c in panel.value or []
    )
    table = _table(
        ("cursor", "kept by", "last saved", "#age"), rows, '<p class="muted">No cursor saved yet.</p>'
    )
    return f"<section id=cursors><h2>Poller cursors</h2>{_panel_error(panel)}{table}</section>"


def _budget_section(ov: Overview) -> str:
    parts = [_panel_error(ov.budget)]
    b = ov.budget.value
    if b is not None:
        share = b.used / b.limit * 100 if b.limit else 0.0
        parts.append(
            f'<p>Brightpearl: <b data-testid="budget-used">{b.used}</b> requests in the last '
            f"{b.window_seconds:.0f} s of a cap of <b>{b.limit}</b> ({share:.0f} %; this app may use "
            f"{b.allowed}); paused by the server's signal {b.server_pauses}×, by a 503 {b.throttle_pauses}×. "
            '<span class="muted">This instance only.</span></p>'
        )
    elif not ov.budget.error:
        parts.append('<p class="muted">Brightpearl: no client in this instance yet.</p>')
    parts.append(_panel_error(ov.dataverse))
    d = ov.dataverse.value
    if d is not None:
        parts.append(
            f'<p>Dataverse: {d["calls"]} requests, <b data-testid="dataverse-retries">{d["retries"]}</b> '
            "retried (429 service protection, 5xx or network) by this instance since it started. "
            '<span class="muted">429s are not counted apart; Application Insights has them '
            "(docs/operations.md, Throttling).</span></p>"
        )
    return f"<section id=budgets><h2>API request budgets</h2>{''.join(parts)}</section>"


def _reconciliation_section(panel: Panel) -> str:
    """The last reconciliation of each entity: when, counts per kind (docs/operations.md)."""
    from shared.reconcile.report import KINDS

    rows = []
    for name, report in panel.value or []:
        if report is None:
            rows.append(
                f"<tr><td>{_e(name)}</td><td colspan={len(KINDS) + 1} class=muted>never reconciled: "
                f"<code>syncctl reconcile {_e(name)}</code></td></tr>"
            )
            continue
        counts = "".join(
            f'<td class="n" data-testid="reconcile:{_e(name)}:{kind}">{report.counts.get(kind, 0)}</td>'
            for kind in KINDS
        )
        healed = " (healed)" if report.heal else ""
        rows.append(f"<tr><td>{_e(name)}</td><td>{_e(_when(report.finished_at))}{healed}</td>{counts}</tr>")
    table = _table(
        ("entity", "last run", *(f"#{k.replace('_', ' ')}" for k in KINDS)),
        rows,
        '<p class="muted">No entity declares a reconciler.</p>',
    )
    hint = (
        '<p class="muted">Findings with their ids: <code>syncctl reconcile &lt;entity&gt; --last</code>; '
        "heal with <code>--heal</code> (docs/operations.md, Reconciliation).</p>"
    )
    return f"<section id=reconciliation><h2>Reconciliation</h2>{_panel_error(panel)}{table}{hint}</section>"


def _anomalies_section(panel: Panel, links: Links) -> str:
    """The window's anomaly flags (shared/anomaly: audit flow `anomalies`), newest first."""
    rows = "".join(
        f"<tr><td>{_e(_when(a.at))}</td>"
        f'<td data-testid="anomaly-kind">{_e(a.reason.removeprefix("Anomaly"))}</td>'
        f"<td>{_e(a.description.partition(': ')[0])}</td>"
        f"<td>{_e(a.source_system)} {history_link(links, a.source_system, a.entity, a.source_id)}</td>"
        f'<td data-testid="anomaly-why">{_e(a.description.partition(": ")[2] or a.description)}</td></tr>'
        for a in panel.value or []
    )
    table = _table(
        ("at", "kind", "flow", "record", "why"),
        rows,
        '<p class="muted" data-testid="no-anomalies">No anomaly flagged in this window.</p>',
    )
    hint = '<p class="muted">What each kind means and what to do: docs/operations.md, Anomalies.</p>'
    return f"<section id=anomalies><h2>Anomalies</h2>{_panel_error(panel)}{table}{hint}</section>"


_CHART_SCRIPT = """<script>
(function(){
  var colours={"synced":"#1b7f3b","skipped":"#8a94a6","needs-review":"#d08c00","dead-lettered":"#a4161a",
               "missing":"#5b6cff","ignored":"#b0b7c3"};
  document.querySelectorAll(".chart").forEach(function(el){
    if(typeof uPlot==="undefined"){return;}
    var d=JSON.parse(el.getAttribute("data-chart"));var names=Object.keys(d.series);
    if(!names.length){el.textContent="no records in this window";el.className+=" muted";return;}
    var series=[{}].concat(names.map(function(n){return {label:n,stroke:colours[n]||"#333",width:2};}));
    var data=[d.x].concat(names.map(function(n){return d.series[n];}));
    new uPlot({width:Math.min(el.parentElement.clientWidth||900,1300),height:180,series:series,
               axes:[{},{label:"records"}]},data,el);
  });
})();
</script>"""


# ----------------------------------------------------------------------------- dead letters
def render_dead_letters(
    items: Sequence[DeadLetter],
    links: Links,
    *,
    reason: str,
    subscription: str,
    subscriptions: Iterable[str],
    reasons: Counter[str],
    error: str | None = None,
) -> str:
    options = "".join(
        f'<option value="{_e(s)}"{" selected" if s == subscription else ""}>{_e(s)}</option>'
        for s in ["", *subscriptions]
    )
    hidden = f'<input type=hidden name=code value="{_e(links.key)}">' if links.key else ""
    form = (
        f'<form method=get action="{_e(links.base)}/deadletters">{hidden}'
        f'<label>reason <input name=reason value="{_e(reason)}" placeholder="any"></label> '
        f"<label>subscription <select name=subscription>{options}</select></label> "
        "<button type=submit>Filter</button></form>"
    )
    chips = " · ".join(
        f'<a href="{_e(links.to("deadletters", reason=code, subscription=subscription))}">'
        f"{_e(code or '(none)')}</a> ({count})"
        for code, count in reasons.most_common()
    )
    rows = "".join(
        f"<tr><td>{_e(i.subscription)}</td>"
        f'<td><a data-testid="inspect" '
        f'href="{_e(links.to("deadletter", subscription=i.subscription, id=i.message_id))}">'
        f"{_e(i.message_id)}</a></td><td>{_e(i.entity)}</td><td>{_record_links(i, links)}</td>"
        f'<td data-testid="dl-reason">{_e(i.reason)}</td><td>{_e(i.description)}</td>'
        f"<td>{_e(_when(i.enqueued_time_utc))}</td></tr>"
        for i in items
    )
    table = _table(
        ("subscription", "message id", "entity", "record ids", "reason", "description", "enqueued"),
        rows,
        '<p class="muted" data-testid="no-dead-letters">No dead letters match.</p>',
    )
    targets = "".join(
        f'<input type=hidden name=target value="{_e(i.subscription)}/{_e(i.message_id)}">' for i in items
    )
    bulk = (
        "".join(
            _action_form(
                f"deadletters/{action}",
                action,
                links,
                targets,
                f"{verb} the {len(items)} dead letter(s) listed",
                f"{action}-all",
            )
            for action, verb in (("resubmit", "resubmit"), ("purge", "delete for good"))
        )
        if items
        else ""
    )
    err = f'<p class="err">{_e(error)}</p>' if error else ""
    body = (
        f'<section><h2>Dead letters (<span data-testid="dl-count">{len(items)}</span>)</h2>'
        f"{form}<p>Reasons: {chips or '<span class=muted>none</span>'}</p>{err}{table}{bulk}</section>"
    )
    return _page("dead letters", links, body)


def _record_links(item: DeadLetter, links: Links) -> str:
    envelope = item.envelope
    if envelope is None:
        return _e(", ".join(item.record_ids))
    return ", ".join(
        history_link(links, envelope.notice.system, envelope.notice.entity, i) for i in item.record_ids
    )


def _action_form(path: str, action: str, links: Links, fields: str, what: str, testid: str) -> str:
    """A POST form for an operator action: the key in its URL, a confirmation to tick
    (`confirm=<action>`, which the server requires) and a confirm() dialog."""
    return (
        f'<form class=inline method=post action="{_e(links.to(path))}" '
        f'onsubmit="return confirm({_e(json.dumps(what + "?"))})">{fields}'
        f'<label><input type=checkbox name=confirm value="{action}" required '
        f'data-testid="confirm-{testid}"> I confirm: {_e(what)}</label> '
        f'<button type=submit data-testid="{testid}">{action.capitalize()}</button></form><br>'
    )


def _hidden(**fields: str) -> str:
    return "".join(f'<input type=hidden name={name} value="{_e(value)}">' for name, value in fields.items())


def render_dead_letter(item: DeadLetter, links: Links, fix: Fix | None) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in metadata(item))
    fix_html = (
        f'<p><b>Fix</b> ({_e(fix.section)}): <span data-testid="fix">{_md(fix.fix)}</span></p>'
        if fix
        else '<p class="muted">docs/operations.md has no entry for this reason code.</p>'
    )
    fields = (
        f'<input type=hidden name=subscription value="{_e(item.subscription)}">'
        f'<input type=hidden name=message_id value="{_e(item.message_id)}">'
    )
    forms = "".join(
        _action_form(
            f"deadletters/{action}", action, links, fields, f"{what} dead letter {item.message_id}", action
        )
        for action, what in (
            ("resubmit", "send back to its subscription only, then remove,"),
            ("purge", "delete for good"),
        )
    )
    body = (
        f"<section><h2>Dead letter {_e(item.message_id)}</h2><table>{rows}</table>{fix_html}</section>"
        f"<section><h2>Actions</h2>{forms}<p class=muted>Each action is written to the audit.</p></section>"
    )
    return _page("dead letter", links, body)


def render_triage(groups: Sequence[TriageGroup], links: Links, *, error: str | None = None) -> str:
    """Dead letters grouped by cause (shared.ops.triage, `syncctl dlq triage`), each group with
    its fix, whether a bulk resubmit is safe, and the form that resubmits it."""
    rows = []
    for number, g in enumerate(groups, 1):
        verdict = (
            f'<span class="ok" data-testid="triage-safe">safe</span>: {_e(g.safety.why)}'
            if g.safety.safe
            else f'<span class="err" data-testid="triage-safe">not yet</span>: {_e(g.safety.why)}'
        )
        force = (
            ""
            if g.safety.safe
            else f'<label><input type=checkbox name=force value=yes data-testid="force-{number}"> '
            "force (resubmit although not safe)</label> "
        )
        form = _action_form(
            "triage/resubmit",
            "resubmit",
            links,
            _hidden(group=g.key) + force,
            f"resubmit the {g.count} dead letter(s) of {g.key}",
            f"triage-resubmit-{number}",
        )
        ids = _e(", ".join(g.record_ids)) or "–"
        rows.append(
            f'<tr><td class="n">{number}</td><td data-testid="triage-group">{_e(g.key)}</td>'
            f'<td class="n" data-testid="triage-count">{g.count}</td>'
            f"<td>{_e(_when(g.oldest))}</td><td>{_e(_when(g.newest))}</td>"
            f'<td data-testid="triage-reason">{_e(g.reason)}'
            f"{' (last error ' + _e(g.last_error) + ')' if g.last_error else ''}</td>"
            f"<td>{_e(g.field) or '<span class=muted>–</span>'}</td>"
            f'<td data-testid="triage-cause">{_e(g.cause)}</td><td data-testid="triage-fix">{_md(g.fix)}</td>'
            f"<td>{verdict}<br><span class=muted>records: {ids}</span><br>{form}</td></tr>"
        )
    table = _table(
        (
            "#",
            "group",
            "#count",
            "oldest",
            "newest",
            "reason",
            "field",
            "likely cause",
            "fix",
            "bulk resubmit",
        ),
        rows,
        '<p class="muted" data-testid="no-triage">No dead letters.</p>',
    )
    err = f'<p class="err">{_e(error)}</p>' if error else ""
    total = sum(g.count for g in groups)
    body = (
        f'<section><h2>Dead letters by cause (<span data-testid="triage-total">{total}</span> in '
        f"{len(groups)} group(s))</h2>{err}{table}<p class=muted>The same as "
        "<code>syncctl dlq triage</code>; each resubmit is written to the audit.</p></section>"
    )
    return _page("triage", links, body)


def render_outcomes(action: Action, outcomes: Sequence[Outcome], links: Links) -> str:
    rows = "".join(
        f"<tr><td>{_e(o.dead_letter.subscription)}</td><td>{_e(o.dead_letter.message_id)}</td>"
        f'<td data-testid="outcome">{_e(o.action)}</td><td>{_e(o.new_message_id)}</td>'
        f"<td>{_e(o.note)}</td></tr>"
        for o in outcomes
    )
    summary = (
        f"{len(outcomes)} dead letter(s): {ACTIONS[action]}" if outcomes else "Nothing matched: no change."
    )
    body = (
        f'<section class="flash"><h2 data-testid="flash">{_e(summary)}</h2>'
        "<table><thead><tr><th>subscription</th><th>message id</th><th>what happened</th>"
        f"<th>new message id</th><th>note</th></tr></thead><tbody>{rows}</tbody></table>"
        f'<p><a href="{_e(links.to("deadletters"))}">Back to the dead letters</a> · '
        f'<a href="{_e(links.to())}">Overview</a></p></section>'
    )
    return _page(action, links, body)


def render_error(status: int, message: str, links: Links) -> str:
    return _page(
        "error",
        links,
        f'<section><h2 class="err">{status}</h2><p data-testid="error">{_e(message)}</p></section>',
    )


def as_json(data: Any) -> str:
    return json.dumps(data, default=str, indent=1)


# ----------------------------------------------------------------------------- operator loop
def render_history(
    links: Links,
    *,
    system: str,
    record_type: str,
    record_id: str,
    history: RecordHistory | None,
    error: str | None = None,
) -> str:
    """One record's history (shared.ops.history), oldest first, and "sync it now"."""
    systems = "".join(
        f"<option{' selected' if s == system else ''}>{s}</option>" for s in ("brightpearl", "dataverse")
    )
    form = (
        f'<form method=get action="{_e(links.base)}/history">'
        + (_hidden(code=links.key) if links.key else "")
        + f"<label>system <select name=system>{systems}</select></label> "
        f'<label>type <input name=type value="{_e(record_type)}" placeholder="contact"></label> '
        f'<label>id <input name=id value="{_e(record_id)}"></label> <button type=submit>Show</button></form>'
    )
    parts = [form, f'<p class="err" data-testid="error">{_e(error)}</p>' if error else ""]
    if history is not None:
        ref = history.record
        linked = ", ".join(f"{s} {i}" for s, i in history.linked.items()) or "not linked"
        state = f" ({_e(history.link_state)})" if history.link_state else ""
        rows = "".join(
            f"<tr><td>{_e(_when(e.at))}</td><td>{_e(e.flow)}</td>"
            f"<td data-testid=history-result>{_e(e.result)}</td><td>{_e(e.reason)}</td>"
            f"<td class=n>{_e(e.attempt)}</td><td>{_e(e.source)}</td><td>{_e(e.target)}</td>"
            f"<td>{_e(', '.join(e.fields))}</td><td>{_e(e.description)}</td></tr>"
            for e in history.events
        )
        notes = "".join(f'<p class="muted">{_e(n)}</p>' for n in history.notes)
        sync = _action_form(
            "sync",
            "sync",
            links,
            _hidden(system=ref.system, type=ref.name, id=ref.record_id),
            f"publish a change notice for {ref.label} now",
            "sync",
        )
        parts.append(
            f"<h3>{_e(ref.label)} [{_e(ref.audit_entity)}]: {_e(linked)}{state}; "
            f'<span data-testid="retries">{history.retries}</span> retr(ies)</h3>{notes}'
            "<table><thead><tr><th>at</th><th>flow</th><th>what</th><th>reason</th><th class=n>attempt</th>"
            "<th>source</th><th>target</th><th>fields changed</th><th>description</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{sync}"
        )
    return _page("record history", links, f"<section><h2>Record history</h2>{''.join(parts)}</section>")


def history_link(links: Links, system: str, record_type: str | None, record_id: str) -> str:
    """A record id as a link to its history."""
    if not record_type:
        return _e(record_id)
    url = links.to("history", system=system, type=record_type, id=record_id)
    return f'<a href="{_e(url)}">{_e(record_id)}</a>'


def render_review(items: Sequence[ReviewItem], links: Links, *, days: int, error: str | None = None) -> str:
    """The needs-review list (shared.ops.review) with accept / dismiss per record."""
    rows = []
    for i in items:
        forms = "".join(
            _action_form(
                f"review/{decision}",
                decision,
                links,
                _hidden(key=i.key, days=str(days)),
                f"{what} {i.key}",
                f"{decision}-{i.key}",
            )
            for decision, what in (
                ("accept", "the cause is fixed: sync again"),
                ("dismiss", "nothing to do for"),
            )
        )
        rows.append(
            f"<tr><td>{_e(_when(i.at))}</td><td>{_e(i.flow)}</td>"
            f"<td>{_e(i.system)} {history_link(links, i.system, i.entity, i.record_id)}</td>"
            f'<td data-testid="review-reason">{_e(i.reason)}</td><td>{_e(i.description)}</td>'
            f"<td>{forms}</td></tr>"
        )
    table = _table(
        ("flagged", "flow", "record", "reason", "what to check", "decision"),
        rows,
        '<p class="muted" data-testid="no-review">Nothing waits for review.</p>',
    )
    err = f'<p class="err">{_e(error)}</p>' if error else ""
    body = (
        f'<section><h2>Needs review (<span data-testid="review-count">{len(items)}</span>, '
        f"flagged in the last {days} days)</h2>{err}{table}</section>"
    )
    return _page("needs review", links, body)


def render_done(
    title: str, lines: Sequence[str], links: Links, back: str = "", back_params: dict[str, str] | None = None
) -> str:
    """The answer to an operator action: what was done, and where to look next."""
    items = "".join(f"<li data-testid=done-line>{_e(line)}</li>" for line in lines)
    body = (
        f'<section class="flash"><h2 data-testid="flash">{_e(title)}</h2><ul>{items}</ul>'
        f'<p><a href="{_e(links.to(back, **(back_params or {})))}">Back</a> · '
        f'<a href="{_e(links.to())}">Overview</a></p></section>'
    )
    return _page(title, links, body)
