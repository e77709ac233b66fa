"""Command line of the Brightpearl simulator: every SimulatorConfig field is a flag.

    python -m sandbox.brightpearl --host 127.0.0.1 --port 8101 --rate-limit 20 \
        --rate-window-seconds 5 --contact-webhooks true --seed-contacts 200
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal, get_args, get_origin

import uvicorn

from sandbox.brightpearl.app import create_app
from sandbox.brightpearl.config import SimulatorConfig


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.brightpearl", description="Brightpearl API simulator (loopback only)"
    )
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "localhost", "::1"])
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--log-level", default="info")
    for name, field in SimulatorConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        default = field.get_default(call_default_factory=True)
        help_text = f"{field.description or ''} (default: {default})".strip()
        if get_origin(field.annotation) is list:
            parser.add_argument(flag, dest=name, nargs="+", help=help_text)
        elif get_origin(field.annotation) is Literal:
            parser.add_argument(flag, dest=name, choices=list(get_args(field.annotation)), help=help_text)
        else:
            parser.add_argument(flag, dest=name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    for name in SimulatorConfig.model_fields:
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    try:
        config = SimulatorConfig.model_validate(overrides)  # strings are coerced and checked
    except Exception as exc:
        print(f"invalid simulator option: {exc}", file=sys.stderr)
        return 2
    app = create_app(config)
    print(
        f"Brightpearl simulator on http://{args.host}:{args.port}/public-api/{config.accounts[0]}/ "
        f"(admin: /_sandbox/)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
