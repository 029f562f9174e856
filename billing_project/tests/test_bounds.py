"""The bounds of amounts and quantities (billing_project/money.py), ids as whole numbers and the schema's
patterns for bounded decimals (billing_project/api_fields.py)."""

import re
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rest_framework import serializers

import billing_project.api_urls  # noqa: F401  (imports every API module, so every serializer is defined)
from billing_project import money
from billing_project.api_fields import (
    AmountField,
    BooleanField,
    CharField,
    QuantityField,
    StrictPrimaryKeyRelatedField,
    TextOnly,
    UnitPriceField,
    bounded_decimal_pattern,
)
from billing_project.tests.test_settings import run_manage
from catalog.models import Customer

PROJECT_APPS = ("accounts.", "catalog.", "usage.", "approvals.", "ledger.", "reports.", "billing_project.")


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MAX_AMOUNT", "a lot", "MAX_AMOUNT must be a number, not 'a lot'."),
        ("MAX_AMOUNT", "0", "MAX_AMOUNT must be above 0 and at most 9,999,999,999,999,999.99"),
        ("MAX_AMOUNT", "1e16", "MAX_AMOUNT must be above 0 and at most 9,999,999,999,999,999.99"),
        ("MAX_AMOUNT", "10.001", "MAX_AMOUNT has at most 2 decimal places; got '10.001'."),
        ("MAX_QUANTITY", "1000000000000", "MAX_QUANTITY must be above 0 and at most 999,999,999,999.999999"),
    ],
)
def test_a_bound_the_columns_cannot_hold_refuses_to_start(variable, value, problem):
    result = run_manage("check", DEBUG="true", **{variable: value})

    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"Countinghouse refuses to start: {problem}")


def test_bounds_are_read_from_the_environment():
    probe = "from django.conf import settings as s; print(s.MAX_AMOUNT, s.MAX_QUANTITY)"

    result = run_manage("shell", "-c", probe, DEBUG="true", MAX_AMOUNT="5,000,000", MAX_QUANTITY="1_000")

    assert result.stdout.split()[-2:] == ["5000000.00", "1000"]


def test_the_defaults_and_what_a_field_beyond_them_is_told(settings):
    bounds = (settings.MAX_AMOUNT, settings.MAX_QUANTITY)
    assert bounds == (D("1000000000.00"), D("100000000000"))
    assert money.bound_message("amount") == "Beyond the largest amount accepted, 1,000,000,000.00 (MAX_AMOUNT)."
    assert money.bound_message("quantity") == "Beyond the largest quantity accepted, 100,000,000,000 (MAX_QUANTITY)."
    settings.MAX_AMOUNT = D("9999999999999999.99")  # beyond what a unit price column holds
    assert money.max_unit_price() == D("999999999999.999999")


def test_line_amounts_are_exact_however_large():
    quantity, unit_price = D("123456789012.345678"), D("987654321098.765432")  # a product of 36 digits
    micro_product = 123456789012345678 * 987654321098765432  # in units of 10^-12, as integers: exact
    cents = (micro_product + 5 * 10**9) // 10**10  # half up

    assert money.line_amount(quantity, unit_price) == D(cents).scaleb(-2)
    assert money.round_amount(D("12345678901234567890123456789.005")) == D("12345678901234567890123456789.01")


# --- Ids ----------------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("given_id", [True, False, 2.5, 2.0, "2.5", "2.0", " ", "1e1", "٣", [1], {"id": 1}])
def test_a_primary_key_that_is_not_a_whole_number_is_refused(given_id):
    field = StrictPrimaryKeyRelatedField(queryset=Customer.objects.all())

    with pytest.raises(serializers.ValidationError) as refused:
        field.run_validation(given_id)

    assert refused.value.detail[0].startswith("Give the id as a whole number, not ")


@pytest.mark.django_db
def test_a_primary_key_as_a_number_or_its_digits_is_looked_up():
    customer = Customer.objects.create(name="Acme", client_id="ACME")
    field = StrictPrimaryKeyRelatedField(queryset=Customer.objects.all())

    assert field.run_validation(customer.pk) == customer
    assert field.run_validation(f" {customer.pk} ") == customer
    with pytest.raises(serializers.ValidationError, match="does not exist"):
        field.run_validation(customer.pk + 1)


def _project_serializers() -> list[serializers.Serializer]:
    """Every serializer of the project's API, made without arguments as the API's views make them; the schema's
    helpers that need arguments (billing_project.api_schema.AnyOf) describe responses and take no input."""
    found, stack = [], [serializers.Serializer]
    while stack:
        for subclass in stack.pop().__subclasses__():
            stack.append(subclass)
            if issubclass(subclass, serializers.ModelSerializer) and not hasattr(subclass, "Meta"):
                continue  # a base class (billing_project.api_fields.ModelSerializer), not a shape of the API
            if subclass.__module__.startswith(PROJECT_APPS) and ".tests." not in subclass.__module__:
                try:
                    found.append(subclass())
                except TypeError:
                    continue
    return found


