"""Import and export of reference data through django-import-export, keyed by natural keys.

Every row is validated with the model's own rules (`clean_model_instances`); a file with any
invalid row shows the errors per row and writes nothing.

Exported text that a spreadsheet would run as a formula (=, +, -, @, tab, carriage return first)
gets a leading apostrophe, which the import takes off again.
"""

from django.core.exceptions import ValidationError
from import_export import fields, resources
from import_export.widgets import ForeignKeyWidget, NumberWidget

from accounts.models import User
from billing_project.spreadsheets import FORMULA_PREFIXES
from catalog.models import Customer, Partner, PriceAgreement, Service
from catalog.services import checked_tier_table, price_tiers_replace, tier_terms
from catalog.tier_text import format_tier_table, parse_tier_table


class NaturalKeyWidget(ForeignKeyWidget):
    """A foreign key given by a natural key; an unknown key is an error of its field, not a crash of the row."""

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except self.model.DoesNotExist:
            raise ValueError(f"No {self.model._meta.verbose_name} with {self.field} '{value}'.") from None


class CatalogResource(resources.ModelResource):
    def export_field(self, field, instance, **kwargs):
        value = super().export_field(field, instance, **kwargs)
        if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not isinstance(field.widget, NumberWidget):
            return "'" + value
        return value

    def before_import_row(self, row, **kwargs):
        for column, value in row.items():
            if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
                row[column] = value[1:]

    def get_instance(self, instance_loader, row):
        try:
            return super().get_instance(instance_loader, row)
        except ValueError:
            # An unknown natural key in the row's id: import_instance reports it against its field.
            return None


class CustomerResource(CatalogResource):
    csm = fields.Field(attribute="csm", column_name="csm_email", widget=NaturalKeyWidget(User, "email"))
    sales_owner = fields.Field(
        attribute="sales_owner", column_name="sales_owner_email", widget=NaturalKeyWidget(User, "email")
    )

    class Meta:
        model = Customer
        import_id_fields = ["client_id"]
        fields = [
            "client_id",
            "name",
            "legal_name",
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
        ]
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True


class PartnerResource(CatalogResource):
    """Partners without their bank details: what roles that do not see bank details export."""

    class Meta:
        model = Partner
        import_id_fields = ["name"]
        fields = ["name", "contact_person", "email", "phone"]
        clean_model_instances = True
        skip_unchanged = True


class PartnerBankDetailsResource(PartnerResource):
    """Partners with their bank details, for Finance and Admin."""

    class Meta(PartnerResource.Meta):
        name = "Partners with bank details"
        fields = [*PartnerResource.Meta.fields, *Partner.BANK_DETAILS]


class ServiceResource(CatalogResource):
    class Meta:
        model = Service
        import_id_fields = ["code"]
        fields = ["code", "name", "description", "unit_label", "unit_code", "category", "active"]
        clean_model_instances = True
        skip_unchanged = True


class PriceAgreementResource(CatalogResource):
    """Agreements with their tier table in one readable column (catalog.tier_text), checked whole like every
    other write of a tier table; a file without the column leaves the tables as they are."""

    customer = fields.Field(
        attribute="customer", column_name="client_id", widget=NaturalKeyWidget(Customer, "client_id")
    )
    service = fields.Field(attribute="service", column_name="service_code", widget=NaturalKeyWidget(Service, "code"))
    tiers = fields.Field(column_name="tiers")  # read and written by the methods below, not as an attribute

    class Meta:
        model = PriceAgreement
        import_id_fields = ["customer", "service", "valid_from"]
        fields = [
            "customer",
            "service",
            "valid_from",
            "valid_to",
            "pricing_model",
            "unit_price",
            "package_size",
            "package_price",
            "tiers",
            "included_quantity",
            "monthly_fee",
        ]
        clean_model_instances = True
        skip_unchanged = True

    def dehydrate_tiers(self, agreement: PriceAgreement) -> str:
        return format_tier_table(agreement.tiers.all())

    def import_instance(self, instance, row, **kwargs):
        instance.imported_tiers = None  # None: the file has no tiers column; the table stays as it is
        errors = {}
        if "tiers" in row:
            try:
                instance.imported_tiers = parse_tier_table(row["tiers"] or "")
            except ValueError as error:
                errors["tiers"] = [str(error)]
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def _tier_table(self, instance) -> list[dict]:
        if getattr(instance, "imported_tiers", None) is not None:
            return instance.imported_tiers
        return [tier_terms(tier) for tier in instance.tiers.all()] if instance.pk else []

    def skip_row(self, instance, original, row, import_validation_errors=None):
        stored = [tier_terms(tier) for tier in original.tiers.all()] if original.pk else []
        given = [{key: tier[key] for key in ("up_to", "unit_price", "flat_fee")} for tier in self._tier_table(instance)]
        if given != stored:
            return False
        return super().skip_row(instance, original, row, import_validation_errors)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        errors = dict(import_validation_errors or {})
        if "tiers" not in errors:
            try:
                instance.checked_tiers = checked_tier_table(instance.pricing_model, self._tier_table(instance))
            except ValidationError as error:
                errors["tiers"] = error.message_dict["tiers"]
        super().validate_instance(instance, errors, validate_unique)

    def after_save_instance(self, instance, row, **kwargs):
        price_tiers_replace(instance, instance.checked_tiers, actor=kwargs.get("user"))
