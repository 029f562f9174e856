from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django_countries.fields import CountryField
from guardian.models import UserObjectPermissionBase
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from simple_history.models import HistoricalRecords
from stdnum import vatin
from stdnum.exceptions import ValidationError as NumberError

from billing_project import money
from billing_project.formatting import day
from catalog.dependents import csm_requirements

external_key_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    "Use letters, digits, dots, dashes and underscores only, starting with a letter or digit.",
)


def refuse_change_once_priced(instance: models.Model, field: str, message: str) -> None:
    """Some keys stop being editable once price agreements point at the row."""
    if instance.pk is None:
        return
    stored = type(instance).objects.filter(pk=instance.pk).values_list(field, flat=True).first()
    if stored is not None and stored != getattr(instance, field) and instance.price_agreements.exists():
        raise ValidationError({field: message})


def validate_vat_id(value: str) -> None:
    """A VAT identifier with its country prefix (DE136695976, ATU12345678), checked by python-stdnum."""
    try:
        vatin.validate(value)
    except NumberError as error:
        raise ValidationError(f"Not a valid VAT identifier: {error}", code="invalid_vat_id") from None


peppol_scheme_validator = RegexValidator(
    r"^[0-9]{4}$", "The Peppol endpoint scheme is a four-digit code of the EAS list, e.g. 0088 or 9930."
)


class EinvoiceDelivery(models.TextChoices):
    PDF = "pdf", "PDF only"
    FACTURX = "facturx", "Factur-X PDF"
    UBL = "ubl", "PDF and UBL attachment"


