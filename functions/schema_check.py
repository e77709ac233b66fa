"""The daily schema check (issue 16 item 5): custom fields added on either side that the
customer mapping ignores are reported with a suggested mapping line, on the schedule of
CUSTOMERS_SCHEMA_CHECK_SCHEDULE. Report only: the mapping is changed by people
(`syncctl mapping suggest --write`, docs/mapping.md "Suggestions and schema drift")."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()
SCHEDULE_SETTING = "CUSTOMERS_SCHEMA_CHECK_SCHEDULE"


@bp.function_name("schema_check")
@bp.timer_trigger(arg_name="timer", schedule=f"%{SCHEDULE_SETTING}%", run_on_startup=False)
def schema_check(timer: func.TimerRequest) -> None:
    from shared.suggest.service import run_scheduled

    run_scheduled()
