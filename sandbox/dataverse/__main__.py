"""CLI: `python -m sandbox.dataverse --host 127.0.0.1 --port 8102 [--seed] [limits and faults]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sandbox.dataverse.app import Simulator
from sandbox.dataverse.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SimulatorConfig
from sandbox.dataverse.schema import load_schema
from sandbox.dataverse.seed import seed_demo
from sandbox.dataverse.server import serve


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sandbox.dataverse", description=__doc__)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8102)
    p.add_argument("--public-url", help="base URL used in links and the token scope (default: request host)")
    p.add_argument("--tenant-id", help="tenant id the token endpoint accepts")
    p.add_argument(
        "--client",
        action="append",
        metavar="ID:SECRET",
        help="an app registration allowed to get tokens (repeatable)",
    )
    p.add_argument("--organization-id")
    p.add_argument("--organization-name")
    p.add_argument("--request-limit", type=int, help="requests per user per window (real: 6000)")
    p.add_argument("--window-seconds", type=float, help="service-protection window (real: 300 s)")
    p.add_argument("--execution-limit-ms", type=float, help="execution time per window (real: 1,200,000 ms)")
    p.add_argument("--concurrency-limit", type=int, help="concurrent requests per user (real: 52)")
    p.add_argument("--dop-hint", type=int, help="x-ms-dop-hint value returned on every response")
    p.add_argument("--latency-ms", type=float, help="added latency per Web API request")
    p.add_argument("--token-lifetime-seconds", type=float, help="access token lifetime (real: ~3600)")
    p.add_argument("--max-page-size", type=int, help="default/maximum page size (real: 5000)")
    p.add_argument("--change-tracking-expiry-days", type=float, help="delta token lifetime (doc: 7 days)")
    p.add_argument(
        "--fractional-retry-after",
        action="store_true",
        help="allow Retry-After below one second (sandbox speed-up; real is whole seconds)",
    )
    p.add_argument("--enforce-application-required", action="store_true")
    p.add_argument("--readonly-writes", choices=["ignore", "reject"])
    p.add_argument("--products-active-on-create", action="store_true")
    p.add_argument(
        "--schema", type=Path, help="alternative schema file (default: sandbox/dataverse/schema/tables.yaml)"
    )
    p.add_argument(
        "--bare",
        action="store_true",
        help="start as a stock org: no custom (bpi_) columns, no keys on them, change tracking off "
        "(then `syncctl dataverse provision` creates what the mappings need)",
    )
    p.add_argument("--seed", action="store_true", help="seed realistic demo data at start")
    p.add_argument("--seed-contacts", type=int, default=50)
    return p


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    config = SimulatorConfig()
    mapping = {
        "public_url": args.public_url,
        "tenant_id": args.tenant_id,
        "organization_id": args.organization_id,
        "organization_name": args.organization_name,
        "request_limit": args.request_limit,
        "window_seconds": args.window_seconds,
        "execution_limit_ms": args.execution_limit_ms,
        "concurrency_limit": args.concurrency_limit,
        "dop_hint": args.dop_hint,
        "latency_ms": args.latency_ms,
        "token_lifetime_seconds": args.token_lifetime_seconds,
        "max_page_size": args.max_page_size,
        "change_tracking_expiry_days": args.change_tracking_expiry_days,
        "readonly_writes": args.readonly_writes,
    }
    for key, value in mapping.items():
        if value is not None:
            setattr(config, key, value)
    config.fractional_retry_after = args.fractional_retry_after
    config.enforce_application_required = args.enforce_application_required
    config.products_active_on_create = args.products_active_on_create
    if args.client:
        clients = {}
        for item in args.client:
            cid, sep, secret = item.partition(":")
            if not sep or not cid or not secret:
                raise SystemExit(f"--client must be ID:SECRET, got {item!r}")
            clients[cid] = secret
        config.clients = clients
    return config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"refusing to bind {args.host!r}: the simulator serves loopback only", file=sys.stderr)
        return 2
    config = config_from_args(args)
    try:
        schema = load_schema(args.schema) if args.schema else None
    except (OSError, ValueError, KeyError) as exc:
        print(f"--schema {args.schema}: {exc}", file=sys.stderr)
        return 2
    if args.bare:
        schema = (schema or load_schema()).bare()
    sim = Simulator(config, schema)
    if args.seed:
        seed_demo(
            sim,
            {
                "accounts": max(args.seed_contacts // 5, 1),
                "contacts": args.seed_contacts,
                "products": 20,
                "orders": 10,
                "cases": 5,
            },
        )
    client_note = (
        f"client id {DEFAULT_CLIENT_ID} / secret {DEFAULT_CLIENT_SECRET}"
        if config.clients.get(DEFAULT_CLIENT_ID) == DEFAULT_CLIENT_SECRET
        else "custom clients"
    )
    print(
        f"Dataverse simulator on http://{args.host}:{args.port}/api/data/v9.2/ "
        f"(token: /{config.tenant_id}/oauth2/v2.0/token, {client_note}; admin: /_sandbox/)"
    )
    serve(sim, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
