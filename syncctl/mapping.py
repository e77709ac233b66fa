"""`syncctl mapping check [PATH] [--entity E]` and `syncctl mapping preview [--entity E] ...`.

The entity (default customers) names the mapping file through its spec: the app setting
(`mapping_setting`, e.g. CUSTOMER_MAPPING_PATH, PRODUCT_MAPPING_PATH) or mappings/<entity>.yaml.
A file other entities read as well (products.yaml: the stock and price list sections) is
checked by each of them.

- customers: `preview --from brightpearl|dataverse --id ID` fetches one contact and shows
  source, canonical and target side by side;
- products: `preview [--id ID ...] [--count N]` shows the validated mapping, then the given
  Brightpearl products (or the first N of product-search) as the Dynamics product rows they
  become. Brightpearl is the products' master: there is no preview from Dataverse.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shared.mapping.preview import Loader
    from shared.settings import AppSettings
    from shared.sync.spec import EntitySpec

app = typer.Typer(name="mapping", help="Validate and preview an entity's mapping.", no_args_is_help=True)
ROOT = Path(__file__).resolve().parents[1]
PREVIEWED = ("customers", "products")


def _spec(entity: str) -> EntitySpec:
    from shared.sync import registry

    try:
        return registry.entity(entity)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="--entity") from None


def _readers(spec: EntitySpec) -> dict[str, Loader]:
    """The loaders of `spec` and of every entity reading the same mapping file, by entity name."""
    from shared.sync import registry
    from shared.sync.spec import load

    specs = {s.name: s for s in (spec, *registry.ENTITIES, *registry.BUILDING)}
    return {
        name: load(s.mapping_loader)  # type: ignore[misc]
        for name, s in specs.items()
        if s.mapping_setting == spec.mapping_setting
    }


def _default_path(spec: EntitySpec | None = None) -> Path:
    """The entity's mapping file: its mapping setting's value, else that setting's default
    (PRODUCT_MAPPING_PATH: mappings/products.yaml, which stock and prices read as well), else
    mappings/<entity>.yaml; relative paths against the app root, as the app resolves them."""
    setting = spec.mapping_setting if spec is not None else "CUSTOMER_MAPPING_PATH"
    default = _setting_default(setting) or f"mappings/{spec.name if spec is not None else 'customers'}.yaml"
    configured = Path(os.environ.get(setting) or default)
    return configured if configured.is_absolute() else ROOT / configured


def _setting_default(name: str) -> str | None:
    """The default of the app setting `name` (shared/settings.py), or None when it has none."""
    from shared.settings import SECTIONS

    for section in SECTIONS.values():
        for field in section.model_fields.values():
            if field.validation_alias == name and isinstance(field.default, str):
                return field.default
    return None


@app.command("check")
def check(
    path: Path | None = typer.Argument(None, help="mapping file (default: the entity's mapping setting)"),
    entity: str = typer.Option("customers", "--entity", help="customers, products, ..."),
) -> None:
    """Validate the mapping YAML; print each problem with its YAML path."""
    from shared.mapping.preview import check_mapping, render_validated, validated_mapping

    console = Console(highlight=False)
    spec = _spec(entity)
    file = path or _default_path(spec)
    readers = _readers(spec) if entity != "customers" else {}
    problems = check_mapping(file, list(readers.values()))
    if problems:
        console.print(f"[red]{len(problems)} problem(s) in the mapping:[/red]")
        for problem in problems:
            console.print(f"  • {problem}")
        raise typer.Exit(1)
    console.print("[green]mapping OK[/green]")
    if readers:
        console.print(render_validated(validated_mapping(file, readers)))


@app.command("preview")
def preview(
    source: str | None = typer.Option(None, "--from", help="customers: brightpearl or dataverse"),
    record_ids: list[str] = typer.Option(
        [], "--id", help="Brightpearl contactId or Dataverse contactid; products: productId (repeatable)"
    ),
    entity: str = typer.Option("customers", "--entity", help="customers or products"),
    count: int = typer.Option(3, "--count", min=1, max=50, help="products: how many when no --id"),
    settings_file: Path | None = typer.Option(None, "--settings", help="local.settings.json-style file"),
) -> None:
    """Fetch records with the client and print source, canonical and target side by side."""
    from shared.settings import SettingsError, load_settings
    from syncctl.settings_file import load_settings_file

    console = Console(highlight=False)
    spec = _spec(entity)
    if entity not in PREVIEWED:
        raise typer.BadParameter(
            f"a preview covers {' and '.join(PREVIEWED)}, not {entity}", param_hint="--entity"
        )
    if entity == "customers":
        if source not in ("brightpearl", "dataverse"):
            raise typer.BadParameter("--from must be brightpearl or dataverse")
        if len(record_ids) != 1:
            raise typer.BadParameter("--id: give one Brightpearl contactId or Dataverse contactid")
    elif source not in (None, "brightpearl"):
        raise typer.BadParameter(
            f"products are previewed from Brightpearl, their master; not from {source}", param_hint="--from"
        )
    try:
        settings = load_settings({**load_settings_file(settings_file), **os.environ})
    except SettingsError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if entity == "customers":
        _preview_customer(console, settings, str(source), record_ids[0])
    else:
        _preview_products(console, settings, spec, record_ids, count)


def _preview_customer(console: Console, settings: AppSettings, source: str, record_id: str) -> None:
    from shared import runtime
    from shared.dataverse.errors import DataverseNotFound
    from shared.mapping import contact_query, load_customer_mapping
    from shared.mapping.preview import render_preview

    mapping = load_customer_mapping(_default_path())
    with runtime.override(settings=settings):
        if source == "brightpearl":
            if not record_id.isdigit():
                raise typer.BadParameter("--id: a Brightpearl contactId is a positive integer")
            client = runtime.brightpearl()
            raw = client.get_by_ids(
                "/contact-service/contact/{ids}",
                [int(record_id)],
                params={"includeOptional": "postalAddresses"},
            )
            if not raw:
                console.print(f"[red]Brightpearl contact {record_id} not found[/red]")
                raise typer.Exit(1)
            record = raw[0]
        else:
            query = contact_query(mapping)
            try:
                row = runtime.dataverse().get(
                    "contacts", record_id, select=query["$select"].split(","), expand=query.get("$expand")
                )
            except DataverseNotFound:
                console.print(f"[red]Dataverse contact {record_id} not found[/red]")
                raise typer.Exit(1) from None
            record = dict(row.values)
    console.print(render_preview(source, record, mapping))  # type: ignore[arg-type]


def _preview_products(
    console: Console, settings: AppSettings, spec: EntitySpec, record_ids: list[str], count: int
) -> None:
    from shared import runtime
    from shared.flows.products_to_dataverse import PRODUCT_GET
    from shared.mapping.config import MappingError
    from shared.mapping.preview import render_product_previews, validated_mapping
    from shared.mapping.products_config import read_product_mapping

    bad = [i for i in record_ids if not i.isdigit() or int(i) < 1]
    if bad:
        raise typer.BadParameter(f"--id {bad[0]!r}: a Brightpearl productId is a positive integer")
    file = _default_path(spec)
    try:
        mapping = read_product_mapping(file)
        validated = validated_mapping(file, _readers(spec))
    except MappingError as exc:
        console.print(f"[red]{len(exc.problems)} problem(s) in the mapping (syncctl mapping check):[/red]")
        for problem in exc.problems:
            console.print(f"  • {problem}")
        raise typer.Exit(1) from None
    with runtime.override(settings=settings):
        client = runtime.brightpearl()
        ids = [int(i) for i in record_ids]
        if not ids:
            rows = client.search_products(columns=["productId"])
            ids = [int(row["productId"]) for _, row in zip(range(count), rows, strict=False)]
        params = {"includeOptional": "customFields"} if mapping.units.custom_field else None
        raw = client.get_by_ids(PRODUCT_GET, ids, limit=200, params=params) if ids else []
    found = {int(item["id"]) for item in raw if isinstance(item, dict) and "id" in item}
    missing = [i for i in ids if i not in found]
    if not ids:
        console.print("[yellow]Brightpearl has no products to preview[/yellow]")
    console.print(render_product_previews(raw, mapping, validated))
    if missing:
        console.print(f"[red]Brightpearl product {', '.join(map(str, missing))} not found[/red]")
        raise typer.Exit(1)