class Customer(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200, unique=True)
    legal_name = models.CharField(max_length=250, blank=True)
    client_id = models.CharField(
        "client id",
        max_length=64,
        unique=True,
        validators=[external_key_validator],
        help_text="The external key that usage files use (clientId).",
    )
    street_line1 = models.CharField(
        "street",
        max_length=255,
        blank=True,
        help_text="The billing address; customers made before it was split "
        "into parts have their former address here, to be split by hand.",
    )
    street_line2 = models.CharField("additional street", max_length=255, blank=True)
    street_line3 = models.CharField("address line 3", max_length=255, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = CountryField(blank=True)
    billing_email = models.EmailField(blank=True)
    vat_id = models.CharField(
        "VAT identifier",
        max_length=32,
        blank=True,
        validators=[validate_vat_id],
        help_text="With its country prefix, e.g. DE136695976; kept without spaces, in capitals.",
    )
    legal_registration_id = models.CharField(
        "legal registration id", max_length=64, blank=True, help_text="The company number in its trade register."
    )
    buyer_reference = models.CharField(
        max_length=200,
        blank=True,
        help_text="The customer's reference or purchase order number, printed on its invoices and e-invoices.",
    )
    peppol_scheme = models.CharField(
        "Peppol endpoint scheme", max_length=4, blank=True, validators=[peppol_scheme_validator]
    )
    peppol_id = models.CharField("Peppol endpoint id", max_length=100, blank=True)
    einvoice_delivery = models.CharField(
        "e-invoice delivery",
        max_length=8,
        choices=EinvoiceDelivery.choices,
        default=EinvoiceDelivery.PDF,
        help_text="What the invoice email carries: the PDF only, a Factur-X PDF, or the PDF and a UBL e-invoice.",
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES, default="EUR")
    csm = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="customer success manager",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="csm_customers",
        limit_choices_to={"groups__name": "Customer Success", "is_active": True},
    )
    sales_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="sales_customers",
        limit_choices_to={"groups__name": "Sales", "is_active": True},
    )
    start_date = models.DateField(default=date.today)
    end_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True)
    require_csm_approval = models.BooleanField(
        "require CSM approval", default=False, help_text="Bills wait for the CSM's approval before they are issued."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("share_customer", "Can give a customer deputy CSMs"),
            ("deputy_csm", "Acts as a deputy CSM of the customer (granted per customer)"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("start_date")),
                name="customer_end_after_start",
                violation_error_message="The end date cannot be before the start date.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.client_id})"

    @property
    def address_lines(self) -> list[str]:
        """The billing address as printed: street lines, then postal code and city, then the country."""
        town = " ".join(part for part in (self.postal_code, self.city) if part)
        lines = [
            self.street_line1,
            self.street_line2,
            self.street_line3,
            town,
            self.country.name if self.country else "",
        ]
        return [line for line in lines if line]

    def clean_fields(self, exclude=None) -> None:
        self.vat_id = "".join(self.vat_id.split()).upper()
        super().clean_fields(exclude)

    def clean(self) -> None:
        super().clean()
        refuse_change_once_priced(
            self, "currency", "The currency cannot change once the customer has price agreements."
        )
        self._refuse_approval_without_csm()
        self._refuse_einvoices_without_data()

    def _refuse_einvoices_without_data(self) -> None:
        """An e-invoice needs the buyer's address and an electronic address (EN 16931 BT-49, BT-50 to BT-55)."""
        if self.einvoice_delivery == EinvoiceDelivery.PDF:
            return
        needed = {
            "street_line1": "street",
            "city": "city",
            "country": "country",
        }
        errors = {
            field: f"Needed to receive e-invoices: give the {label}, or choose “PDF only”."
            for field, label in needed.items()
            if not getattr(self, field)
        }
        if not self.peppol_id and not self.billing_email:
            errors["peppol_id"] = (
                "Needed to receive e-invoices: give the Peppol endpoint or a billing email, or choose “PDF only”."
            )
        if bool(self.peppol_scheme) != bool(self.peppol_id):
            field = "peppol_scheme" if self.peppol_id else "peppol_id"
            errors[field] = "The Peppol endpoint needs both its scheme and its id."
        if errors:
            raise ValidationError(errors)

    def _refuse_approval_without_csm(self) -> None:
        """Bills that wait for a CSM nobody is: refused here, so that no approval request waits for nobody."""
        if self.csm_id is not None:
            return
        if self.require_csm_approval:
            raise ValidationError(
                {
                    "require_csm_approval": f"{self.client_id or 'This customer'} has no CSM to approve its bills: "
                    "choose its CSM, or untick “require CSM approval”."
                }
            )
        if self.pk is None or not Customer.objects.filter(pk=self.pk, csm__isnull=False).exists():
            return  # no CSM is being taken away
        reasons = csm_requirements(self)
        if reasons:
            raise ValidationError({"csm": [f"{self.client_id} needs its CSM: {reason}" for reason in reasons]})


def validate_iban(value: str) -> None:
    try:
        IBAN(value)
    except SchwiftyException as error:
        raise ValidationError(f"Not a valid IBAN: {error}.", code="invalid_iban") from None


def validate_bic(value: str) -> None:
    try:
        BIC(value)
    except SchwiftyException as error:
        raise ValidationError(f"Not a valid BIC: {error}.", code="invalid_bic") from None


class Partner(models.Model):
    """Someone who brings in orders for a share of their revenue (orders.RevenueShareAgreement), paid out to the
    bank account given here."""

    name = models.CharField(max_length=200, unique=True)
    contact_person = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    iban = models.CharField(
        "IBAN",
        max_length=34,
        blank=True,
        validators=[validate_iban],
        help_text="Kept without spaces, in capitals; shown in groups of four.",
    )
    bic = models.CharField("BIC", max_length=11, blank=True, validators=[validate_bic])
    payout_currency = models.CharField(
        max_length=3, choices=money.CURRENCY_CHOICES, blank=True, help_text="The currency the account is paid in."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    BANK_DETAILS = ("iban", "bic", "payout_currency")

    class Meta:
        ordering = ["name"]
        permissions = [("view_partner_bank_details", "Can see and change a partner's bank details")]

    def __str__(self) -> str:
        return self.name

    @property
    def iban_grouped(self) -> str:
        """The IBAN in groups of four, as printed on statements."""
        return " ".join(self.iban[i : i + 4] for i in range(0, len(self.iban), 4))

    def clean_fields(self, exclude=None) -> None:
        # What people type (spaces, small letters) is checked and stored in the compact form.
        self.iban = "".join(self.iban.split()).upper()
        self.bic = "".join(self.bic.split()).upper()
        super().clean_fields(exclude)


class UnitCode(models.TextChoices):
    """Units of UN/ECE Recommendation 20 that services are counted in; every one is in EN 16931's code list."""

    ONE = "C62", "C62 — one (a check, a call, a document)"
    PIECE = "H87", "H87 — piece"
    MINUTE = "MIN", "MIN — minute"
    HOUR = "HUR", "HUR — hour"
    DAY = "DAY", "DAY — day"
    MONTH = "MON", "MON — month"
    YEAR = "ANN", "ANN — year"
    MEGABYTE = "4L", "4L — megabyte"
    GIGABYTE = "E34", "E34 — gigabyte"


class Service(models.Model):
    class Category(models.TextChoices):
        KYC = "kyc", "KYC"
        AML = "aml", "AML"
        API = "api", "API"
        DOCUMENTS = "documents", "Documents"
        FORMATION = "formation", "Company formation"
        OTHER = "other", "Other"

    code = models.CharField(
        max_length=64,
        unique=True,
        validators=[external_key_validator],
        help_text="The serviceName that usage files use.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    unit_label = models.CharField(max_length=40, default="unit", help_text="What one unit is, e.g. 'check'.")
    unit_code = models.CharField(
        max_length=3,
        choices=UnitCode.choices,
        default=UnitCode.ONE,
        help_text="The unit on e-invoices (UN/ECE Recommendation 20).",
    )
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.OTHER, db_index=True)
    active = models.BooleanField(default=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def clean(self) -> None:
        super().clean()
        refuse_change_once_priced(self, "code", "The code is the key usage files use; it cannot change once priced.")


class PricingModel(models.TextChoices):
    """How an agreement prices its usage (DESIGN.md, "Pricing models")."""

    PER_UNIT = "per_unit", "Per unit"
    GRADUATED = "graduated", "Graduated tiers"
    VOLUME = "volume", "Volume tiers"
    PACKAGE = "package", "Package"

    @classmethod
    def tiered(cls) -> set[str]:
        return {cls.GRADUATED, cls.VOLUME}


class PriceAgreementQuerySet(models.QuerySet):
    def in_force_on(self, day: date):
        return self.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=day), valid_from__lte=day)

    def overlapping(self, *, customer_id: int, service_id: int, valid_from: date, valid_to: date | None):
        overlap = Q(valid_to__isnull=True) | Q(valid_to__gte=valid_from)
        if valid_to is not None:
            overlap &= Q(valid_from__lte=valid_to)
        return self.filter(overlap, customer_id=customer_id, service_id=service_id)


class PriceAgreement(models.Model):
    """A customer's price for a service over a period; both ends inclusive, in the billing time zone.

    Periods of one customer and service never overlap: a price change ends one agreement and
    starts another, so history stays exact. On PostgreSQL an exclusion constraint holds it too.
    """

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="price_agreements")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="price_agreements")
    pricing_model = models.CharField(
        max_length=16,
        choices=PricingModel.choices,
        default=PricingModel.PER_UNIT,
        db_default=PricingModel.PER_UNIT,  # rows written by SQL (bulk loads) are per-unit agreements, as before
        help_text="Per unit: one unit price. Graduated and volume: the tiers below. Package: a price per package.",
    )
    unit_price = models.DecimalField(
        max_digits=money.UNIT_PRICE_MAX_DIGITS,
        decimal_places=money.UNIT_PRICE_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("unit_price")],
        help_text="Per-unit agreements only; the other models leave it at 0.",
    )
    package_size = models.DecimalField(
        max_digits=money.QUANTITY_MAX_DIGITS,
        decimal_places=money.QUANTITY_DECIMAL_PLACES,
        null=True,
        blank=True,
        validators=[money.WithinBound("quantity")],
        help_text="Package agreements: units per package; chargeable units are rounded up to whole packages.",
    )
    package_price = models.DecimalField(
        max_digits=money.UNIT_PRICE_MAX_DIGITS,
        decimal_places=money.UNIT_PRICE_DECIMAL_PLACES,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("unit_price")],
        help_text="Package agreements: the price of one package.",
    )
    included_quantity = models.DecimalField(
        max_digits=money.QUANTITY_MAX_DIGITS,
        decimal_places=money.QUANTITY_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("quantity")],
        help_text="Monthly allowance: units free of charge each billing month.",
    )
    monthly_fee = models.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("amount")],
    )
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day in force; empty means open-ended.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    objects = PriceAgreementQuerySet.as_manager()

    class Meta:
        ordering = ["customer__name", "service__code", "valid_from"]
        indexes = [models.Index(fields=["customer", "service", "valid_from"], name="agreement_lookup_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="agreement_valid_to_after_from",
                violation_error_message="The agreement cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0) & Q(included_quantity__gte=0) & Q(monthly_fee__gte=0),
                name="agreement_amounts_not_negative",
                violation_error_message="Prices, allowance and fee cannot be negative.",
            ),
            models.CheckConstraint(
                condition=(
                    Q(pricing_model=PricingModel.PACKAGE, package_size__gt=0, package_price__gte=0)
                    | (
                        ~Q(pricing_model=PricingModel.PACKAGE)
                        & Q(package_size__isnull=True, package_price__isnull=True)
                    )
                ),
                name="agreement_package_terms",
                violation_error_message="A package agreement needs a package size above 0 and a package price.",
            ),
        ]

    def __str__(self) -> str:
        end = day(self.valid_to) if self.valid_to else "open-ended"
        return f"{self.customer.name} · {self.service.name} · {day(self.valid_from)} – {end}"

    def clean(self) -> None:
        super().clean()
        self._clean_pricing_model()
        if self._state.adding and self.service_id and not self.service.active:
            raise ValidationError({"service": f"The service {self.service.code} is not active."})
        if not (self.customer_id and self.service_id and self.valid_from):
            return
        if self.valid_to is not None and self.valid_to < self.valid_from:
            return  # reported by the check constraint's validation
        clash = (
            PriceAgreement.objects.overlapping(
                customer_id=self.customer_id,
                service_id=self.service_id,
                valid_from=self.valid_from,
                valid_to=self.valid_to,
            )
            .exclude(pk=self.pk)
            .first()
        )
        if clash is not None:
            clash_end = clash.valid_to.isoformat() if clash.valid_to else "open-ended"
            raise ValidationError(
                {
                    "valid_from": (
                        f"Overlaps the agreement in force {clash.valid_from.isoformat()} – {clash_end} "
                        f"for this customer and service; end that one first."
                    )
                },
                code="overlap",
            )

    def _clean_pricing_model(self) -> None:
        """The terms each model needs, and whole billing months for all but per-unit agreements (DESIGN.md)."""
        if self.pricing_model == PricingModel.PER_UNIT:
            return
        errors = {}
        if self.unit_price:
            errors["unit_price"] = (
                f"A {self.get_pricing_model_display().lower()} agreement has no unit price; leave it at 0."
            )
        if self.pricing_model == PricingModel.PACKAGE:
            if self.package_size is None or self.package_size <= 0:
                errors["package_size"] = "A package must hold more than 0 units."
            if self.package_price is None:
                errors["package_price"] = "Give the price of one package."
        if self.valid_from and self.valid_from.day != 1:
            errors["valid_from"] = (
                f"A {self.get_pricing_model_display().lower()} agreement starts on the first day of a billing month "
                f"(not {day(self.valid_from)}), so one tier table prices the whole month."
            )
        if self.valid_to and (self.valid_to + timedelta(days=1)).day != 1:
            errors["valid_to"] = (
                f"A {self.get_pricing_model_display().lower()} agreement ends on the last day of a billing month "
                f"(not {day(self.valid_to)})."
            )
        if errors:
            raise ValidationError(errors)


