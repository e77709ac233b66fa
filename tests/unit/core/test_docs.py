"""The docs that are derived from code stay true to it."""

from pathlib import Path

from shared.settings import SECTIONS
from shared.settings_doc import render

ROOT = Path(__file__).resolve().parents[3]


def test_configuration_reference_is_up_to_date():
    current = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    stale = "docs/configuration.md is stale: run `syncctl settings docs > docs/configuration.md`"
    assert current == render(), stale


def test_every_setting_is_documented_with_its_name():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for section in SECTIONS.values():
        for name, field in section.model_fields.items():
            alias = field.validation_alias if isinstance(field.validation_alias, str) else name
            assert f"`{alias}`" in text


def test_every_reason_code_an_operator_can_meet_is_explained_in_the_runbook():
    from shared.quality.issues import IssueCode
    from shared.resilience import RULES

    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    codes = {rule.reason for rule in RULES}
    codes |= {"MalformedMessage", "RetriesExhausted", "MaxDeliveryCountExceeded", "TTLExpiredException"}
    codes |= {str(code) for code in IssueCode}
    missing = sorted(code for code in codes if f"`{code}`" not in runbook)
    assert not missing, f"reason codes missing from docs/operations.md: {missing}"
