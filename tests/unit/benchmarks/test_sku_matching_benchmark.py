"""benchmarks/sku_matching.py on a small catalogue: every seeded variation ends as designed and
the batched matcher makes fewer Brightpearl calls than the per-line lookup, matching the same lines."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import sku_matching


def test_the_benchmark_reports_the_match_rate_and_the_calls_per_order(tmp_path: Path) -> None:
    out = tmp_path / "sku.json"
    sku_matching.main(["--catalogue", "40", "--orders", "20", "--out", str(out)])
    result = json.loads(out.read_text())
    variations = result["variations"]
    assert variations["all_as_designed"]
    assert (variations["matched"], variations["review"], variations["unknown"]) == (6, 1, 1)
    calls = result["calls"]
    assert calls["batched"]["lines_matched"] == calls["naive_per_line"]["lines_matched"]
    assert calls["batched"]["brightpearl_calls"] < calls["naive_per_line"]["brightpearl_calls"]
