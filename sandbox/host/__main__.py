"""Command line of the local Functions host: `python -m sandbox.host [options]`.

Loads local.settings.json (or local.settings.example.json), imports the function app,
lists its functions and serves them until Ctrl-C or SIGTERM, then shuts down gracefully
(running invocations finish or their messages are released) and exits with code 0.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sandbox.host.config import HostConfigError
from sandbox.host.runtime import LocalHost
from shared.telemetry import quiet_http_client_loggers


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.host", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--app", default="function_app", help="module of the function app (default function_app)"
    )
    # Every option but --app and --log-level is a LocalHost keyword argument (its dest), passed on.
    parser.add_argument(
        "--settings",
        dest="settings_path",
        metavar="SETTINGS",
        type=Path,
        default=None,
        help="settings file (default local.settings.json, else local.settings.example.json)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (default Host.LocalHttpPort of the settings file, else 7071; 0 = any free port)",
    )
    parser.add_argument(
        "--project-root", type=Path, default=Path("."), help="folder with host.json (default .)"
    )
    parser.add_argument(
        "--grace",
        dest="shutdown_grace",
        metavar="GRACE",
        type=float,
        default=30.0,
        help="seconds to wait for running invocations on stop",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.5, help="seconds between polls of the local bus"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: list[str] | None = None) -> int:
    options = vars(_parser().parse_args(argv))
    app, log_level = options.pop("app"), options.pop("log_level")
    logging.basicConfig(
        level=log_level, stream=sys.stdout, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    quiet_http_client_loggers()  # request URLs carry query strings (e-mails, names)
    try:
        host = LocalHost(app, **options)
        host.serve_forever(
            on_started=lambda h: print(
                f"Local Functions host listening on {h.base_url} (Ctrl-C to stop)", flush=True
            )
        )
    except HostConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
