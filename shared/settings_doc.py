"""Renders docs/configuration.md from the settings classes, so the reference cannot drift."""

from __future__ import annotations

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.settings import SECTIONS

CONNECTION_STRINGS = ("ServiceBusConnection", "AzureWebJobsStorage", "APPLICATIONINSIGHTS_CONNECTION_STRING")


def is_secret(name: str) -> bool:
    """Settings whose value is a secret: Key Vault references in Azure, never logged."""
    return name in CONNECTION_STRINGS or name.endswith(("_SECRET", "_TOKEN", "_PASSWORD"))

HEADER = """# Configuration reference

Generated from the settings classes (`shared/settings.py` and each connector's `settings.py`)
by `syncctl settings docs > docs/configuration.md`; a test fails when this file is stale.

Every setting is an app setting in Azure (set by `infra/`, secrets as Key Vault references)
or a `Values` entry of `local.settings.json` in the sandbox. An empty value counts as unset.
The app validates them all at start-up and refuses to start, naming each missing or invalid
setting; `syncctl settings check` does the same from the command line.
"""


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.default
    if value is PydanticUndefined:
        value = field.get_default(call_default_factory=True)
    if value is None or value == "":
        return ""
    if hasattr(value, "value"):
        value = value.value
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def render() -> str:
    lines = [HEADER]
    for key, section in SECTIONS.items():
        doc = (section.__doc__ or "").strip().splitlines()[0] if section.__doc__ else ""
        lines.append(f"\n## {key}\n")
        if doc:
            lines.append(f"{doc}\n")
        lines.append("| setting | default | meaning |")
        lines.append("|---|---|---|")
        for name, field in section.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else name
            meaning = field.description or ""
            if is_secret(alias) and "Key Vault" not in meaning:
                meaning = (meaning + " (secret: Key Vault in Azure)").strip()
            lines.append(f"| `{alias}` | {_default(field)} | {_cell(meaning)} |")
    return "\n".join(lines) + "\n"
