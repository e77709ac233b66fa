"""Logic behind `syncctl mapping check` and `syncctl mapping preview` (the CLI only wires it up).

`check_mapping(path, loaders)` returns the problems of a mapping file (empty list = OK), read by
each loader (a file several entities read, products.yaml with its `stock:` and `price_lists:`
sections, is checked by every one); `validated_mapping(path, loaders)` is what they read from
it, defaults filled in.
`render_preview(source_system, raw_record, mapping)` shows a raw source record, the canonical
customer and the target payload side by side, with the quality issues and the content hash,
as a rich renderable. `build_preview` returns the same pieces as plain data.
`render_product_previews(raw_products, mapping)` does the same for Brightpearl products and the
Dynamics product rows they become (`build_product_preview`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from shared.mapping.brightpearl import brightpearl_to_canonical, canonical_to_brightpearl
from shared.mapping.config import CustomerMapping, MappingError, read_customer_mapping
from shared.mapping.dataverse import canonical_to_dataverse, dataverse_to_canonical
from shared.mapping.hashing import content_hash
from shared.mapping.products import (
    ProductCatalogue,
    brightpearl_product_to_canonical,
    product_columns,
    product_hash,
)
from shared.mapping.products_config import ProductMapping
from shared.mapping.translation import MappingInputError
from shared.model.customer import System
from shared.model.product import ACTIVE, DATAVERSE_STATE, DRAFT, RETIRED, Product
from shared.quality.issues import QualityIssue

Loader = Callable[[str | Path | None], Any]  # a mapping file's loader (raises MappingError)


def check_mapping(path: str | Path | None = None, loaders: Sequence[Loader] = ()) -> list[str]:
    """Validate a mapping file with each of `loaders` (none: the customer mapping's); [] when it
    is valid, else one line per problem."""
    problems: list[str] = []
    for loader in loaders or (read_customer_mapping,):
        try:
            loader(path)
        except MappingError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
    return problems


def validated_mapping(path: str | Path | None, loaders: Mapping[str, Loader]) -> dict[str, Any]:
    """What each reader of a mapping file takes from it (defaults filled in), by reader name.
    Raises MappingError when the file is not valid."""
    return {name: _plain(loader(path)) for name, loader in loaders.items()}


def render_validated(validated: Mapping[str, Any]) -> Syntax:
    """`validated_mapping`'s answer as YAML."""
    return Syntax(
        yaml.safe_dump(dict(validated), sort_keys=False, allow_unicode=True), "yaml", word_wrap=True
    )


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json.loads(json.dumps(dataclasses.asdict(value), default=str))
    return json.loads(json.dumps(value, default=str))


@dataclass
class Preview:
    source_system: System
    target_system: System
    source: dict[str, Any]
    canonical: dict[str, Any] | None = None
    target: dict[str, Any] | None = None
    issues: list[QualityIssue] = field(default_factory=list)
    content_hash: str | None = None
    error: str | None = None

    @property
    def fatal(self) -> bool:
        return any(issue.fatal for issue in self.issues)


def _split_brightpearl(raw: Mapping[str, Any]) -> tuple[Mapping[str, Any], Any, Any, Any]:
    """A bare contact, or {"contact", "postalAddresses", "contactGroupIds", "tagNames"}."""
    if isinstance(raw.get("contact"), Mapping):
        names = raw.get("tagNames")
        tag_names = {int(k): str(v) for k, v in names.items()} if isinstance(names, Mapping) else None
        return raw["contact"], raw.get("postalAddresses"), raw.get("contactGroupIds"), tag_names
    return raw, None, None, None


def build_preview(source_system: System, raw_record: Mapping[str, Any], mapping: CustomerMapping) -> Preview:
    """Translate one raw record for display.

    `raw_record` for brightpearl: the contact GET item (with its `postalAddresses` section), or
    {"contact": ..., "postalAddresses": [postal-address GET items], "contactGroupIds": [...],
    "tagNames": {"1": "VIP"}}. For dataverse: the contact row (parent account expanded as
    `parentcustomerid_account`, see `contact_query`), or {"contact": ..., "account": ...}.
    """
    target_system: System = "dataverse" if source_system == "brightpearl" else "brightpearl"
    preview = Preview(source_system, target_system, json.loads(json.dumps(raw_record, default=str)))
    try:
        if source_system == "brightpearl":
            contact, addresses, groups, tag_names = _split_brightpearl(raw_record)
            read = brightpearl_to_canonical(
                contact, mapping, postal_addresses=addresses, contact_group_ids=groups, tag_names=tag_names
            )
        elif source_system == "dataverse":
            account = raw_record.get("account") if isinstance(raw_record.get("contact"), Mapping) else None
            contact = raw_record["contact"] if isinstance(raw_record.get("contact"), Mapping) else raw_record
            read = dataverse_to_canonical(contact, mapping, account=account)
        else:
            raise ValueError(f"unknown source system {source_system!r}; use brightpearl or dataverse")
    except MappingInputError as exc:
        preview.error = str(exc)
        return preview
    customer = read.value
    preview.issues.extend(read.issues)
    preview.canonical = customer.model_dump(mode="json")
    if target_system == "dataverse":
        written = canonical_to_dataverse(customer, mapping)
        payload = written.value
        preview.target = {"contact": payload.contact, "account": payload.account}
        if payload.contact_key_value or payload.contact_id:
            preview.target["contact_target"] = payload.contact_upsert_target()["@odata.id"]
        if payload.account is not None and (payload.account_key_value or payload.account_id):
            account_target = payload.account_upsert_target()
            assert account_target is not None  # there is an account
            preview.target["account_target"] = account_target["@odata.id"]
        preview.issues.extend(written.issues)
    else:
        written_bp = canonical_to_brightpearl(customer, mapping)
        bp = written_bp.value
        placeholder = {
            role: f"<new address {i + 1}>" for i, d in enumerate(bp.postal_addresses) for role in d.roles
        }
        body = bp.post_body()
        if placeholder:
            body["postAddressIds"] = placeholder
        preview.target = {
            "contact": body,
            "postalAddresses": [{"roles": list(d.roles), "body": d.body} for d in bp.postal_addresses],
            "customFieldPatch": bp.custom_field_ops,
        }
        preview.issues.extend(written_bp.issues)
    preview.content_hash = content_hash(customer, target_system, mapping)
    return preview


def _json(data: Any) -> Syntax:
    return Syntax(json.dumps(data, indent=2, ensure_ascii=False, default=str), "json", word_wrap=True)


def render_preview(
    source_system: System, raw_record: Mapping[str, Any], mapping: CustomerMapping
) -> RenderableType:
    """Source, canonical and target side by side, then issues and the content hash.

    `raw_record` takes the shapes described in `build_preview`.
    """
    preview = build_preview(source_system, raw_record, mapping)
    return _render(preview, f"customer mapping preview: {source_system} -> {preview.target_system}")


def _render(preview: Preview, title: str, note: str | None = None) -> RenderableType:
    table = Table(title=title, expand=True)
    table.add_column(f"source ({preview.source_system})", ratio=1)
    table.add_column("canonical", ratio=1)
    table.add_column(f"target ({preview.target_system})", ratio=1)
    if preview.error is not None:
        table.add_row(_json(preview.source), Text("-"), Text("-"))
        return Group(table, Panel(Text(preview.error, style="bold red"), title="cannot map this record"))
    table.add_row(_json(preview.source), _json(preview.canonical), _json(preview.target))
    parts: list[RenderableType] = [table]
    if preview.issues:
        issues = Table(title="quality issues", expand=True)
        for column in ("severity", "code", "system", "field", "description"):
            issues.add_column(column)
        for issue in preview.issues:
            style = "bold red" if issue.fatal else "yellow"
            issues.add_row(
                Text(str(issue.severity), style=style),
                str(issue.code),
                issue.system,
                issue.field,
                issue.description,
            )
        parts.append(issues)
    verdict = (
        Text(
            "DEAD-LETTER: " + ", ".join(sorted({str(i.code) for i in preview.issues if i.fatal})),
            style="bold red",
        )
        if preview.fatal
        else Text("OK: would be written" + (f" ({note})" if note else ""), style="bold green")
    )
    parts.append(verdict)
    parts.append(Text(f"content hash for {preview.target_system}: {preview.content_hash}"))
    return Group(*parts)


# ------------------------------------------------------------------------------ products
STATE_NAMES: dict[tuple[Any, Any], str] = {ACTIVE: "Active", RETIRED: "Retired", DRAFT: "Draft"}


def product_row(product: Product, mapping: ProductMapping) -> dict[str, Any]:
    """The Dynamics product row `product` becomes. The unit group, unit and price list are
    named: the flow finds them (or creates the unit group) by name when it writes."""
    names = ProductCatalogue(None, mapping.unit_group.name, {}, None, mapping.price_list.default)
    row: dict[str, Any] = {mapping.dataverse.key: product.ids.brightpearl}
    row.update(product_columns(product, mapping, names))
    row["defaultuomscheduleid"] = f"unit group {product.unit_group!r}"
    row["defaultuomid"] = f"unit {product.unit!r}"
    if product.price_list:
        row["pricelevelid"] = f"price list {product.price_list!r}"
    statecode, statuscode = DATAVERSE_STATE[product.status]
    row["statecode"], row["statuscode"] = statecode, statuscode
    return row


def build_product_preview(raw_product: Mapping[str, Any], mapping: ProductMapping) -> Preview:
    """One Brightpearl product GET item (reference brightpearl-api.md §7.1), translated."""
    preview = Preview("brightpearl", "dataverse", json.loads(json.dumps(raw_product, default=str)))
    try:
        read = brightpearl_product_to_canonical(dict(raw_product), mapping)
    except (MappingInputError, ValueError) as exc:
        preview.error = str(exc)
        return preview
    product = read.value
    preview.issues.extend(read.issues)
    preview.canonical = product.model_dump(mode="json")
    preview.target = {"product": product_row(product, mapping)}
    preview.content_hash = product_hash(product, "dataverse")
    return preview


def render_product_previews(
    raw_products: Sequence[Mapping[str, Any]], mapping: ProductMapping, validated: Mapping[str, Any]
) -> RenderableType:
    """The validated mapping, then each product: source, canonical, Dynamics row, verdict."""
    parts: list[RenderableType] = [
        Panel(render_validated(validated), title=f"validated mapping: {mapping.source}", expand=True)
    ]
    for raw in raw_products:
        preview = build_product_preview(raw, mapping)
        row = (preview.target or {}).get("product") or {}
        state = STATE_NAMES.get((row.get("statecode"), row.get("statuscode")), "Active")
        note = f"{state} in Dynamics; the unit and SKU uniqueness are checked there when written"
        product_id = raw.get("id") or raw.get("productId")
        parts.append(
            _render(
                preview,
                f"product mapping preview: Brightpearl product {product_id} -> Dynamics product",
                note,
            )
        )
    return Group(*parts)
