"""SKU matching (shared/mapping/sku_match.py): the normaliser, the config's errors, and the
matcher's stages against the fake Brightpearl (calls counted)."""

from __future__ import annotations

from typing import Any

import pytest

from shared.mapping.config import MappingError
from shared.mapping.orders_config import parse_order_mapping
from shared.mapping.sku_match import (
    ChannelAffixes,
    NormaliseRules,
    ProductQuery,
    SkuMatcher,
    SkuMatching,
    normalise_identifier,
    normalise_sku,
)
from shared.sync.fakes import FakeBrightpearl


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ABC-001", "ABC001"),
        ("abc-001", "ABC-1"),
        ("  ABC 001 ", "abc_1"),
        ("00123", "123"),
        ("SKU.12/A", "sku12a"),
        ("ＡＢＣ－００１", "ABC001"),  # full-width forms (NFKC)
    ],
)
def test_spellings_of_one_sku_normalise_alike(a: str, b: str) -> None:
    assert normalise_sku(a) == normalise_sku(b)


@pytest.mark.parametrize(("a", "b"), [("ABC-001", "ABC-002"), ("ABC-10", "ABC-1"), ("A0B", "AB"), ("0", "")])
def test_different_skus_stay_different(a: str, b: str) -> None:
    assert normalise_sku(a) != normalise_sku(b)


def test_each_rule_can_be_switched_off() -> None:
    assert normalise_sku("abc-1", NormaliseRules(case=False)) != normalise_sku(
        "ABC-1", NormaliseRules(case=False)
    )
    assert normalise_sku("ABC-001", NormaliseRules(separators="")) == "ABC-1"
    assert normalise_sku("ABC-001", NormaliseRules(leading_zeros=False)) == "ABC001"
    assert normalise_sku("AB C", NormaliseRules(whitespace=False, separators="-")) == "AB C"


def test_gtins_compare_as_numbers() -> None:
    assert normalise_identifier("ean", "0012345678905") == normalise_identifier("upc", "012345678905")
    assert normalise_identifier("ean", "50-1234 5678900") == "501234" + "5678900"


def test_channel_affixes_strip_and_add() -> None:
    affixes = ChannelAffixes(strip_prefixes=("WEB-",), strip_suffixes=("-UK",), add_prefix="BP")
    assert affixes.variant("WEB-ABC-1-UK") == "BPABC-1"
    assert affixes.variant("web-ABC-1") == "BPweb-ABC-1"  # exact stage: case matters
    assert affixes.variant("web-ABC-1", fold=True) == "BPABC-1"
    assert affixes.variant("WEB-") == "BPWEB-"  # never down to nothing


def test_bad_settings_are_named_by_their_yaml_path() -> None:
    with pytest.raises(MappingError) as exc:
        parse_order_mapping(
            {
                "sku_matching": {
                    "channels": {"amazon": {"strip_prefixes": ["AMZ-"]}, "3": {"strip_prefixes": [""]}},
                    "identifiers": {"ean": "EAN Code", "gtin": "bpi_gtin"},
                    "fuzzy": {"threshold": 120},
                }
            }
        )
    assert exc.value.problems == [
        "sku_matching.channels.amazon.[key]: Value error, 'amazon' is neither 'default' nor a Brightpearl "
        "channel id (a positive number)",
        "sku_matching.channels.3.strip_prefixes: Value error, an affix to strip must not be empty",
        "sku_matching.identifiers.ean: Value error, 'EAN Code' is not a Dataverse column logical name "
        "(lower case, e.g. bpi_ean)",
        "sku_matching.identifiers.gtin.[key]: Input should be 'ean', 'upc', 'isbn', 'mpn' or 'barcode'",
        "sku_matching.fuzzy.threshold: Input should be less than or equal to 100",
    ]


def test_a_channel_id_written_as_a_yaml_number_names_that_channel() -> None:
    mapping = parse_order_mapping({"sku_matching": {"channels": {3: {"strip_prefixes": ["AMZ-"]}}}})
    assert mapping.sku_matching.affixes(3).strip_prefixes == ("AMZ-",)
    assert mapping.sku_matching.affixes(4).empty and mapping.sku_matching.affixes(None).empty


def test_the_shipped_defaults_are_valid() -> None:
    assert parse_order_mapping({}).sku_matching == SkuMatching()


# ---------------------------------------------------------------------------------- the matcher
def catalogue(*products: tuple[str, str, str | None]) -> FakeBrightpearl:
    """A fake Brightpearl holding (SKU, name, EAN) products, ids 1001, 1002, ..."""
    bp = FakeBrightpearl()
    for n, (sku, name, ean) in enumerate(products):
        identity: dict[str, Any] = {"sku": sku, **({"ean": ean} if ean else {})}
        bp.add_product({"id": 1001 + n, "identity": identity, "salesChannels": [{"productName": name}]})
    return bp


