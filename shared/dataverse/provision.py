"""Schema as code: the Dataverse columns, choices, alternate keys and change tracking the
mappings need, and the Web API metadata calls that create them (`syncctl dataverse provision`).

`schema_plan()` derives the plan from the mappings (mappings/*.yaml through shared.mapping):
every column the translators read or write, typed from the mapping (custom fields) or the
column catalogue (shared/mapping/columns.py); the alternate key on each `bpi_brightpearlid`
key column; change tracking on the tables the Dataverse poller reads. `syncctl dataverse
check` (environment_check.py) compares an environment with the same plan, and `provision()`
fixes what the check finds, re-runnably (reference dataverse-api.md §14.11): read first, then
create missing columns (POST …/Attributes), add missing choice options (InsertOptionValue),
widen too-short text columns (GET + PUT of the full definition), create missing keys
(POST …/Keys) and enable change tracking (GET + PUT of the table definition), publish what
was updated (PublishXml), and wait until new keys are Active. Nothing is ever deleted.

Only columns carrying a custom prefix of the mapping (`custom_column_prefixes`, `bpi_`) are
created; a standard column the environment lacks is reported, never invented.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.dataverse.environment_check import Problem, check_environment
from shared.dataverse.schema import (
    METADATA_HEADERS,
    METADATA_TYPES,
    KeySpec,
    SchemaPlan,
    attribute_body,
    attribute_path,
    entity_path,
    key_body,
    label,
)
from shared.dataverse.schema import ColumnSpec as ColumnSpec
from shared.dataverse.schema import schema_plan as schema_plan

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient


# --- applying the plan ------------------------------------------------------------------------


class ProvisionError(Exception):
    """Provisioning could not finish; the message names the table, column or key."""


@dataclass
class ProvisionReport:
    changes: list[str] = field(default_factory=list)  # done (or, in a dry run, to do)
    remaining: list[Problem] = field(default_factory=list)  # what provisioning cannot fix
    pending_keys: list[str] = field(default_factory=list)  # keys whose index is still building
    published: list[str] = field(default_factory=list)  # tables published after updates
    dry_run: bool = False


@dataclass
class Provisioner:
    """Applies a SchemaPlan to one environment through the client's request method."""

    client: DataverseClient
    solution: str | None = None  # MSCRM.SolutionUniqueName: the unmanaged solution to add to
    key_timeout: float = 300.0
    poll_interval: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    echo: Callable[[str], None] = lambda _line: None

    def _headers(self) -> dict[str, str]:
        headers = dict(METADATA_HEADERS)
        if self.solution:
            headers["MSCRM.SolutionUniqueName"] = self.solution
        return headers

    def run(self, plan: SchemaPlan, *, dry_run: bool = False) -> ProvisionReport:
        report = ProvisionReport(dry_run=dry_run)
        problems = check_environment(self.client, plan)
        to_publish: list[str] = []
        new_keys: list[tuple[str, KeySpec]] = []
        order = ("missing_column", "missing_option", "column_too_short", "missing_key", "change_tracking_off")
        for kind in order:
            for problem in (p for p in problems if p.kind == kind):
                report.changes.append(problem.change)
                if dry_run:
                    continue
                self.echo(problem.change)
                self._apply(problem)
                if kind in ("missing_option", "column_too_short", "change_tracking_off"):
                    to_publish.append(problem.table)
                if kind == "missing_key" and problem.key is not None:
                    new_keys.append((problem.table, problem.key))
        waiting = [(p.table, p.key) for p in problems if p.kind == "key_not_active" and p.key is not None]
        report.remaining = [p for p in problems if p.kind not in order and p.kind != "key_not_active"]
        if dry_run:
            report.pending_keys = [f"{t}.{k.name}" for t, k in waiting]
            return report
        if to_publish:  # part of the changes above, not a change of its own
            report.published = sorted(set(to_publish))
            self.publish(report.published)
            self.echo(f"published {', '.join(report.published)}")
        report.pending_keys = self.wait_for_keys([*new_keys, *waiting])
        if new_keys or waiting:  # a key whose index job failed is a problem to report
            known = {(p.table, p.kind, p.name) for p in report.remaining}
            report.remaining += [
                p
                for p in check_environment(self.client, plan)
                if p.kind == "key_failed" and (p.table, p.kind, p.name) not in known
            ]
        return report

    def _apply(self, problem: Problem) -> None:
        table, headers = problem.table, self._headers()
        if problem.kind == "missing_column" and problem.column is not None:
            self.client.request(
                "POST",
                f"{entity_path(table)}/Attributes",
                json_body=attribute_body(problem.column),
                headers=headers,
            )
        elif problem.kind == "missing_option" and problem.column is not None and problem.option is not None:
            value, text = problem.option
            body: dict[str, Any] = {
                "EntityLogicalName": table,
                "AttributeLogicalName": problem.column.name,
                "Value": value,
                "Label": label(text),
            }
            if self.solution:
                body["SolutionUniqueName"] = self.solution
            self.client.request("POST", "InsertOptionValue", json_body=body, headers=dict(METADATA_HEADERS))
        elif problem.kind == "column_too_short" and problem.column is not None:
            spec = problem.column
            path = f"{attribute_path(table, spec.name)}/Microsoft.Dynamics.CRM.{METADATA_TYPES[spec.kind][0]}"
            definition = self.client.request("GET", path, headers=dict(METADATA_HEADERS)).json()
            definition.pop("@odata.context", None)  # left in, the PUT fails (reference §14.4)
            definition["@odata.type"] = f"Microsoft.Dynamics.CRM.{METADATA_TYPES[spec.kind][0]}"
            definition["MaxLength"] = spec.max_length
            self.client.request(
                "PUT",
                attribute_path(table, spec.name),
                json_body=definition,
                headers={**headers, "MSCRM.MergeLabels": "true"},
            )
        elif problem.kind == "missing_key" and problem.key is not None:
            self.client.request(
                "POST", f"{entity_path(table)}/Keys", json_body=key_body(problem.key), headers=headers
            )
        elif problem.kind == "change_tracking_off":
            definition = self.client.request("GET", entity_path(table), headers=dict(METADATA_HEADERS)).json()
            definition.pop("@odata.context", None)
            definition["ChangeTrackingEnabled"] = True
            self.client.request(
                "PUT",
                entity_path(table),
                json_body=definition,
                headers={**headers, "MSCRM.MergeLabels": "true"},
            )
        else:  # pragma: no cover - run() only passes the kinds above
            raise ProvisionError(f"{table}: cannot apply {problem.kind}")

    def publish(self, tables: list[str]) -> None:
        """PublishXml for updated tables (creates publish themselves; updates need it, §14.8)."""
        entities = "".join(f"<entity>{t}</entity>" for t in tables)
        xml = f"<importexportxml><entities>{entities}</entities></importexportxml>"
        self.client.request(
            "POST", "PublishXml", json_body={"ParameterXml": xml}, headers=dict(METADATA_HEADERS)
        )

    def wait_for_keys(self, keys: list[tuple[str, KeySpec]]) -> list[str]:
        """Poll until every key's index is Active or Failed; the names still building at timeout."""
        waiting = {(t, k.name.lower()) for t, k in keys}
        deadline = self.clock() + self.key_timeout
        while waiting:
            for table in sorted({t for t, _ in waiting}):
                listed = self.client.request(
                    "GET",
                    f"{entity_path(table)}/Keys",
                    params={"$select": "SchemaName,KeyAttributes,EntityKeyIndexStatus"},
                    headers=dict(METADATA_HEADERS),
                ).json()
                for key in listed.get("value", []):
                    name = str(key.get("SchemaName", "")).lower()
                    if (table, name) in waiting and key.get("EntityKeyIndexStatus") in ("Active", "Failed"):
                        waiting.discard((table, name))
            if not waiting or self.clock() >= deadline:
                break
            self.sleep(self.poll_interval)
        return sorted(f"{t}.{n}" for t, n in waiting)


def provision(
    client: DataverseClient, plan: SchemaPlan | None = None, *, dry_run: bool = False, **options: Any
) -> ProvisionReport:
    """Bring the environment in line with `plan` (default: from the mappings); see Provisioner."""
    return Provisioner(client, **options).run(plan or schema_plan(), dry_run=dry_run)
