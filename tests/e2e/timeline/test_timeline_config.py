"""mappings/timeline.yaml: the shipped file loads; bad entries are refused naming the YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.mapping.config import MappingError
from shared.mapping.timeline_config import load_timeline_mapping, read_timeline_mapping
from tests.e2e.customers.conftest import ROOT


def test_the_shipped_timeline_mapping_turns_every_kind_on():
    mapping = load_timeline_mapping(ROOT / "mappings" / "timeline.yaml")
    assert mapping.enabled_kinds() == ("order_placed", "shipped", "returned", "refunded")
    assert mapping.moments.returned.write_as == "task" and mapping.moments.shipped.write_as == "note"


def _problems(tmp_path: Path, moments: dict) -> list[str]:
    data = yaml.safe_load((ROOT / "mappings" / "timeline.yaml").read_text())
    for kind, edit in moments.items():
        data["moments"][kind].update(edit)
    path = tmp_path / "timeline.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(MappingError) as caught:
        read_timeline_mapping(path)
    return caught.value.problems


def test_bad_entries_are_refused_by_yaml_path(tmp_path: Path):
    problems = _problems(tmp_path, {"order_placed": {"as": "email"}, "returned": {"priority": "urgent"}})
    assert problems == [
        "moments.order_placed.as: Input should be 'note' or 'task'",
        "moments.returned.priority: Input should be 'low', 'normal' or 'high'",
    ]


def test_meaning_problems_name_the_entry(tmp_path: Path):
    problems = _problems(
        tmp_path,
        {
            "shipped": {"subject": "Shipped {trackingno}"},
            "refunded": {"due_in_days": 3},
            "returned": {"subject": "Return {credit_id} " + "x" * 200},
        },
    )
    assert problems == [
        "moments.shipped.subject: unknown placeholder {trackingno} (shipped has: order_id, order_reference, "
        "note_id, tracking, shipped_on, shipping_method_id)",
        "moments.returned.subject: longer than the 200 characters a task allows",
        "moments.refunded.due_in_days: only tasks have a due date (set as: task)",
    ]
