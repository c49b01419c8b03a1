import datetime as dt
from decimal import Decimal

import pytest
from pydantic import ValidationError

from crm2erp.errors import ConfigError
from crm2erp.schemas import (
    ENTITIES,
    Account,
    Contact,
    Invoice,
    SalesOrder,
    entity_model,
    json_schema_dir,
    render_json_schemas,
)


def test_account_normalises_email_phone_country():
    account = Account(name="  ACME GmbH ", email=" Sales@ACME.example ",
                      phone="+49 (30) 123 4567", billing_address={"country": "de"})
    assert account.name == "ACME GmbH"
    assert account.email == "sales@acme.example"
    assert account.phone == "+49301234567"
    assert account.billing_address.country == "DE"


@pytest.mark.parametrize("field,value,needle", [
    ("email", "bob@@example.com", "e-mail"),
    ("phone", "030 1234567", "E.164"),
    ("currency", "EURO", "ISO 4217"),
])
def test_account_refuses_unnormalised_values(field, value, needle):
    with pytest.raises(ValidationError) as info:
        Account(name="x", **{field: value})
    assert needle in str(info.value)


def test_country_must_be_alpha2():
    with pytest.raises(ValidationError, match="alpha-2"):
        Account(name="x", billing_address={"country": "Germany"})


def test_unknown_fields_refused_but_extensions_open():
    with pytest.raises(ValidationError, match="extra"):
        Account(name="x", colour="blue")
    assert Account(name="x", extensions={"colour": "blue"}).extensions == {"colour": "blue"}


def test_datetimes_are_utc_and_naive_refused():
    cet = dt.timezone(dt.timedelta(hours=1))
    account = Account(name="x", updated_at=dt.datetime(2024, 1, 1, 12, tzinfo=cet))
    assert account.updated_at == dt.datetime(2024, 1, 1, 11, tzinfo=dt.UTC)
    assert account.updated_at.utcoffset() == dt.timedelta(0)
    with pytest.raises(ValidationError, match="time zone"):
        Account(name="x", updated_at=dt.datetime(2024, 1, 1, 12))


def test_money_is_decimal_and_needs_currency():
    order = SalesOrder(account_id="a1", currency="eur", total_amount="10.50",
                       lines=[{"product_code": "P1", "quantity": "2", "unit_price": "5.25"}])
    assert order.total_amount == Decimal("10.50") and order.currency == "EUR"
    with pytest.raises(ValidationError, match="currency"):
        Invoice(account_id="a1", invoice_number="I1", total_amount="3")
    with pytest.raises(ValidationError):
        SalesOrder(account_id="a1", currency="EUR", total_amount="1.123456")


def test_parents_declared_for_children():
    assert Contact.parents == {"account_id": "Account"}
    assert Account.parents == {}


def test_entity_model_names_known_entities():
    assert entity_model("Account") is Account
    with pytest.raises(ConfigError, match="Account, Contact"):
        entity_model("Acount")


def test_checked_in_json_schemas_are_fresh():
    """Fails when a model changed without `python -m crm2erp.schemas`."""
    rendered = render_json_schemas()
    assert set(rendered) == {f"{name}.schema.json" for name in ENTITIES}
    for file_name, text in rendered.items():
        path = json_schema_dir() / file_name
        assert path.exists(), f"{path} missing: run `python -m crm2erp.schemas`"
        assert path.read_text() == text, f"{path} is stale: run `python -m crm2erp.schemas`"
