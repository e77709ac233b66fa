"""Test app: a topic trigger with the classic func.ServiceBusMessage type (no SDK-type binding)."""

import azure.functions as func

app = func.FunctionApp()
RECEIVED: list[func.ServiceBusMessage] = []


@app.service_bus_topic_trigger(
    arg_name="msg", topic_name="%ORDERS_TOPIC%", subscription_name="auto", connection="ServiceBusConnection"
)
def classic(msg: func.ServiceBusMessage) -> None:
    RECEIVED.append(msg)
