"""product-service: products, prices per price list, price lists, product search."""

from __future__ import annotations

import re

from sandbox.brightpearl.envelope import Reply, Req, found, id_set, ok
from sandbox.brightpearl.errors import bad
from sandbox.brightpearl.routes.base import RouteBase


class ProductRoutes(RouteBase):
    def get_products(self, req: Req, m: re.Match[str]) -> Reply:
        if not m["ids"]:
            raise bad("an ID set is required for product GET", "PRDC-001")
        reply = self._by_ids(m, "products", "Product")
        if "customFields" in req.params.get("includeOptional", ""):  # optional section (§7.1)
            with self.state.lock:
                for item in reply.payload["response"]:
                    item["customFields"] = dict(self.state.product_custom_fields.get(item["id"], {}))
        return reply

    def get_product_custom_field_meta(self, req: Req, m: re.Match[str]) -> Reply:
        """The product custom fields' definitions (items as the order ones, reference §6.8)."""
        return self._custom_field_meta(m, "product_custom_field_meta")

    def post_product(self, req: Req, m: re.Match[str]) -> Reply:
        return ok(self.state.create_product(req.body or {}))

    def put_product(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.update_product(int(m["id"]), req.body or {}, req.headers.get("if-match"))
        return ok({})

    def options_products(self, req: Req, m: re.Match[str]) -> Reply:
        return self._options(req, m, self.state.products, "/product")

    def get_product_prices(self, req: Req, m: re.Match[str]) -> Reply:
        lists = set(id_set(m["lists"])) if m["lists"] else None
        with self.state.lock:
            items = []
            for pid in id_set(m["ids"], self.config.get_limit):  # at most 200 products (§7.3)
                if pid not in self.state.products:
                    continue
                entries = [
                    {
                        "priceListId": plid,
                        "currencyCode": self.state.price_lists[plid]["currencyCode"],
                        "currencyId": self.state.price_lists[plid]["currencyId"],
                        "sku": self.state.products[pid]["identity"].get("sku", ""),
                        "quantityPrice": dict(prices),
                    }
                    for plid, prices in sorted(self.state.prices.get(pid, {}).items())
                    if lists is None or plid in lists
                ]
                items.append({"productId": pid, "priceLists": entries})
        return found(items, "Product Price")

    def options_product_prices(self, req: Req, m: re.Match[str]) -> Reply:
        """OPTIONS on product-price (§1.4, confirmed for this resource by S51): the GETs that
        fetch the products that exist, at most `get_limit` each, keeping the price-list part."""
        suffix = "/price-list" + (f"/{m['lists']}" if m["lists"] else "")
        reply = self._options(req, m, self.state.products, "/product-price")
        uris = reply.payload["response"]["getUris"]
        reply.payload["response"]["getUris"] = [uri + suffix for uri in uris]
        return reply

    def put_product_prices(self, req: Req, m: re.Match[str]) -> Reply:
        self.state.set_prices(int(m["id"]), req.body)
        return ok({})

    def get_price_lists(self, req: Req, m: re.Match[str]) -> Reply:
        return self._listing(m, "price_lists", "Price List")