SHOP = (
    ("ABC-001", "Coastal Glass Vase", None),
    ("SKV-Case-2", "Nordic Linen Cushion", None),
    ("SKV-PFX-5", "Meadow Jute Basket", None),
    ("BP-EAN-6", "Amber Cotton Throw", "4006381333931"),
    ("SKV-LANTERN-7", "Harbour Brass Lantern", None),
    ("DUP-1", "Twin A", None),
    ("DUP-01", "Twin B", None),
)


def test_each_variation_matches_by_its_stage_and_the_rest_wait_for_review() -> None:
    bp = catalogue(*SHOP)
    settings = SkuMatching(
        identifiers={"ean": "bpi_ean"}, channels={"default": ChannelAffixes(strip_prefixes=("WEB-",))}
    )
    queries = [
        ProductQuery("ABC-001"),
        ProductQuery("ABC001"),
        ProductQuery("skv-case-2"),
        ProductQuery("WEB-SKV-PFX-5"),
        ProductQuery("LEGACY-77", "p6", "Old throw", {"ean": "04006381333931"}),
        ProductQuery("SKV-LANTRN-7", "p7", "Harbour Brass Lantern"),
        ProductQuery("DUP-001"),
        ProductQuery("NOPE-999", "p9", "Mystery Widget"),
    ]
    found = SkuMatcher(bp, settings).match(queries)

    got = {sku: (m.product_id, m.method) for sku, m in found.items()}
    assert got == {
        "ABC-001": (1001, "exact"),
        "ABC001": (1001, "normalised"),
        "skv-case-2": (1002, "normalised"),
        "WEB-SKV-PFX-5": (1003, "channel"),
        "LEGACY-77": (1004, "ean"),
        "SKV-LANTRN-7": (None, None),
        "DUP-001": (None, None),
        "NOPE-999": (None, None),
    }
    lantern = found["SKV-LANTRN-7"]
    assert lantern.needs_review and lantern.candidates[0].product_id == 1005
    assert lantern.candidates[0].score >= 85 and lantern.candidates[0].why in (
        "SKU similarity",
        "name similarity",
    )
    assert {c.product_id for c in found["DUP-001"].candidates} == {1006, 1007}  # ambiguous: never chosen
    assert not found["NOPE-999"].needs_review
    # eight SKUs, a catalogue of one page: the catalogue is read once and answers every stage
    assert bp.calls == ["search_products"]


def test_a_few_skus_in_a_large_catalogue_are_looked_up_one_by_one() -> None:
    bp = catalogue(*SHOP, *((f"CAT-{n:05d}", f"Item {n}", None) for n in range(1200)))  # 3 pages
    found = SkuMatcher(bp, SkuMatching()).match(
        [ProductQuery("ABC-001"), ProductQuery("DUP-1"), ProductQuery("CAT-00007")]
    )
    assert [found[s].method for s in ("ABC-001", "DUP-1", "CAT-00007")] == ["exact"] * 3
    # the first catalogue page (3 pages are not fewer than 3 SKUs), then one look-up per SKU
    assert bp.calls == ["search_products"] * 4


def test_a_fuzzy_candidate_is_never_used_even_with_one_candidate() -> None:
    bp = catalogue(("SKV-LANTERN-7", "Harbour Brass Lantern", None))
    found = SkuMatcher(bp, SkuMatching()).match([ProductQuery("SKV-LANTRN-7")])["SKV-LANTRN-7"]
    assert found.product_id is None and [c.product_id for c in found.candidates] == [1001]


def test_with_everything_off_only_the_exact_sku_matches_and_nothing_more_is_read() -> None:
    bp = catalogue(*SHOP)
    settings = SkuMatching(normalise=NormaliseRules(enabled=False), fuzzy={"enabled": False})  # type: ignore[arg-type]
    found = SkuMatcher(bp, settings).match([ProductQuery("ABC001"), ProductQuery("ABC-001")])
    assert (found["ABC001"].product_id, found["ABC-001"].product_id) == (None, 1001)
    assert bp.calls == ["search_products", "search_products"]


def test_mpn_is_read_from_the_product_identity() -> None:
    bp = catalogue(("X-1", "Drill", None), ("X-2", "Saw", None))
    bp.products[1002]["identity"]["mpn"] = "MPN-77/B"
    settings = SkuMatching(identifiers={"mpn": "vendorpartnumber"})
    found = SkuMatcher(bp, settings).match([ProductQuery("OLD-SAW", "p", None, {"mpn": "mpn77b"})])
    assert (found["OLD-SAW"].product_id, found["OLD-SAW"].method) == (1002, "mpn")
    assert bp.calls.count("get_by_ids") == 1
