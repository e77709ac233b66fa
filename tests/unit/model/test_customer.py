"""The canonical Customer enforces its own normalised form."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from shared.model import Address, Customer, Emails, Organisation, PersonName, Phones


def test_text_is_trimmed_and_collapsed_and_emails_lower_cased() -> None:
    customer = Customer(
        name=PersonName(first_name="  Mary \t Jane ", last_name=" Watson\n"),
        emails=Emails(primary=" MJ@Example.COM "),
        website="  https://mj.example  ",
    )
    assert customer.name.first_name == "Mary Jane"
    assert customer.name.last_name == "Watson"
    assert customer.emails.primary == "mj@example.com"
    assert customer.website == "https://mj.example"


def test_empty_strings_become_none() -> None:
    customer = Customer(name=PersonName(first_name="   ", last_name="X"), emails=Emails(primary=""))
    assert customer.name.first_name is None
    assert customer.emails.primary is None


def test_address_postcode_upper_and_country_code_checked() -> None:
    address = Address(line1=" 1  High St ", postcode=" bs2 9ag", country="gb")
    assert (address.line1, address.postcode, address.country) == ("1 High St", "BS2 9AG", "GB")
    with pytest.raises(ValidationError, match="ISO 3166 alpha-2"):
        Address(country="GBR")
    assert Address().is_empty()
    assert not address.is_empty()


def test_phones_must_already_be_e164() -> None:
    assert Phones(telephone="+441245845632").telephone == "+441245845632"
    with pytest.raises(ValidationError, match=r"E\.164"):
        Phones(telephone="01245 845632")


def test_email_with_two_at_signs_is_rejected() -> None:
    with pytest.raises(ValidationError, match="single @"):
        Emails(primary="a@b@c.com")


def test_tags_are_deduplicated_and_sorted() -> None:
    assert Customer(tags=["VIP", " trade ", "VIP", ""]).tags == ("VIP", "trade")
    assert Customer(tags="b,a , b").tags == ("a", "b")


def test_tags_that_are_neither_a_list_nor_text_are_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"tags\n.*list of tags or a comma-separated string"):
        Customer(tags=5)


def test_modified_time_must_have_an_offset_and_is_kept_in_utc() -> None:
    local = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert Customer(modified_at=local).modified_at == dt.datetime(2024, 3, 1, 14, 0, tzinfo=dt.UTC)
    with pytest.raises(ValidationError, match="time zone"):
        Customer(modified_at=dt.datetime(2024, 3, 1, 9, 0))


def test_model_is_frozen_and_strict_about_unknown_fields() -> None:
    customer = Customer(organisation=Organisation(name=" Acme  Ltd "))
    assert customer.organisation is not None and customer.organisation.name == "Acme Ltd"
    with pytest.raises(ValidationError):
        customer.website = "x"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        Customer.model_validate({"nickname": "Spidey"})


def test_uk_postcode_gets_its_space_before_the_inward_code() -> None:
    assert Address(line1="1 A St", postcode="sw1y4jh", country="GB").postcode == "SW1Y 4JH"
    assert Address(line1="1 A St", postcode="m11ae", country="gb").postcode == "M1 1AE"
    assert Address(line1="1 A St", postcode="IM1-1AA", country="IM").postcode == "IM1 1AA"
    # not a UK postcode, or not in the UK: left as typed (upper case, spaces collapsed)
    assert Address(line1="1 A St", postcode="bs1 123x", country="GB").postcode == "BS1 123X"
    assert Address(line1="1 A St", postcode="75007", country="FR").postcode == "75007"
    assert Address(line1="1 A St", postcode="sw1y4jh").postcode == "SW1Y4JH"
