"""How every `syncctl` command ends when something is wrong: one line naming the problem, exit 2.

`SafeGroup` is the click group class of the root `syncctl` app. It runs the command tree in
click's non-standalone mode and turns what escapes into a single line on stderr:

- a usage error (a bad option value, a malformed id, an unknown command): `error: <message>`;
- a service that cannot be reached or answers with an error (Azurite, the bus, Brightpearl,
  Dataverse): `error: <what failed>: <why>`, naming the host when the error knows it;
- anything else: `error: <ExceptionType>: <message>`.

Exit code 2 in every case (`typer.Exit(n)` raised by a command keeps its own code, e.g. 1 for
"checked, and found problems"). Never a traceback: set SYNCCTL_TRACEBACK=1 to see one.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer.core
from typer._click import exceptions as click_errors  # typer vendors click (typer >= 0.20)
from typer.exceptions import Abort

EXIT_PROBLEM = 2
MAX_LINE = 400


def one_line(text: str) -> str:
    """`text` on one line, at most MAX_LINE characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def describe(exc: BaseException) -> str:
    """One line naming what went wrong, for an exception no command handled."""
    import httpx

    if isinstance(exc, httpx.RequestError):
        try:
            url = exc.request.url
            where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
        except RuntimeError:  # no request attached
            where = "a service"
        return one_line(f"cannot reach {where}: {type(exc).__name__}: {exc or 'no answer'}")
    if isinstance(exc, KeyError) and exc.args:
        return one_line(str(exc.args[0]))  # str(KeyError) quotes its message
    message = str(exc).strip()
    if isinstance(exc, ValueError) and message:
        return one_line(message)
    name = type(exc).__name__
    if name == "ClientAuthenticationError":  # azure.identity / the Dataverse token request
        return one_line(f"Dataverse sign-in failed: {message}")
    cause = exc.__cause__ or exc.__context__
    if not message and cause is not None:
        message = str(cause)
    return one_line(f"{name}: {message}" if message else name)


def fail_line(message: str) -> None:
    print(f"error: {one_line(message)}", file=sys.stderr)


class SafeGroup(typer.core.TyperGroup):
    """The root group: whatever a command raises ends as one line on stderr and exit code 2."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if os.environ.get("SYNCCTL_TRACEBACK"):
            return super().main(*args, standalone_mode=standalone_mode, **kwargs)
        code = self._run(*args, **kwargs)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, *args: Any, **kwargs: Any) -> int:
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click_errors.NoArgsIsHelpError as exc:
            print(exc.ctx.get_help() if exc.ctx is not None else str(exc))
            return EXIT_PROBLEM
        except click_errors.ClickException as exc:
            fail_line(exc.format_message())
            return EXIT_PROBLEM
        except Abort:
            fail_line("aborted")
            return 1
        except KeyboardInterrupt:
            fail_line("interrupted")
            return 130
        except Exception as exc:
            fail_line(describe(exc))
            return EXIT_PROBLEM
        return result if isinstance(result, int) else 0