class PriceTier(models.Model):
    """One tier of a graduated or volume agreement: the units above the previous tier's `up_to` (or 0) up to
    this one's, inclusive, at `unit_price`, plus `flat_fee` once when the tier is reached. The last tier is
    open-ended (`up_to` empty). catalog.services.price_tiers_set checks a table as a whole."""

    agreement = models.ForeignKey(PriceAgreement, on_delete=models.CASCADE, related_name="tiers")
    position = models.PositiveSmallIntegerField()
    up_to = models.DecimalField(
        max_digits=money.QUANTITY_MAX_DIGITS,
        decimal_places=money.QUANTITY_DECIMAL_PLACES,
        null=True,
        blank=True,
        validators=[money.WithinBound("quantity")],
        help_text="Last unit of the tier; empty for the last, open-ended tier.",
    )
    unit_price = models.DecimalField(
        max_digits=money.UNIT_PRICE_MAX_DIGITS,
        decimal_places=money.UNIT_PRICE_DECIMAL_PLACES,
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("unit_price")],
    )
    flat_fee = models.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), money.WithinBound("amount")],
        help_text="Charged once in a month the tier is reached.",
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ["agreement", "position"]
        constraints = [
            models.UniqueConstraint(fields=["agreement", "position"], name="tier_position_unique"),
            models.CheckConstraint(
                condition=(Q(up_to__isnull=True) | Q(up_to__gt=0)) & Q(unit_price__gte=0) & Q(flat_fee__gte=0),
                name="tier_terms_not_negative",
                violation_error_message="A tier's bound must be above 0; its price and flat fee cannot be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"Tier {self.position}"


class MinimumCommitment(models.Model):
    """A customer's monthly minimum: when a month's fee and usage lines of all its services add up to less,
    the invoice charges the difference (DESIGN.md, "Pricing models"). Periods of one customer never overlap."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="minimum_commitments")
    amount = models.DecimalField(
        max_digits=money.AMOUNT_MAX_DIGITS,
        decimal_places=money.AMOUNT_DECIMAL_PLACES,
        validators=[MinValueValidator(Decimal("0.01")), money.WithinBound("amount")],
        help_text="Per billing month.",
    )
    currency = models.CharField(max_length=3, choices=money.CURRENCY_CHOICES)
    valid_from = models.DateField()
    valid_to = models.DateField(null=True, blank=True, help_text="Last day in force; empty means open-ended.")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["customer__name", "valid_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                name="commitment_valid_to_after_from",
                violation_error_message="The commitment cannot end before it starts.",
            ),
            models.CheckConstraint(
                condition=Q(amount__gt=0),
                name="commitment_amount_positive",
                violation_error_message="The commitment must be above 0.",
            ),
        ]

    def __str__(self) -> str:
        end = day(self.valid_to) if self.valid_to else "open-ended"
        return f"{self.customer.name} · minimum commitment · {day(self.valid_from)} – {end}"

    def clean(self) -> None:
        super().clean()
        if self.customer_id and self.currency and self.currency != self.customer.currency:
            raise ValidationError(
                {"currency": f"{self.customer.name} is billed in {self.customer.currency}; the commitment must be too."}
            )
        if not (self.customer_id and self.valid_from) or (self.valid_to and self.valid_to < self.valid_from):
            return
        overlap = Q(valid_to__isnull=True) | Q(valid_to__gte=self.valid_from)
        if self.valid_to is not None:
            overlap &= Q(valid_from__lte=self.valid_to)
        clash = MinimumCommitment.objects.filter(overlap, customer_id=self.customer_id).exclude(pk=self.pk).first()
        if clash is not None:
            raise ValidationError(
                {"valid_from": f"Overlaps the commitment from {day(clash.valid_from)}; end that one first."}
            )


class PortalMembership(models.Model):
    """Binds a customer portal user to exactly one customer. Portal users are never staff."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_membership")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="portal_memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["customer__name", "user__email"]

    def __str__(self) -> str:
        return f"{self.user.email} → {self.customer.name}"

    def clean(self) -> None:
        super().clean()
        if self.user_id and (self.user.is_staff or self.user.is_superuser):
            raise ValidationError({"user": "A staff user cannot be a customer portal user."})


class CustomerUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's grant of a permission on one customer to one user: a deputy CSM holds `deputy_csm`."""

    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="user_grants")

    history = HistoricalRecords()

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = "customer access"
        verbose_name_plural = "customer access"
