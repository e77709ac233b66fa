"""Test function app: timer triggers (schedule from a setting, run on startup, overlap guard)."""

import threading

import azure.functions as func

app = func.FunctionApp()

RUNS: list[tuple[str, func.TimerRequest]] = []
_lock = threading.Lock()
STATE = {"current": 0, "max": 0}
HOLD = threading.Event()
HOLD.set()
ENTERED = threading.Event()


@app.timer_trigger(arg_name="timer", schedule="%POLL_SCHEDULE%")
def poll(timer: func.TimerRequest) -> None:
    with _lock:
        STATE["current"] += 1
        STATE["max"] = max(STATE["max"], STATE["current"])
    ENTERED.set()
    try:
        HOLD.wait(30)
        RUNS.append(("poll", timer))
    finally:
        with _lock:
            STATE["current"] -= 1


@app.timer_trigger(arg_name="timer", schedule="0 0 3 * * *", run_on_startup=True)
async def nightly(timer: func.TimerRequest) -> None:
    RUNS.append(("nightly", timer))
