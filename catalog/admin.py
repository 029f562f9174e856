from django import forms
from django.contrib import admin
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.import_export.forms import ExportForm, ImportForm

from catalog import services
from catalog.models import Customer, Partner, PortalMembership, PriceAgreement, Service
from catalog.resources import CustomerResource, PartnerResource, PriceAgreementResource, ServiceResource
from catalog.selectors import customer_list_for, price_agreement_list_for


class ServiceBackedAdmin(SimpleHistoryAdmin, ImportExportModelAdmin, ModelAdmin):
    """Admin whose saves go through the catalog services, with history and import/export."""

    import_form_class = ImportForm
    export_form_class = ExportForm
    create_service = None
    update_service = None
    update_kwarg = ""

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in form.cleaned_data}
        if change:
            saved = type(self).update_service(actor=request.user, **{self.update_kwarg: obj}, **data)
        else:
            data = {field: form.cleaned_data[field] for field in form.cleaned_data if field in form.fields}
            saved = type(self).create_service(actor=request.user, **data)
        obj.pk = saved.pk
        obj.refresh_from_db()


class PriceAgreementInline(TabularInline):
    model = PriceAgreement
    extra = 0
    can_delete = False
    fields = ["service", "unit_price", "included_quantity", "monthly_fee", "valid_from", "valid_to"]
    autocomplete_fields = ["service"]
    ordering = ["service__code", "valid_from"]
    show_change_link = True
    tab = True


@admin.register(Customer)
class CustomerAdmin(ServiceBackedAdmin):
    resource_classes = [CustomerResource]
    create_service = services.customer_create
    update_service = services.customer_update
    update_kwarg = "customer"
    list_display = ["name", "client_id", "currency", "status", "csm", "sales_owner", "require_csm_approval"]
    list_filter = ["status", "currency", "require_csm_approval", ("csm", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["csm", "sales_owner"]
    search_fields = ["name", "legal_name", "client_id", "billing_email"]
    autocomplete_fields = ["csm", "sales_owner"]
    inlines = [PriceAgreementInline]
    fieldsets = [
        (None, {"fields": ["name", "legal_name", "client_id", "status"]}),
        ("Billing", {"fields": ["currency", "billing_email", "billing_address", "require_csm_approval"]}),
        ("Ownership", {"fields": ["csm", "sales_owner"]}),
        ("Contract", {"fields": ["start_date", "end_date"]}),
    ]

    def get_queryset(self, request):
        return customer_list_for(request.user).select_related("csm", "sales_owner")

    def save_formset(self, request, form, formset, change):
        if formset.model is not PriceAgreement:
            return super().save_formset(request, form, formset, change)
        for agreement_form in formset.forms:
            if not agreement_form.has_changed() or agreement_form in formset.deleted_forms:
                continue
            data = {field: agreement_form.cleaned_data[field] for field in PriceAgreementInline.fields}
            if agreement_form.instance.pk:
                data.pop("service")
                services.price_agreement_update(actor=request.user, agreement=agreement_form.instance, **data)
            else:
                services.price_agreement_create(actor=request.user, customer=form.instance, **data)


@admin.register(Partner)
class PartnerAdmin(ServiceBackedAdmin):
    resource_classes = [PartnerResource]
    create_service = services.partner_create
    update_service = services.partner_update
    update_kwarg = "partner"
    list_display = ["name", "contact_person", "email", "phone", "default_revenue_share_percent"]
    search_fields = ["name", "contact_person", "email"]


@admin.register(Service)
class ServiceAdmin(ServiceBackedAdmin):
    resource_classes = [ServiceResource]
    create_service = services.service_create
    update_service = services.service_update
    update_kwarg = "service"
    list_display = ["code", "name", "category", "unit_label", "active"]
    list_filter = ["category", "active"]
    search_fields = ["code", "name", "description"]


@admin.register(PriceAgreement)
class PriceAgreementAdmin(ServiceBackedAdmin):
    resource_classes = [PriceAgreementResource]
    update_kwarg = "agreement"
    list_display = ["customer", "service", "unit_price", "included_quantity", "monthly_fee", "valid_from", "valid_to"]
    list_filter = ["service", "customer__currency", ("valid_from", admin.DateFieldListFilter)]
    list_select_related = ["customer", "service"]
    search_fields = ["customer__name", "customer__client_id", "service__code", "service__name"]
    autocomplete_fields = ["customer", "service"]
    date_hierarchy = "valid_from"

    def get_queryset(self, request):
        return price_agreement_list_for(request.user)

    def get_readonly_fields(self, request, obj=None):
        # A saved agreement keeps its customer and service; a new pair is a new agreement.
        return ["customer", "service"] if obj is not None else []

    @staticmethod
    def create_service(*, actor, **data):
        return services.price_agreement_create(actor=actor, **data)

    @staticmethod
    def update_service(*, actor, agreement, **data):
        return services.price_agreement_update(actor=actor, agreement=agreement, **data)


class PortalUserForm(forms.ModelForm):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200)
    password = forms.CharField(
        widget=forms.PasswordInput, required=False, help_text="Leave empty to let the user set it by password reset."
    )

    class Meta:
        model = PortalMembership
        fields = ["customer"]


@admin.register(PortalMembership)
class PortalMembershipAdmin(SimpleHistoryAdmin, ModelAdmin):
    list_display = ["user", "customer", "created_at"]
    list_select_related = ["user", "customer"]
    search_fields = ["user__email", "user__full_name", "customer__name", "customer__client_id"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["user", "created_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PortalUserForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "email", "full_name", "password"]
        return ["user", "customer", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["user", "customer", "created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        membership = services.portal_user_create(
            actor=request.user,
            customer=form.cleaned_data["customer"],
            email=form.cleaned_data["email"],
            full_name=form.cleaned_data["full_name"],
            password=form.cleaned_data["password"] or None,
        )
        obj.pk = membership.pk
        obj.refresh_from_db()
