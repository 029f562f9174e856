"""Import and export of the order desk's reference data, keyed by natural keys (codes, names, client ids).

Built on catalog's resources: every row is validated with the model's rules, a file with any invalid row
writes nothing, and formula-like text is escaped on export and unescaped on import.
"""

from import_export import fields

from catalog.models import Customer, Partner
from catalog.resources import CatalogResource, NaturalKeyWidget
from orders.models import Company, DocumentType, OrderType, OrderTypeDocument, Registrar, RevenueShareAgreement


class DocumentTypeResource(CatalogResource):
    class Meta:
        model = DocumentType
        import_id_fields = ["code"]
        fields = ["code", "name", "description", "accepted_kinds", "max_size_bytes", "validity_days", "active"]
        clean_model_instances = True
        skip_unchanged = True


class OrderTypeResource(CatalogResource):
    class Meta:
        model = OrderType
        import_id_fields = ["code"]
        fields = [
            "code",
            "name",
            "description",
            "default_fee",
            "default_base_charge",
            "target_duration_days",
            "active",
        ]
        clean_model_instances = True
        skip_unchanged = True


class OrderTypeDocumentResource(CatalogResource):
    """The document types an order type asks for, one row per pair."""

    order_type = fields.Field(
        attribute="order_type", column_name="order_type_code", widget=NaturalKeyWidget(OrderType, "code")
    )
    document_type = fields.Field(
        attribute="document_type", column_name="document_type_code", widget=NaturalKeyWidget(DocumentType, "code")
    )

    class Meta:
        model = OrderTypeDocument
        name = "Order type documents"
        import_id_fields = ["order_type", "document_type"]
        fields = ["order_type", "document_type", "required", "client_note"]
        clean_model_instances = True
        skip_unchanged = True


class RegistrarResource(CatalogResource):
    class Meta:
        model = Registrar
        import_id_fields = ["name"]
        fields = ["name", "jurisdiction", "website", "contact_email"]
        clean_model_instances = True
        skip_unchanged = True


class CompanyResource(CatalogResource):
    registrar = fields.Field(attribute="registrar", column_name="registrar", widget=NaturalKeyWidget(Registrar, "name"))
    customer = fields.Field(
        attribute="customer", column_name="client_id", widget=NaturalKeyWidget(Customer, "client_id")
    )

    class Meta:
        model = Company
        import_id_fields = ["registrar", "registration_number"]
        fields = [
            "name",
            "registration_number",
            "jurisdiction",
            "registrar",
            "customer",
            "incorporation_date",
            "status",
        ]
        clean_model_instances = True
        skip_unchanged = True


class RevenueShareAgreementResource(CatalogResource):
    """Partners' revenue-share agreements; an empty order type is the partner's general agreement."""

    partner = fields.Field(attribute="partner", column_name="partner", widget=NaturalKeyWidget(Partner, "name"))
    order_type = fields.Field(
        attribute="order_type", column_name="order_type_code", widget=NaturalKeyWidget(OrderType, "code")
    )

    class Meta:
        model = RevenueShareAgreement
        name = "Revenue-share agreements"
        import_id_fields = ["partner", "order_type", "valid_from"]
        fields = ["partner", "order_type", "percentage", "valid_from", "valid_to"]
        clean_model_instances = True
        skip_unchanged = True
