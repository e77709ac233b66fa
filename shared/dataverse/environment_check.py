"""Checks that a Dataverse environment has what the integration needs: the `bpi_` custom columns,
the alternate keys on bpi_brightpearlid (Active), and change tracking on the polled tables.
The lead wires this into `syncctl dataverse check`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared.dataverse import odata
from shared.dataverse.errors import DataverseNotFound

if TYPE_CHECKING:
    from shared.dataverse.client import DataverseClient

ProblemKind = Literal[
    "missing_table", "missing_column", "missing_key", "key_not_active", "change_tracking_off"
]


@dataclass(frozen=True)
class Requirement:
    table: str
    columns: tuple[str, ...] = ()
    keys: tuple[tuple[str, ...], ...] = ()
    change_tracking: bool = False


@dataclass(frozen=True)
class Problem:
    table: str
    kind: ProblemKind
    name: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.table}: {self.message} Fix: {self.fix}"


BRIGHTPEARL_KEY = ("bpi_brightpearlid",)
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "contact",
        ("bpi_brightpearlid", "bpi_lifetimevalue", "bpi_lastpurchasedate"),
        (BRIGHTPEARL_KEY,),
        change_tracking=True,
    ),
    Requirement("account", ("bpi_brightpearlid",), (BRIGHTPEARL_KEY,), change_tracking=True),
    Requirement(
        "product", ("bpi_brightpearlid", "bpi_availablestock"), (BRIGHTPEARL_KEY,), change_tracking=True
    ),
    Requirement("salesorder", ("bpi_brightpearlid",), (BRIGHTPEARL_KEY,), change_tracking=True),
    Requirement("incident", ("bpi_brightpearlid",), (BRIGHTPEARL_KEY,)),
)


def check_environment(
    client: DataverseClient, requirements: tuple[Requirement, ...] = REQUIREMENTS
) -> list[Problem]:
    """Every missing piece, table by table (empty list: the environment is ready)."""
    problems: list[Problem] = []
    for req in requirements:
        path = f"EntityDefinitions(LogicalName={odata.literal(odata.prop(req.table))})"
        try:
            definition = client.request(
                "GET",
                path,
                params={
                    "$select": "LogicalName,ChangeTrackingEnabled",
                    "$expand": "Attributes($select=LogicalName),Keys($select=SchemaName,KeyAttributes,"
                    "EntityKeyIndexStatus)",
                },
            ).json()
        except DataverseNotFound:
            problems.append(
                Problem(
                    req.table,
                    "missing_table",
                    req.table,
                    f"table {req.table!r} does not exist.",
                    "Install the Dynamics 365 app that provides it.",
                )
            )
            continue
        columns = {a.get("LogicalName") for a in definition.get("Attributes", [])}
        for column in req.columns:
            if column not in columns:
                problems.append(
                    Problem(
                        req.table,
                        "missing_column",
                        column,
                        f"column {column!r} is missing.",
                        "Import the integration's solution (publisher prefix bpi_).",
                    )
                )
        keys = definition.get("Keys", [])
        for key in req.keys:
            match = next(
                (k for k in keys if tuple(sorted(k.get("KeyAttributes") or [])) == tuple(sorted(key))), None
            )
            label = ",".join(key)
            if match is None:
                problems.append(
                    Problem(
                        req.table,
                        "missing_key",
                        label,
                        f"no alternate key on ({label}).",
                        "Create the alternate key in the solution and wait until it is Active.",
                    )
                )
            elif match.get("EntityKeyIndexStatus") != "Active":
                problems.append(
                    Problem(
                        req.table,
                        "key_not_active",
                        label,
                        f"alternate key on ({label}) is {match.get('EntityKeyIndexStatus')}.",
                        "Wait for the index job, or reactivate the key (ReactivateEntityKey).",
                    )
                )
        if req.change_tracking and not definition.get("ChangeTrackingEnabled"):
            problems.append(
                Problem(
                    req.table,
                    "change_tracking_off",
                    "ChangeTrackingEnabled",
                    "change tracking is off.",
                    "Enable 'Track changes' on the table (it cannot be turned off again).",
                )
            )
    return problems
