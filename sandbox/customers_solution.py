"""The integration's Dataverse solution columns for the customer mapping, added to the simulator.

A real environment gets these columns from the integration's solution (docs/mapping.md lists
them: bpi_customergroup, bpi_tags, bpi_newsletteroptin, the custom-field columns, and
standard columns the stock simulator schema leaves out, such as salutation). The simulator's
schema file models a stock org plus the alternate keys, so the sandbox installs the rest
here, derived from `required_columns(mapping)` and the mapping's column catalogue.
"""

from __future__ import annotations

from typing import Any

from sandbox.dataverse.schema import Column, Schema, load_schema
from shared.mapping import CustomerMapping, load_customer_mapping, required_columns
from shared.mapping.columns import dataverse_column

_TYPES = {
    "string": "string",
    "memo": "memo",
    "boolean": "bool",
    "picklist": "picklist",
    "integer": "int",
    "date": "datetime",
    "datetime": "datetime",
}


def _column_for(entity: str, name: str, mapping: CustomerMapping) -> Column:
    for cf in mapping.custom_fields:
        if cf.dataverse == name:
            if cf.type == "select":
                return Column(
                    name,
                    "picklist",
                    custom=True,
                    options={int(o.dataverse): str(o.value) for o in cf.options},
                )
            if cf.type == "yesno":
                return Column(name, "bool", custom=True)
            if cf.type == "integer":
                return Column(name, "int", custom=True)
            if cf.type == "date":
                return Column(name, "datetime", custom=True)
            return Column(
                name,
                "memo" if cf.type == "textarea" else "string",
                max_length=cf.max_length or 4000,
                custom=True,
            )
    known = dataverse_column(entity, name)
    if known is None:
        return Column(name, "string", max_length=100, custom=name.startswith("bpi_"))
    kind = _TYPES.get(known.type, "string")
    options = {int(o): str(o) for o in (known.options or ())} if kind == "picklist" else {}
    return Column(
        name,
        kind,
        max_length=known.max_length,
        custom=name.startswith("bpi_"),
        options=options,
        default=False if kind == "bool" else None,
    )


def solution_schema(mapping: CustomerMapping | None = None, base: Schema | None = None) -> Schema:
    """The simulator schema plus every column the customer mapping reads or writes."""
    mapping = mapping or load_customer_mapping()
    schema = (base or load_schema()).clone()
    for entity, columns in required_columns(mapping).items():
        table = schema.tables[entity]
        for name in columns:
            if name not in table.columns:
                table.columns[name] = _column_for(entity, name, mapping)
    return schema


def install(simulator: Any, mapping: CustomerMapping | None = None) -> None:
    """Install the solution into a running simulator (sandbox.dataverse.app.Simulator); resets it."""
    simulator._base_schema = solution_schema(mapping, simulator._base_schema)
    simulator.reset()


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox.customers_solution [sandbox.dataverse options]`: the Dataverse simulator
    with the customer solution installed (what `syncctl sandbox up` runs)."""
    import sys

    import uvicorn

    from sandbox.dataverse.__main__ import build_parser, config_from_args
    from sandbox.dataverse.app import Simulator

    args = build_parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing to bind {args.host!r}: the simulator serves loopback only", file=sys.stderr)
        return 2
    sim = Simulator(
        config_from_args(args), solution_schema(base=load_schema(args.schema) if args.schema else None)
    )
    print(
        f"Dataverse simulator (customer solution installed) on http://{args.host}:{args.port}/api/data/v9.2/"
    )
    uvicorn.run(sim, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
