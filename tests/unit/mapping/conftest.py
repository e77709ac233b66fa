"""Fixtures for mapping tests: the shipped mapping and variants of it written to tmp files."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.mapping.config import DEFAULT_PATH, CustomerMapping, load_customer_mapping, read_customer_mapping


@pytest.fixture
def mapping() -> CustomerMapping:
    return load_customer_mapping()


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def shipped_yaml() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))


@pytest.fixture
def write_mapping(tmp_path: Path, shipped_yaml: dict[str, Any]) -> Callable[..., Path]:
    """Write the shipped YAML with `changes` deep-merged into it; returns the file path."""
    counter = iter(range(1000))

    def write(changes: dict[str, Any] | None = None, *, raw: str | None = None) -> Path:
        path = tmp_path / f"customers-{next(counter)}.yaml"
        text = (
            raw if raw is not None else yaml.safe_dump(_merge(shipped_yaml, changes or {}), sort_keys=False)
        )
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def mapping_with(write_mapping: Callable[..., Path]) -> Callable[[dict[str, Any]], CustomerMapping]:
    def build(changes: dict[str, Any]) -> CustomerMapping:
        return read_customer_mapping(write_mapping(changes))

    return build
