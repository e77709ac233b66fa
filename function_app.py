"""Composition root: builds the Function App and registers the blueprints of functions/."""

import azure.functions as func

from functions import (
    customer_value,
    customers,
    fulfilment,
    ingress,
    ingress_dataverse,
    invoices,
    ops,
    orders,
    prices,
    products,
    reconcile,
    returns,
    schema_check,
    stock,
    timeline,
)
from shared.startup import start

start()  # validates every setting (fails naming the bad ones) and configures telemetry

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(ingress.bp)
app.register_functions(ingress_dataverse.bp)
app.register_functions(customers.bp)
app.register_functions(products.bp)
app.register_functions(stock.bp)
app.register_functions(prices.bp)
app.register_functions(ops.bp)
app.register_functions(orders.bp)
app.register_functions(fulfilment.bp)
app.register_functions(invoices.bp)
app.register_functions(returns.bp)
app.register_functions(reconcile.bp)
app.register_functions(schema_check.bp)
app.register_functions(timeline.bp)
app.register_functions(customer_value.bp)
