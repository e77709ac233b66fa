"""Test function app: Service Bus topic triggers (SDK types), single and batch, auto and manual settlement.

Tests steer behaviour through module attributes (the host imports a fresh copy; use host.module).
"""

import threading
import typing

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

app = func.FunctionApp()

RECEIVED: list[tuple[str, object]] = []  # (function name, message or list of messages)
FAIL_FIRST: set[str] = set()  # message ids whose first delivery raises (auto sub)
ACTIONS: dict[str, str] = {}  # message id -> what manual_fn does
ACTION_ERRORS: list[Exception] = []
CLOCK: list = []  # the test's fake clock, for actions that move time
BATCH_SIZES: list[int] = []
SLOW_ENTERED = threading.Event()
SLOW_RELEASE = threading.Event()
SLOW_LOCKED_UNTIL: list[object] = []
SLOW_SETTLE_ERRORS: list[Exception] = []
_lock = threading.Lock()
LIMIT_STATE = {"current": 0, "max": 0, "entered": 0}
LIMIT_RELEASE = threading.Event()


@app.service_bus_topic_trigger(
    arg_name="msg", topic_name="%ORDERS_TOPIC%", subscription_name="auto", connection="ServiceBusConnection"
)
def auto_fn(msg: servicebus.ServiceBusReceivedMessage) -> None:
    RECEIVED.append(("auto_fn", msg))
    if msg.message_id in FAIL_FIRST and msg.delivery_count == 1:
        raise RuntimeError("first delivery fails")
    if msg.message_id.startswith("always-fail"):
        raise RuntimeError("always fails")


@app.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%ORDERS_TOPIC%",
    subscription_name="manual",
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
async def manual_fn(
    msg: servicebus.ServiceBusReceivedMessage, message_actions: servicebus.ServiceBusMessageActions
) -> None:
    RECEIVED.append(("manual_fn", msg))
    action = ACTIONS.get(msg.message_id, "complete")
    try:
        if action == "complete":
            message_actions.complete(msg)
        elif action == "abandon":
            message_actions.abandon(msg)
        elif action == "deadletter":
            message_actions.deadletter(
                msg, deadletter_reason="BadPayload", deadletter_error_description="field 'id' is missing"
            )
        elif action == "deadletter-positional":  # the pinned 1.0.0b2 signature
            message_actions.deadletter(msg, "BadPayload", "field 'id' is missing")
        elif action == "defer":
            message_actions.defer(msg)
        elif action == "renew-complete":
            message_actions.renew_message_lock(msg)
            message_actions.complete(msg)
        elif action == "advance-renew-complete":
            CLOCK[0].advance(20)  # lock is 30 s: still held
            message_actions.renew_message_lock(msg)
            CLOCK[0].advance(20)  # past the original lock, within the renewed one
            message_actions.complete(msg)
        elif action == "advance-complete":
            if msg.delivery_count == 1:
                CLOCK[0].advance(40)  # past the 30 s lock, no renewal
            message_actions.complete(msg)
        elif action == "complete-twice":
            message_actions.complete(msg)
            message_actions.complete(msg)
        elif action == "raise":
            raise ValueError("manual function fails")
        # "none": leave the message unsettled
    except Exception as exc:
        if action == "raise":
            raise
        ACTION_ERRORS.append(exc)


@app.service_bus_topic_trigger(
    arg_name="msgs",
    topic_name="%ORDERS_TOPIC%",
    subscription_name="batch",
    connection="ServiceBusConnection",
    cardinality="many",
)
def batch_fn(msgs: typing.List[servicebus.ServiceBusReceivedMessage]) -> None:  # noqa: UP006 (the worker refuses list[...])
    RECEIVED.append(("batch_fn", msgs))
    BATCH_SIZES.append(len(msgs))


@app.service_bus_topic_trigger(
    arg_name="msgs",
    topic_name="%ORDERS_TOPIC%",
    subscription_name="batch-manual",
    connection="ServiceBusConnection",
    cardinality="many",
    auto_complete_messages=False,
)
def batch_manual_fn(
    msgs: typing.List[servicebus.ServiceBusReceivedMessage],  # noqa: UP006 (the worker refuses list[...])
    message_actions: servicebus.ServiceBusMessageActions,
) -> None:
    RECEIVED.append(("batch_manual_fn", msgs))
    for msg in msgs:
        kind = msg.application_properties.get(b"kind")
        if kind == b"bad":
            message_actions.deadletter(
                msg, deadletter_reason="Invalid", deadletter_error_description="bad kind"
            )
        elif kind == b"good":
            message_actions.complete(msg)
        # anything else is left unsettled


@app.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%ORDERS_TOPIC%",
    subscription_name="slow",
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
def slow_fn(
    msg: servicebus.ServiceBusReceivedMessage, message_actions: servicebus.ServiceBusMessageActions
) -> None:
    RECEIVED.append(("slow_fn", msg))
    SLOW_LOCKED_UNTIL.append(msg.locked_until_utc)
    SLOW_ENTERED.set()
    SLOW_RELEASE.wait(30)
    try:
        message_actions.complete(msg)
    except Exception as exc:
        SLOW_SETTLE_ERRORS.append(exc)


@app.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="%ORDERS_TOPIC%",
    subscription_name="limited",
    connection="ServiceBusConnection",
)
def limited_fn(msg: servicebus.ServiceBusReceivedMessage) -> None:
    with _lock:
        LIMIT_STATE["current"] += 1
        LIMIT_STATE["entered"] += 1
        LIMIT_STATE["max"] = max(LIMIT_STATE["max"], LIMIT_STATE["current"])
    try:
        LIMIT_RELEASE.wait(30)
    finally:
        with _lock:
            LIMIT_STATE["current"] -= 1
