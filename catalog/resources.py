"""Import and export of reference data through django-import-export, keyed by natural keys.

Every row is validated with the model's own rules (`clean_model_instances`); a file with any
invalid row shows the errors per row and writes nothing.
"""

from import_export import fields, resources
from import_export.widgets import ForeignKeyWidget

from accounts.models import User
from catalog.models import Customer, Partner, PriceAgreement, Service


class CustomerResource(resources.ModelResource):
    csm = fields.Field(attribute="csm", column_name="csm_email", widget=ForeignKeyWidget(User, "email"))
    sales_owner = fields.Field(
        attribute="sales_owner", column_name="sales_owner_email", widget=ForeignKeyWidget(User, "email")
    )

    class Meta:
        model = Customer
        import_id_fields = ["client_id"]
        fields = [
            "client_id",
            "name",
            "legal_name",
            "billing_address",
            "billing_email",
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


class PartnerResource(resources.ModelResource):
    class Meta:
        model = Partner
        import_id_fields = ["name"]
        fields = ["name", "contact_person", "email", "phone", "default_revenue_share_percent"]
        clean_model_instances = True
        skip_unchanged = True


class ServiceResource(resources.ModelResource):
    class Meta:
        model = Service
        import_id_fields = ["code"]
        fields = ["code", "name", "description", "unit_label", "category", "active"]
        clean_model_instances = True
        skip_unchanged = True


class PriceAgreementResource(resources.ModelResource):
    customer = fields.Field(
        attribute="customer", column_name="client_id", widget=ForeignKeyWidget(Customer, "client_id")
    )
    service = fields.Field(attribute="service", column_name="service_code", widget=ForeignKeyWidget(Service, "code"))

    class Meta:
        model = PriceAgreement
        import_id_fields = ["customer", "service", "valid_from"]
        fields = ["customer", "service", "valid_from", "valid_to", "unit_price", "included_quantity", "monthly_fee"]
        clean_model_instances = True
        skip_unchanged = True
