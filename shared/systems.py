"""The two systems the integration syncs, as one type: `System` and `SYSTEMS`."""

from __future__ import annotations

from typing import Literal

System = Literal["brightpearl", "dataverse"]
SYSTEMS: tuple[System, ...] = ("brightpearl", "dataverse")
