"""Serializer fields every app's API uses for ids and money input.

- A related object is given by its id as a whole number (or its digits as text, as forms send it); 2.5,
  "2.5" and true are refused, never read as 2 or 1.
- Amounts, unit prices and quantities carry their precision (billing_project/money.py) and their bound,
  read from the settings when a serializer is made. Decimals travel as strings, which JSON Schema's
  `maximum` does not constrain: the schema's `pattern` holds the bound instead (`bounded_decimal_pattern`).
"""

import re
from decimal import Decimal

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from rest_framework import serializers

from billing_project import money

_WHOLE_NUMBER = re.compile(r"-?[0-9]+")


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key given as a whole number: anything else is refused rather than truncated by the database."""

    default_error_messages = {"incorrect_type": "Give the id as a whole number, not {data_type}."}

    def to_internal_value(self, data):
        whole = isinstance(data, int) and not isinstance(data, bool)
        if not whole and not (isinstance(data, str) and _WHOLE_NUMBER.fullmatch(data.strip())):
            self.fail("incorrect_type", data_type=_describe(data))
        return super().to_internal_value(data.strip() if isinstance(data, str) else data)


def _describe(data) -> str:
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, float):
        return f"the number {data!r}"
    if isinstance(data, str):
        return f"the text {data[:40]!r}"
    return type(data).__name__


class BoundedDecimalField(serializers.DecimalField):
    """A decimal of one kind ("amount", "unit_price" or "quantity") with its precision and its bound either way."""

    kind = ""
    precision = {
        "amount": (money.AMOUNT_MAX_DIGITS, money.AMOUNT_DECIMAL_PLACES),
        "unit_price": (money.UNIT_PRICE_MAX_DIGITS, money.UNIT_PRICE_DECIMAL_PLACES),
        "quantity": (money.QUANTITY_MAX_DIGITS, money.QUANTITY_DECIMAL_PLACES),
    }

    def __init__(self, **kwargs):
        # A serializer copies its fields by calling this again: the bound is read from the settings each time.
        bound = money.bound_of(self.kind)
        max_digits, decimal_places = self.precision[self.kind]
        kwargs.setdefault("max_value", bound)
        kwargs.setdefault("min_value", -bound)
        message = money.bound_message(self.kind)
        error_messages = {"max_value": message}
        if kwargs["min_value"] == -bound:
            error_messages["min_value"] = message
        kwargs["error_messages"] = error_messages | kwargs.get("error_messages", {})
        super().__init__(max_digits=max_digits, decimal_places=decimal_places, **kwargs)


class AmountField(BoundedDecimalField):
    """Money with two decimals, at most MAX_AMOUNT either way."""

    kind = "amount"


class UnitPriceField(BoundedDecimalField):
    """A unit price with six decimals, at most MAX_AMOUNT either way."""

    kind = "unit_price"


class QuantityField(BoundedDecimalField):
    """A quantity with six decimals, at most MAX_QUANTITY either way."""

    kind = "quantity"


def bounded_decimal_pattern(bound: Decimal, places: int, *, negative: bool) -> str:
    """A regular expression for the decimal strings at most `bound` (either way with `negative`, else from 0) with
    at most `places` decimals: what a BoundedDecimalField accepts, written without an exponent."""
    whole, _, fraction = f"{bound:f}".partition(".")
    fraction = fraction.ljust(places, "0")[:places]
    any_fraction = rf"(?:\.\d{{0,{places}}})?"
    below = []  # whole parts below the bound's, after any leading zeros
    if len(whole) > 1:
        below.append(rf"[1-9]\d{{0,{len(whole) - 2}}}")
    for position, digit in enumerate(whole if whole != "0" else ""):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            below.append(f"{whole[:position]}[{lowest}-{int(digit) - 1}]" + r"\d" * (len(whole) - position - 1))
    up_to = [fraction[:length] for length in range(places + 1)]  # the bound's fraction cut short, zeros implied
    up_to += [
        f"{fraction[:position]}[0-{int(digit) - 1}]"
        + (rf"\d{{0,{places - position - 1}}}" if position < places - 1 else "")
        for position, digit in enumerate(fraction)
        if digit != "0"
    ]
    equal = (whole if whole != "0" else "") + rf"(?:\.(?:{'|'.join(up_to)}))?"
    branches = [equal] if whole == "0" else [f"(?:{'|'.join(below)})?{any_fraction}", equal]
    if negative:
        return rf"^-?0*(?:{'|'.join(branches)})$"
    return rf"^(?:0*(?:{'|'.join(branches)})|-0*(?:\.0{{0,{places}}})?)$"  # -0 is 0


class BoundedDecimalFieldSchema(OpenApiSerializerFieldExtension):
    target_class = BoundedDecimalField
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        schema = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        field = self.target
        if schema.get("type") == "string" and field.max_value is not None and field.min_value in (0, -field.max_value):
            schema["pattern"] = bounded_decimal_pattern(
                field.max_value, field.decimal_places, negative=field.min_value != 0
            )
        return schema


class TextOnly:
    """Text given as text: a JSON number or boolean is refused, not turned into its digits ("reason": -13092 is
    not a reason). Form values are always text, so forms are unaffected."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Give text, not {_describe(data)}.", code="invalid")
        return super().to_internal_value(data)


class CharField(TextOnly, serializers.CharField):
    pass


class EmailField(TextOnly, serializers.EmailField):
    pass


class URLField(TextOnly, serializers.URLField):
    pass


class SlugField(TextOnly, serializers.SlugField):
    pass


class RegexField(TextOnly, serializers.RegexField):
    pass


class BooleanField(serializers.BooleanField):
    """true or false: a JSON boolean, or the words as a form sends them. 0, 1, "yes" and "on" are refused, as the
    schema's `type: boolean` says."""

    default_error_messages = {"invalid": "Give true or false, not {input}."}

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        if isinstance(data, str) and data.strip().lower() in {"true", "false"}:
            return data.strip().lower() == "true"
        self.fail("invalid", input=_describe(data))


STRICT = {
    serializers.CharField: CharField,
    serializers.EmailField: EmailField,
    serializers.URLField: URLField,
    serializers.SlugField: SlugField,
    serializers.BooleanField: BooleanField,
}


class ModelSerializer(serializers.ModelSerializer):
    """The project's model serializer: text and booleans of the model are read strictly, as above."""

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        **{
            model_field: strict
            for model_field, lax in serializers.ModelSerializer.serializer_field_mapping.items()
            for strict in [STRICT.get(lax)]
            if strict is not None
        },
    }
