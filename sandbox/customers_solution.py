"""The sandbox's Dataverse: a bare simulator (a stock org without the integration's `bpi_`
columns, keys or change tracking) provisioned by the code a real deployment runs,
`syncctl dataverse provision` (shared/dataverse/provision.py), through an in-process client.

So the sandbox can only work when provisioning works: every column, choice option, alternate
key and change-tracking flag the mappings need is created through the simulator's metadata
Web API, exactly as against a real environment. `python -m sandbox.customers_solution --bare`
skips the provisioning (then run `syncctl dataverse provision` against it yourself).
"""

from __future__ import annotations

from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import SimulatorConfig
from sandbox.dataverse.inprocess import in_process_client
from sandbox.dataverse.schema import Schema, load_schema
from shared.dataverse.provision import Provisioner, ProvisionReport, schema_plan
from shared.mapping import CustomerMapping


def provision_simulator(simulator: Simulator, mapping: CustomerMapping | None = None) -> ProvisionReport:
    """Provision the mappings' schema into `simulator` and keep it across `/_sandbox/reset`."""
    client = in_process_client(simulator)
    try:
        report = Provisioner(client, poll_interval=0.05, key_timeout=60).run(schema_plan(mapping))
    finally:
        client.close()
    if report.remaining or report.pending_keys:
        left = [str(p) for p in report.remaining] + [f"key {k} still building" for k in report.pending_keys]
        raise RuntimeError("provisioning the sandbox's Dataverse failed: " + "; ".join(left))
    simulator._base_schema = simulator.engine.schema.clone()
    return report


def install(simulator: Simulator, mapping: CustomerMapping | None = None) -> ProvisionReport:
    """Make `simulator` a bare org (its rows are reset) and provision the mappings' schema."""
    simulator._base_schema = simulator._base_schema.bare()
    simulator.reset()
    return provision_simulator(simulator, mapping)


def solution_schema(mapping: CustomerMapping | None = None, base: Schema | None = None) -> Schema:
    """The schema a bare org has after provisioning (the simulator's stock schema by default)."""
    simulator = Simulator(SimulatorConfig(key_activation_seconds=0), (base or load_schema()).bare())
    try:
        provision_simulator(simulator, mapping)
        return simulator.engine.schema.clone()
    finally:
        simulator.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m sandbox.customers_solution [sandbox.dataverse options]`: the Dataverse simulator,
    started bare and provisioned for the mappings and the catalogue (sandbox/catalogue_solution.py),
    what `syncctl sandbox up` runs."""
    import sys

    from sandbox.dataverse.__main__ import build_parser, config_from_args
    from sandbox.dataverse.server import serve

    args = build_parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing to bind {args.host!r}: the simulator serves loopback only", file=sys.stderr)
        return 2
    base = load_schema(args.schema) if args.schema else load_schema()
    simulator = Simulator(config_from_args(args), base.bare())
    if args.bare:
        note = "bare: run `syncctl dataverse provision` against it"
    else:
        from sandbox.catalogue_solution import provision_simulator as provision_catalogue

        report = provision_simulator(simulator)
        catalogue = provision_catalogue(simulator)  # product's bpi_ columns, keys, change tracking
        changes = len(report.changes) + len(catalogue.changes)
        note = f"provisioned for the mappings and the catalogue: {changes} change(s)"
    print(f"Dataverse simulator ({note}) on http://{args.host}:{args.port}/api/data/v9.2/")
    serve(simulator, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
