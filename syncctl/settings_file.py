"""The settings file the commands read: local.settings.json (or its example) by default.

Its own module so each command module can use it without importing syncctl.main, which
imports them all (no import cycle).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]


def load_settings_file(path: Path | None) -> dict[str, str]:
    """Values of a local.settings.json-style file (default: local.settings.json or the example)."""
    if path is None:
        path = ROOT / "local.settings.json"
        if not path.exists():
            path = ROOT / "local.settings.example.json"
    try:
        values = json.loads(path.read_text(encoding="utf-8")).get("Values", {})
    except FileNotFoundError:
        raise typer.BadParameter(f"settings file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    return {k: str(v) for k, v in values.items()}


def apply_settings_file(path: Path | None) -> None:
    """Put the file's values into the environment; variables already set win; empty is unset."""
    for key, value in load_settings_file(path).items():
        if value != "":
            os.environ.setdefault(key, value)
