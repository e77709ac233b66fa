"""Test app: a trigger annotated with the plain SDK class (the extension's converter refuses it)."""

import azure.functions as func
import azure.servicebus

app = func.FunctionApp()


@app.service_bus_topic_trigger(
    arg_name="msg", topic_name="orders", subscription_name="auto", connection="ServiceBusConnection"
)
def handler(msg: azure.servicebus.ServiceBusReceivedMessage) -> None:
    pass
