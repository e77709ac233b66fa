"""The console's overview panels and the App Insights workbook (infra/workbook.json) stay in step:
every panel the page shows has its workbook items, and the workbook's poller panel names every
poller of the registry."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from shared.ops.console import Overview, Panel
from shared.ops.console_html import PANELS, Links, render_overview
from shared.ops.metrics import Window
from shared.sync import registry

ROOT = Path(__file__).resolve().parents[3]
WORKBOOK = json.loads((ROOT / "infra" / "workbook.json").read_text(encoding="utf-8"))


def test_every_console_panel_is_a_section_of_the_page_and_has_its_workbook_items():
    ov = Overview(Window.last(24, datetime(2026, 12, 5, tzinfo=UTC)), backlog=Panel([]), cursors=Panel([]))
    html = render_overview(ov, Links("/api/ops", None), 24, {})
    assert set(re.findall(r"<section id=([a-z-]+)>", html)) == set(PANELS)
    items = {item["name"] for item in WORKBOOK["items"]}
    missing = {panel: [n for n in names if n not in items] for panel, names in PANELS.items()}
    assert not any(missing.values()), f"workbook items missing for console panels: {missing}"


def test_the_workbook_poller_panel_names_every_poller():
    [item] = [i for i in WORKBOOK["items"] if i["name"] == "poller-age"]
    query = item["content"]["query"]
    missing = [p.function_name for p in registry.pollers() if f'"{p.function_name}"' not in query]
    assert not missing, f"pollers missing from the workbook's poller-age panel: {missing}"
