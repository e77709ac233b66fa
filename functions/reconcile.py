"""Reconciliation timers: one per entity whose spec names a reconciler (customers today), on the
schedule its `<ENTITY>_RECONCILE_SCHEDULE` setting holds (daily). Report only: the report is
stored and its counts emitted (the drift alert reads them); healing is `syncctl reconcile
<entity> --heal`, an operator's decision (docs/operations.md "Reconciliation")."""

from __future__ import annotations

import azure.functions as func

from shared.reconcile.engine import reconcilable, schedule_setting
from shared.sync import registry
from shared.sync.spec import EntitySpec

bp = func.Blueprint()


def register_reconcile(blueprint: func.Blueprint, spec: EntitySpec) -> None:
    @blueprint.function_name(f"reconcile_{spec.name}")
    @blueprint.timer_trigger(arg_name="timer", schedule=f"%{schedule_setting(spec)}%", run_on_startup=False)
    def tick(timer: func.TimerRequest) -> None:
        from shared.reconcile.engine import run_scheduled

        run_scheduled(spec)


for _spec in reconcilable(registry.ENTITIES):
    register_reconcile(bp, _spec)