def _writable_relations(serializer: serializers.Serializer, path: str = ""):
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.Serializer):
            yield from _writable_relations(field, f"{path}{name}.")
        elif isinstance(field, serializers.ManyRelatedField):
            yield f"{path}{name}", field.child_relation
        elif isinstance(field, serializers.RelatedField):
            yield f"{path}{name}", field


def test_every_id_the_api_takes_is_a_strict_primary_key_or_a_slug():
    found = _project_serializers()
    relations = {
        f"{type(serializer).__module__}.{type(serializer).__name__}.{name}": field
        for serializer in found
        for name, field in _writable_relations(serializer)
    }

    assert len(found) > 20 and len(relations) >= 5, relations  # the walk found the API's inputs
    lax = [
        name
        for name, field in relations.items()
        if not isinstance(field, StrictPrimaryKeyRelatedField | serializers.SlugRelatedField)
    ]
    assert lax == []


# --- The schema's pattern for bounded decimals ---------------------------------------------------------------


def decimal_texts(places: int):
    digits = st.text("0123456789", min_size=0, max_size=14)
    return st.builds(
        lambda sign, whole, dot, fraction: f"{sign}{whole}{dot}{fraction}",
        st.sampled_from(["", "-"]),
        st.one_of(digits, st.sampled_from(["1000000000", "999999999", "100000000000", "99999999999", "0", "000"])),
        st.sampled_from(["", "."]),
        st.text("0123456789", max_size=places + 1),
    )


@pytest.mark.parametrize(
    ("field_class", "kwargs"),
    [(AmountField, {}), (UnitPriceField, {"min_value": D(0)}), (QuantityField, {"min_value": D(0)})],
)
@given(data=st.data())
def test_the_schema_pattern_accepts_exactly_the_decimal_texts_the_field_accepts(field_class, kwargs, data):
    field = field_class(**kwargs)
    pattern = bounded_decimal_pattern(field.max_value, field.decimal_places, negative=field.min_value != 0)
    text = data.draw(decimal_texts(field.decimal_places))
    try:
        field.run_validation(text)
        accepted = True
    except serializers.ValidationError:
        accepted = False

    # Like drf-spectacular's own pattern, it lets a lone sign or point through: the field says why it is no number.
    assert bool(re.search(pattern, text)) == accepted or text in {"", "-", ".", "-."}, (text, pattern)


# --- Text and booleans read strictly -----------------------------------------------------------------------------


def _writable_fields(serializer: serializers.Serializer, path: str = ""):
    for name, field in serializer.fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.Serializer):
            yield from _writable_fields(field, f"{path}{name}.")
        elif isinstance(field, serializers.ListField):
            yield f"{path}{name}[]", field.child
        else:
            yield f"{path}{name}", field


def test_every_text_and_boolean_the_api_takes_is_read_strictly():
    fields = {
        f"{type(serializer).__module__}.{type(serializer).__name__}.{name}": field
        for serializer in _project_serializers()
        for name, field in _writable_fields(serializer)
    }
    texts = {name: field for name, field in fields.items() if isinstance(field, serializers.CharField)}
    booleans = {name: field for name, field in fields.items() if isinstance(field, serializers.BooleanField)}

    assert len(texts) > 10 and booleans, fields  # the walk found the API's inputs
    assert [name for name, field in texts.items() if not isinstance(field, TextOnly)] == []
    assert [name for name, field in booleans.items() if not isinstance(field, BooleanField)] == []


@pytest.mark.parametrize("given", [-13092, 2.5, True, None, ["a"], {"a": 1}])
def test_text_is_given_as_text(given):
    with pytest.raises(serializers.ValidationError) as refused:
        CharField().run_validation(given)
    assert "Give text" in str(refused.value.detail[0]) or given is None


@pytest.mark.parametrize(("given", "read"), [(True, True), (False, False), ("true", True), (" FALSE ", False)])
def test_booleans_are_true_or_false(given, read):
    assert BooleanField().run_validation(given) is read


@pytest.mark.parametrize("given", [0, 1, "0", "1", "yes", "on", "", 2.5])
def test_anything_else_is_not_a_boolean(given):
    with pytest.raises(serializers.ValidationError, match="Give true or false"):
        BooleanField().run_validation(given)


@pytest.mark.django_db
def test_a_number_for_a_credit_notes_reason_is_refused(client_for, finance_user):
    from catalog.tests.factories import CustomerFactory
    from ledger.tests.test_api import issued

    invoice = issued(CustomerFactory(), D("10.00"))
    response = client_for(finance_user).post(
        f"/api/invoices/{invoice.pk}/credit-notes", {"reason": -13092}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"reason": ["Give text, not int."]}
