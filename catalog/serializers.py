from decimal import Decimal

from django_countries import countries
from rest_framework import serializers

from accounts.models import User
from billing_project.api_fields import (
    AmountField,
    CharField,
    ModelSerializer,
    QuantityField,
    StrictPrimaryKeyRelatedField,
    UnitPriceField,
)
from catalog.models import Customer, MinimumCommitment, Partner, PriceAgreement, PricingModel, Service
from catalog.selectors import customer_list_for, may_see_bank_details
from catalog.services import refuse_other_currency

# One name in the API schema for every ISO 3166 choice (settings.SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]).
COUNTRY_CHOICES = list(countries)


class CountryCodeField(serializers.ChoiceField):
    """An ISO 3166 country code in and out (the model holds a django-countries Country); empty when none."""

    def __init__(self, **kwargs):
        super().__init__(choices=COUNTRY_CHOICES, **kwargs)

    def to_representation(self, value) -> str:
        return getattr(value, "code", value) or ""


class CustomerSerializer(ModelSerializer):
    country = CountryCodeField(allow_blank=True, required=False, help_text="ISO 3166 code, e.g. NL.")
    csm = StrictPrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), allow_null=True, required=False)
    sales_owner = StrictPrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), allow_null=True, required=False
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "name",
            "legal_name",
            "client_id",
            "street_line1",
            "street_line2",
            "street_line3",
            "city",
            "postal_code",
            "country",
            "billing_email",
            "vat_id",
            "legal_registration_id",
            "buyer_reference",
            "peppol_scheme",
            "peppol_id",
            "einvoice_delivery",
            "currency",
            "csm",
            "sales_owner",
            "start_date",
            "end_date",
            "status",
            "require_csm_approval",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        # Uniqueness and model rules are checked by the service, with the same messages.
        validators = []
        extra_kwargs = {"name": {"validators": []}, "client_id": {"validators": []}}


BANK_DETAILS_NOTE = "Only for Finance and Admin: left out of the response for other roles."


class PartnerSerializer(ModelSerializer):
    """A partner; its bank details (`iban`, `bic`, `payout_currency`) only for callers who may see them."""

    iban = CharField(
        allow_blank=True,
        required=False,
        max_length=42,
        help_text=f"Spaces optional; kept and returned without them, in capitals. {BANK_DETAILS_NOTE}",
    )
    bic = CharField(allow_blank=True, required=False, max_length=14, help_text=BANK_DETAILS_NOTE)

    class Meta:
        model = Partner
        fields = ["id", "name", "contact_person", "email", "phone", *Partner.BANK_DETAILS, "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        extra_kwargs = {
            "name": {"validators": []},
            "payout_currency": {"help_text": f"The currency the account is paid in. {BANK_DETAILS_NOTE}"},
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if getattr(self.context.get("view"), "swagger_fake_view", False):
            return  # the schema shows every field, each saying who gets it
        if request is not None and not may_see_bank_details(request.user):
            for field in Partner.BANK_DETAILS:
                self.fields.pop(field)


class ServiceSerializer(ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "code", "name", "description", "unit_label", "unit_code", "category", "active"]
        read_only_fields = ["id"]
        extra_kwargs = {"code": {"validators": []}}


class PriceTierSerializer(serializers.Serializer):
    """One tier of a graduated or volume agreement: the units above the previous tier's `up_to` (or 0) up to this
    one's, inclusive. The last tier is open-ended (`up_to` null)."""

    first_unit = QuantityField(
        min_value=Decimal(0),
        required=False,
        write_only=True,
        help_text="Optional, checked: the previous tier's bound or the next whole unit (10000 or 10001).",
    )
    up_to = QuantityField(min_value=Decimal(0), allow_null=True, help_text="Null for the last, open-ended tier.")
    unit_price = UnitPriceField(min_value=Decimal(0))
    flat_fee = AmountField(
        min_value=Decimal(0), required=False, help_text="Charged once in a month the tier is reached."
    )


class CustomerScopedSerializer(ModelSerializer):
    """Its `customer` is one the caller may see: another is reported as not existing."""

    customer = StrictPrimaryKeyRelatedField(queryset=Customer.objects.all())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        if request is not None:
            self.fields["customer"].queryset = customer_list_for(request.user)


class PriceAgreementSerializer(CustomerScopedSerializer):
    service = serializers.SlugRelatedField(slug_field="code", queryset=Service.objects.all())
    currency = CharField(
        source="customer.currency",
        read_only=True,
        help_text="The customer's currency. May be sent to check it: another one is refused.",
    )
    pricing_model = serializers.ChoiceField(choices=PricingModel.choices, required=False)
    unit_price = UnitPriceField(
        min_value=Decimal(0), required=False, help_text="Required for per-unit agreements; 0 for the other models."
    )
    package_size = QuantityField(min_value=Decimal(0), required=False, allow_null=True)
    package_price = UnitPriceField(min_value=Decimal(0), required=False, allow_null=True)
    tiers = PriceTierSerializer(
        many=True, required=False, help_text="Graduated and volume agreements: the tier table, lowest tier first."
    )
    included_quantity = QuantityField(
        min_value=Decimal(0), required=False, help_text="Monthly allowance: units free of charge each billing month."
    )
    monthly_fee = AmountField(min_value=Decimal(0), required=False)

    class Meta:
        model = PriceAgreement
        fields = [
            "id",
            "customer",
            "service",
            "currency",
            "pricing_model",
            "unit_price",
            "package_size",
            "package_price",
            "tiers",
            "included_quantity",
            "monthly_fee",
            "valid_from",
            "valid_to",
            "created_at",
        ]
        read_only_fields = ["id", "currency", "created_at"]
        validators = []

    def validate(self, attrs):
        # `currency` is read-only: the customer's. A client that sends another expects prices in it: refuse.
        currency = self.initial_data.get("currency") if isinstance(self.initial_data, dict) else None
        if currency is not None and "customer" in attrs:
            refuse_other_currency(attrs["customer"], str(currency))
        if attrs.get("pricing_model", PricingModel.PER_UNIT) == PricingModel.PER_UNIT and "unit_price" not in attrs:
            raise serializers.ValidationError({"unit_price": ["A per-unit agreement needs its unit price."]})
        return attrs


class MinimumCommitmentSerializer(CustomerScopedSerializer):
    amount = AmountField(min_value=Decimal("0.01"), help_text="Per billing month, in the customer's currency.")
    currency = serializers.ChoiceField(
        choices=MinimumCommitment._meta.get_field("currency").choices,
        required=False,
        help_text="The customer's currency (the default); another one is refused.",
    )

    class Meta:
        model = MinimumCommitment
        fields = ["id", "customer", "amount", "currency", "valid_from", "valid_to", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators = []


class DeputySerializer(ModelSerializer):
    """A Customer Success user who stands in for the customer's CSM."""

    class Meta:
        model = User
        fields = ["id", "email", "full_name"]
        read_only_fields = fields


class DeputyGrantSerializer(serializers.Serializer):
    user = StrictPrimaryKeyRelatedField(queryset=User.objects.all(), help_text="The Customer Success user's id.")
