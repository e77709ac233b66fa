"""The public API's route table: every (method, path pattern, handler), grouped by service.
The handlers live in one module per Brightpearl service beside this one; `Simulator` composes
them. Patterns are full matches of the path below `/public-api/{account}/`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.brightpearl.envelope import IDS, RouteSpec

if TYPE_CHECKING:
    from sandbox.brightpearl.app import Simulator

# Other id-set segments than the `ids` one (envelope.IDS): price lists, and orders or `*`.
ID_SET = r"\d[\d,.\-]*"
LISTS = rf"(?P<lists>{ID_SET})"
ORDERS = rf"(?P<orders>\*|{ID_SET})"
PRODUCT_PRICES = rf"product-service/product-price/{IDS}(?:/price-list(?:/{LISTS})?)?"


def api_routes(sim: Simulator) -> list[RouteSpec]:
    return [
        # contacts
        ("GET", rf"contact-service/contact(?:/{IDS})?", sim.get_contacts),
        ("POST", r"contact-service/contact", sim.post_contact),
        ("PATCH", r"contact-service/contact/(?P<id>\d+)", sim.patch_contact),
        ("GET", r"contact-service/contact/(?P<id>\d+)/custom-field", sim.get_contact_custom_fields),
        ("PATCH", r"contact-service/contact/(?P<id>\d+)/custom-field", sim.patch_contact_custom_fields),
        ("PUT", r"contact-service/contact/(?P<id>\d+)/postal-address", sim.put_contact_addresses),
        ("POST", rf"contact-service/contact/{IDS}/tag/(?P<tag>\d+)", sim.post_contact_tag),
        ("DELETE", r"contact-service/contact/(?P<id>\d+)/tag/(?P<tag>\d+)", sim.delete_contact_tag),
        (
            "GET",
            rf"contact-service/customer/custom-field-meta-data(?:/{IDS})?",
            sim.get_contact_custom_field_meta,
        ),
        ("GET", r"contact-service/contact-search", sim.search),
        ("GET", r"contact-service/contact-search/meta-data", sim.search_meta),
        ("POST", r"contact-service/postal-address", sim.post_address),
        ("GET", rf"contact-service/postal-address(?:/{IDS})?", sim.get_addresses),
        ("PUT", r"contact-service/postal-address/(?P<id>\d+)", sim.put_address),
        ("GET", rf"contact-service/contact-group(?:/{IDS})?", sim.get_groups),
        ("POST", r"contact-service/contact-group", sim.post_group),
        ("POST", r"contact-service/contact-group/(?P<id>\d+)/member", sim.post_group_members),
        ("GET", rf"contact-service/tag(?:/{IDS})?", sim.get_tags),
        ("POST", r"contact-service/tag", sim.post_tag),
        # orders
        ("POST", r"order-service/sales-order/(?P<id>\d+)/close", sim.post_sales_order_close),
        ("POST", r"order-service/sales-order", sim.post_sales_order),
        ("GET", rf"order-service/sales-order/{IDS}", sim.get_orders),
        ("OPTIONS", rf"order-service/(?:sales-order|order)/{IDS}", sim.options_orders),
        ("POST", r"order-service/order", sim.post_order),
        ("GET", rf"order-service/order/{IDS}", sim.get_orders),
        ("POST", r"order-service/order/(?P<id>\d+)/row", sim.post_order_row),
        ("PATCH", r"order-service/order/(?P<id>\d+)/row/(?P<row>\d+)", sim.patch_order_row),
        ("DELETE", r"order-service/order/(?P<id>\d+)/row/(?P<row>\d+)", sim.delete_order_row),
        ("PUT", rf"order-service/sales-order/(?P<id>\d+)/row/{IDS}", sim.put_sales_order_rows),
        ("PUT", r"order-service/order/(?P<id>\d+)/status", sim.put_order_status),
        ("POST", r"order-service/order/(?P<id>\d+)/note", sim.post_order_note),
        ("GET", r"order-service/order/(?P<id>\d+)/note", sim.get_order_notes),
        ("GET", r"order-service/order/(?P<id>\d+)/custom-field", sim.get_order_custom_fields),
        ("PATCH", r"order-service/order/(?P<id>\d+)/custom-field", sim.patch_order_custom_fields),
        ("GET", rf"order-service/order-status(?:/{IDS})?", sim.get_order_statuses),
        ("POST", r"order-service/order-status", sim.post_order_status),
        ("GET", r"order-service/order-search", sim.search),
        ("GET", r"order-service/order-search/meta-data", sim.search_meta),
        ("GET", r"order-service/sales-order-search", sim.search),
        ("GET", r"order-service/sales-order-search/meta-data", sim.search_meta),
        ("GET", rf"order-service/sale/custom-field-meta-data(?:/{IDS})?", sim.get_custom_field_meta),
        ("POST", r"order-service/sales-credit", sim.post_sales_credit),
        ("GET", r"order-service/sales-credit(?:/(?P<ids>[^/]*))?", sim.get_sales_credits),
        # products
        (
            "GET",
            rf"product-service/product/custom-field-meta-data(?:/{IDS})?",
            sim.get_product_custom_field_meta,
        ),
        ("GET", r"product-service/product(?:/(?P<ids>[^/]*))?", sim.get_products),
        ("POST", r"product-service/product", sim.post_product),
        ("PUT", r"product-service/product/(?P<id>\d+)", sim.put_product),
        ("OPTIONS", rf"product-service/product/{IDS}", sim.options_products),
        ("GET", r"product-service/product-search", sim.search),
        ("GET", r"product-service/product-search/meta-data", sim.search_meta),
        ("GET", PRODUCT_PRICES, sim.get_product_prices),
        ("OPTIONS", PRODUCT_PRICES, sim.options_product_prices),
        ("PUT", r"product-service/product-price/(?P<id>\d+)/price-list", sim.put_product_prices),
        ("GET", rf"product-service/price-list(?:/{IDS})?", sim.get_price_lists),
        # warehouse
        ("GET", rf"warehouse-service/warehouse(?:/{IDS})?", sim.get_warehouses),
        ("GET", rf"warehouse-service/product-availability/{IDS}", sim.get_availability),
        ("POST", r"warehouse-service/order/(?P<id>\d+)/goods-note/goods-out", sim.post_goods_out),
        (
            "POST",
            r"warehouse-service/order/(?P<id>\d+)/reservation/warehouse/(?P<warehouse>\d+)",
            sim.post_reservation,
        ),
        ("GET", r"warehouse-service/order/(?P<id>\d+)/reservation", sim.get_reservations),
        ("GET", rf"warehouse-service/order/{ORDERS}/goods-note/goods-out(?:/{IDS})?", sim.get_goods_out),
        ("PUT", r"warehouse-service/goods-note/goods-out/(?P<id>\d+)", sim.put_goods_out),
        ("POST", r"warehouse-service/goods-note/goods-out/(?P<id>\d+)/event", sim.post_goods_out_event),
        ("GET", r"warehouse-service/goods-note/goods-out-search", sim.search),
        ("POST", r"warehouse-service/warehouse/(?P<id>\d+)/stock-correction", sim.post_stock_correction),
        (
            "GET",
            rf"warehouse-service/warehouse/(?P<id>\d+)/stock-correction/{IDS}",
            sim.get_stock_corrections,
        ),
        ("GET", r"warehouse-service/goods-movement-search", sim.search),
        ("GET", r"warehouse-service/goods-movement-search/meta-data", sim.search_meta),
        # accounting
        ("POST", r"accounting-service/customer-payment", sim.post_payment),
        ("GET", r"accounting-service/customer-payment-search", sim.search),
        ("POST", r"accounting-service/(?:journal|journal-entry)", sim.post_journal),
        ("GET", rf"accounting-service/journal/{IDS}", sim.get_journals),
        ("GET", rf"accounting-service/tax-code(?:/{IDS})?", sim.get_tax_codes),
        ("GET", r"accounting-service/exchange-rate/?", sim.get_exchange_rates),
        ("POST", r"accounting-service/currency/(?P<id>\d+)/exchange-rate", sim.post_exchange_rate),
        ("PUT", r"accounting-service/currency/(?P<id>\d+)/exchange-rate", sim.put_exchange_rate),
        ("GET", r"accounting-service/currency-search", sim.search),
        # integration
        ("GET", rf"integration-service/webhook(?:/{IDS})?", sim.get_webhooks),
        ("POST", r"integration-service/webhook", sim.post_webhook),
        ("DELETE", rf"integration-service/webhook/{IDS}", sim.delete_webhooks),
        ("POST", r"integration-service/webhook/(?P<id>\d+)/simulate", sim.simulate_webhook),
        ("GET", r"integration-service/account-configuration", sim.get_account_configuration),
        ("POST", r"multi-message", sim.multi_message),
    ]
