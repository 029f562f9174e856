from datetime import date

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db.models import F
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.import_export.forms import ExportForm, ImportForm
from unfold.decorators import action, display
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminSelectWidget, UnfoldAdminTextInputWidget

from accounts.models import User
from accounts.roles import Role
from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import (
    CheckedDateHierarchyMixin,
    FormattedWhenReadOnlyMixin,
    money_column,
    price_column,
    quantity_column,
)
from billing_project.errors import DomainError
from billing_project.formatting import day, percentage
from catalog import services
from catalog.models import (
    Customer,
    MinimumCommitment,
    Partner,
    PortalMembership,
    PriceAgreement,
    PriceTier,
    Service,
)
from catalog.resources import (
    CustomerResource,
    PartnerBankDetailsResource,
    PartnerResource,
    PriceAgreementResource,
    ServiceResource,
)
from catalog.selectors import (
    customer_deputies,
    customer_list_for,
    minimum_commitment_list_for,
    price_agreement_list_for,
)
from catalog.tier_text import price_summary

AGREEMENT_TERMS = ["unit_price", "included_quantity", "monthly_fee", "valid_from", "valid_to"]


class AgreementTermsShown(FormattedWhenReadOnlyMixin):
    """An agreement's price, allowance and fee as people read them, for whoever may only view agreements."""

    formatted_fields = {
        "unit_price": "unit_price_shown",
        "included_quantity": "included_quantity_shown",
        "monthly_fee": "monthly_fee_shown",
    }
    unit_price_shown = price_column("unit_price", "Unit price", currency="customer.currency")
    included_quantity_shown = quantity_column("included_quantity", "Included quantity")
    monthly_fee_shown = money_column("monthly_fee", "Monthly fee", currency="customer.currency")


class ServiceBackedAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ImportExportModelAdmin, ModelAdmin):
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
        obj._state.adding = False

    def get_import_data_kwargs(self, **kwargs):
        # A file is imported whole or not at all, also if a row turns invalid between preview and confirm.
        return super().get_import_data_kwargs(**kwargs) | {"rollback_on_validation_errors": True}

    def process_result(self, result, request):
        if not (result.has_errors() or result.has_validation_errors()):
            return super().process_result(result, request)
        rows = sorted({number for number, _ in result.row_errors()} | {row.number for row in result.invalid_rows})
        messages.error(
            request,
            f"Nothing was imported: row(s) {', '.join(map(str, rows)) or '-'} no longer pass validation. "
            "Upload the file again to see why.",
        )
        return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_import"))


class PriceAgreementInlineFormSet(BaseInlineFormSet):
    """Refuses rows of one submission that overlap each other; the model checks only stored agreements."""

    def clean(self):
        super().clean()
        periods = []  # (service, first day, last day) of the changed rows checked so far
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or not form.has_changed():
                continue  # unchanged rows are what the database holds: the model's check covers them
            if form.instance.pk and "service" in form.changed_data:
                form.add_error("service", "A saved agreement keeps its service; add a new agreement instead.")
                continue
            service, start, end = data.get("service"), data.get("valid_from"), data.get("valid_to") or date.max
            if service is None or start is None:
                continue
            if any(
                service == other and start <= other_end and other_start <= end
                for other, other_start, other_end in periods
            ):
                form.add_error("valid_from", "Overlaps another row of this form for the same service.")
            periods.append((service, start, end))


class PriceAgreementInline(AgreementTermsShown, TabularInline):
    model = PriceAgreement
    formset = PriceAgreementInlineFormSet
    extra = 0
    can_delete = False
    fields = ["service", "pricing_model", *AGREEMENT_TERMS]
    readonly_fields = ["pricing_model"]  # tiers and packages are set on the agreement's own page
    autocomplete_fields = ["service"]
    ordering = ["service__code", "valid_from"]
    show_change_link = True
    tab = True


class PriceTierInlineFormSet(BaseInlineFormSet):
    """A tier table is checked whole by the service's rules (catalog.services.checked_tier_table), so the form
    shows every bad tier by its number before anything is saved."""

    def tier_table(self) -> list[dict]:
        """The tiers kept (saved or filled in, not deleted), by their bound, the open-ended one last: a tier added
        at the foot of the table takes its place by its bound."""
        table = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            if data.get("DELETE") or not (form.instance.pk or form.has_changed()):
                continue
            table.append({field: data.get(field) for field in ("up_to", "unit_price", "flat_fee")})
        return sorted(table, key=lambda tier: (tier["up_to"] is None, tier["up_to"] or 0))

    def clean(self):
        super().clean()
        if any(form.errors for form in self.forms):
            return
        try:
            services.checked_tier_table(self.instance.pricing_model, self.tier_table())
        except ValidationError as error:
            raise forms.ValidationError(error.message_dict["tiers"]) from error


class PriceTierInline(TabularInline):
    model = PriceTier
    formset = PriceTierInlineFormSet
    fields = ["up_to", "unit_price", "flat_fee"]
    extra = 0
    ordering = ["position"]
    tab = True
    verbose_name = "tier"
    verbose_name_plural = "tiers (graduated and volume pricing; the last one open-ended)"


class DeputyAddForm(BaseDialogForm):
    user = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, is_staff=True, groups__name=Role.CUSTOMER_SUCCESS).order_by(
            "full_name"
        ),
        widget=UnfoldAdminSelectWidget(),
        help_text="A Customer Success user; they then see and approve this customer's bills and orders.",
    )


class DeputyRemoveForm(BaseDialogForm):
    user = forms.ModelChoiceField(queryset=User.objects.none(), widget=UnfoldAdminSelectWidget())

    def __init__(self, request, object_id=None, *args, **kwargs):
        super().__init__(request, object_id, *args, **kwargs)
        customer = customer_list_for(request.user).filter(pk=object_id).first() if object_id else None
        if customer is None:
            raise Http404("No such customer.")
        self.fields["user"].queryset = customer_deputies(customer).order_by("full_name")


@admin.register(Customer)
class CustomerAdmin(ServiceBackedAdmin):
    resource_classes = [CustomerResource]
    create_service = services.customer_create
    update_service = services.customer_update
    update_kwarg = "customer"
    list_display = ["name", "client_id", "currency_code", "status", "csm_name", "sales_owner_name"]
    list_filter = ["status", "currency", "require_csm_approval", ("csm", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["csm", "sales_owner"]
    search_fields = ["name", "legal_name", "client_id", "billing_email"]
    autocomplete_fields = ["csm", "sales_owner"]
    inlines = [PriceAgreementInline]
    fieldsets = [
        (None, {"fields": ["name", "legal_name", "client_id", "status"]}),
        ("Billing", {"fields": ["currency", "billing_email", "require_csm_approval"]}),
        (
            "Billing address",
            {"fields": ["street_line1", "street_line2", "street_line3", "postal_code", "city", "country"]},
        ),
        (
            "E-invoicing",
            {
                "fields": [
                    "einvoice_delivery",
                    "vat_id",
                    "legal_registration_id",
                    "buyer_reference",
                    "peppol_scheme",
                    "peppol_id",
                ]
            },
        ),
        ("Ownership", {"fields": ["csm", "sales_owner"]}),
        ("Contract", {"fields": ["start_date", "end_date"]}),
    ]
    actions_detail = ["add_deputy", "remove_deputy"]

    def get_fieldsets(self, request, obj=None):
        # Deputy CSMs are an Admin's business: listed for who may add and remove them.
        if obj is not None and self.has_share_permission(request):
            return [*self.fieldsets, ("Access", {"fields": ["deputy_csms"]})]
        return self.fieldsets

    def get_queryset(self, request):
        return customer_list_for(request.user).select_related("csm", "sales_owner")

    def get_readonly_fields(self, request, obj=None):
        # Picking a CSM or sales owner searches users, which needs the permission to view them.
        if request.user.has_perm("accounts.view_user"):
            return ["deputy_csms"]
        return ["csm", "sales_owner", "deputy_csms"]

    @display(description="Currency", ordering="currency")
    def currency_code(self, customer: Customer) -> str:
        return customer.currency

    @display(description="CSM", ordering="csm__full_name")
    def csm_name(self, customer: Customer) -> str:
        return customer.csm.full_name or customer.csm.email if customer.csm else "—"

    @display(description="Sales owner", ordering="sales_owner__full_name")
    def sales_owner_name(self, customer: Customer) -> str:
        return customer.sales_owner.full_name or customer.sales_owner.email if customer.sales_owner else "—"

    @display(description="Deputy CSMs")
    def deputy_csms(self, customer: Customer) -> str:
        if customer.pk is None:
            return "Add deputy CSMs once the customer is saved."
        # Read once per page: readonly fields are evaluated several times.
        if not hasattr(customer, "_deputy_names"):
            customer._deputy_names = ", ".join(str(user) for user in customer_deputies(customer).order_by("full_name"))
        return customer._deputy_names or "None. An Admin can add Customer Success users who stand in for the CSM."

    def has_share_permission(self, request, object_id=None) -> bool:
        return request.user.has_perm("catalog.share_customer")

    def _deputy_change(self, request, object_id, call, success: str) -> HttpResponse:
        customer = self.get_object(request, unquote(object_id))
        if customer is None:
            raise Http404
        try:
            call(customer)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, success, messages.SUCCESS)
        url = reverse("admin:catalog_customer_change", args=[customer.pk])
        if request.headers.get("HX-Request"):
            return HttpResponse(headers={"HX-Redirect": url})
        return HttpResponseRedirect(url)

    @action(
        description="Add deputy CSM",
        icon="person_add",
        url_path="add-deputy",
        permissions=["share"],
        dialog={
            "title": "Add a deputy CSM",
            "description": "They see and approve this customer's bills and orders like its CSM. "
            "The grant is kept in the audit trail.",
            "form_class": DeputyAddForm,
            "form_submit_text": "Add",
        },
    )
    def add_deputy(self, request, form, object_id):
        user = form.cleaned_data["user"]
        return self._deputy_change(
            request,
            object_id,
            lambda customer: services.customer_deputy_add(actor=request.user, customer=customer, user=user),
            f"{user} is now a deputy CSM of this customer.",
        )

    @action(
        description="Remove deputy CSM",
        icon="person_remove",
        url_path="remove-deputy",
        permissions=["share"],
        dialog={
            "title": "Remove a deputy CSM",
            "description": "They no longer see this customer's bills and orders (unless their role lets them).",
            "form_class": DeputyRemoveForm,
            "form_submit_text": "Remove",
        },
    )
    def remove_deputy(self, request, form, object_id):
        user = form.cleaned_data["user"]
        return self._deputy_change(
            request,
            object_id,
            lambda customer: services.customer_deputy_remove(actor=request.user, customer=customer, user=user),
            f"{user} is no longer a deputy CSM of this customer.",
        )

    def save_formset(self, request, form, formset, change):
        if formset.model is not PriceAgreement:
            return super().save_formset(request, form, formset, change)
        # The admin's change message reads these lists, which formset.save() would have filled.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for agreement_form in formset.forms:
            if not agreement_form.has_changed():
                continue
            terms = {field: agreement_form.cleaned_data[field] for field in AGREEMENT_TERMS}
            if agreement_form.instance.pk:
                agreement = services.price_agreement_update(
                    actor=request.user, agreement=agreement_form.instance, **terms
                )
                formset.changed_objects.append((agreement, agreement_form.changed_data))
            else:
                agreement = services.price_agreement_create(
                    actor=request.user, customer=form.instance, service=agreement_form.cleaned_data["service"], **terms
                )
                formset.new_objects.append(agreement)


class CompactField(forms.CharField):
    """Bank codes as people type them: spaces anywhere, any case; checked and kept compact, in capitals."""

    def to_python(self, value):
        return "".join(super().to_python(value).split()).upper()


class GroupedInput(UnfoldAdminTextInputWidget):
    """Shows an IBAN in groups of four, as it is printed."""

    def format_value(self, value):
        compact = "".join(str(value or "").split()).upper()
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4)) or None


@admin.register(Partner)
class PartnerAdmin(ServiceBackedAdmin):
    create_service = services.partner_create
    update_service = services.partner_update
    update_kwarg = "partner"
    list_display = ["name", "contact_person", "email", "phone"]
    search_fields = ["name", "contact_person", "email"]
    readonly_fields = ["revenue_share_agreements"]
    contact = (None, {"fields": ["name", "contact_person", "email", "phone"]})
    revenue_share = ("Revenue share", {"fields": ["revenue_share_agreements"]})
    bank_details = ("Bank details", {"fields": list(Partner.BANK_DETAILS)})

    def may_see_bank_details(self, request) -> bool:
        return request.user.has_perm("catalog.view_partner_bank_details")

    def get_fieldsets(self, request, obj=None):
        fieldsets = [self.contact]
        if obj is not None:
            fieldsets.append(self.revenue_share)
        if self.may_see_bank_details(request):
            fieldsets.append(self.bank_details)
        return fieldsets

    def get_list_display(self, request):
        if self.may_see_bank_details(request):
            return [*self.list_display, "iban_grouped", "payout_in"]
        return self.list_display

    def get_resource_classes(self, request):
        return [PartnerBankDetailsResource if self.may_see_bank_details(request) else PartnerResource]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "iban":
            return CompactField(
                label="IBAN", max_length=34, required=False, widget=GroupedInput, help_text="Spaces are optional."
            )
        if db_field.name == "bic":
            return CompactField(label="BIC", max_length=11, required=False, widget=UnfoldAdminTextInputWidget)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @display(description="Agreements")
    def revenue_share_agreements(self, partner: Partner) -> str:
        # The agreements live in `orders`, which the catalog does not import: read through the reverse relation.
        agreements = partner.revenue_share_agreements.select_related("order_type").order_by(
            F("order_type__name").asc(nulls_first=True), "valid_from"
        )
        rows = format_html_join(
            "",
            "<li>{}: {}, {} – {}</li>",
            (
                (
                    agreement.order_type.name if agreement.order_type_id else "All order types (general)",
                    percentage(agreement.percentage),
                    day(agreement.valid_from),
                    day(agreement.valid_to) if agreement.valid_to else "open-ended",
                )
                for agreement in agreements
            ),
        )
        url = reverse("admin:orders_revenueshareagreement_changelist")
        return format_html(
            '{}<a class="text-primary-600 underline" href="{}?partner__id__exact={}">{}</a>',
            format_html('<ul class="mb-2">{}</ul>', rows) if rows else "No agreement yet: the partner gets no share. ",
            url,
            partner.pk,
            "Add or change agreements",
        )

    @display(description="IBAN", ordering="iban")
    def iban_grouped(self, partner: Partner) -> str:
        return format_html('<span class="whitespace-nowrap">{}</span>', partner.iban_grouped or "—")

    @display(description="Payout currency", ordering="payout_currency")
    def payout_in(self, partner: Partner) -> str:
        return partner.payout_currency or "—"


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
class PriceAgreementAdmin(AgreementTermsShown, CheckedDateHierarchyMixin, ServiceBackedAdmin):
    resource_classes = [PriceAgreementResource]
    update_kwarg = "agreement"
    inlines = [PriceTierInline]
    fieldsets = [
        (None, {"fields": ["customer", "service", "valid_from", "valid_to"]}),
        ("Price", {"fields": ["pricing_model", "unit_price", "package_size", "package_price"]}),
        ("Allowance and fee", {"fields": ["included_quantity", "monthly_fee"]}),
    ]
    list_display = [
        "customer",
        "service",
        "price_shown",
        "included_quantity_shown",
        "monthly_fee_shown",
        "valid_from",
        "valid_to",
    ]
    list_filter = ["service", "pricing_model", "customer__currency", ("valid_from", admin.DateFieldListFilter)]
    list_select_related = ["customer", "service"]
    search_fields = ["customer__name", "customer__client_id", "service__code", "service__name"]
    autocomplete_fields = ["customer", "service"]
    date_hierarchy = "valid_from"

    def save_model(self, request, obj, form, change):
        pass  # saved in save_related, with its tier table, by one call of the service

    def save_related(self, request, form, formsets, change):
        (tier_formset,) = formsets
        tiers = tier_formset.tier_table() if tier_formset.has_changed() or not change else None
        data = {field: form.cleaned_data[field] for field in form.changed_data if field in form.cleaned_data}
        if change:
            saved = services.price_agreement_update(actor=request.user, agreement=form.instance, tiers=tiers, **data)
        else:
            fields = {field: form.cleaned_data[field] for field in form.cleaned_data if field in form.fields}
            saved = services.price_agreement_create(actor=request.user, tiers=tiers, **fields)
        form.instance.pk = saved.pk
        form.instance.refresh_from_db()
        form.instance._state.adding = False
        # The admin's change message reads these lists, which formset.save() would have filled.
        tier_formset.new_objects, tier_formset.changed_objects, tier_formset.deleted_objects = [], [], []

    def get_queryset(self, request):
        return price_agreement_list_for(request.user).prefetch_related("tiers")

    @display(description="Price")
    def price_shown(self, agreement: PriceAgreement) -> str:
        return price_summary(agreement, agreement.customer.currency)

    def get_readonly_fields(self, request, obj=None):
        # A saved agreement keeps its customer and service; a new pair is a new agreement.
        return ["customer", "service"] if obj is not None else []


@admin.register(MinimumCommitment)
class MinimumCommitmentAdmin(CheckedDateHierarchyMixin, ServiceBackedAdmin):
    create_service = services.minimum_commitment_create
    update_service = services.minimum_commitment_update
    update_kwarg = "commitment"
    fields = ["customer", "amount", "currency", "valid_from", "valid_to"]
    list_display = ["customer", "amount_shown", "valid_from", "valid_to"]
    list_filter = ["currency", ("valid_from", admin.DateFieldListFilter)]
    list_select_related = ["customer"]
    search_fields = ["customer__name", "customer__client_id"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "valid_from"
    amount_shown = money_column("amount", "Commitment per month", currency="currency")

    def get_queryset(self, request):
        return minimum_commitment_list_for(request.user)

    def get_readonly_fields(self, request, obj=None):
        return ["customer"] if obj is not None else []


class PortalUserForm(forms.ModelForm):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=200)
    password = forms.CharField(
        widget=forms.PasswordInput, required=False, help_text="Leave empty to let the user set it by password reset."
    )

    class Meta:
        model = PortalMembership
        fields = ["customer"]

    # What services.portal_user_create would refuse, as form errors instead of a server error.
    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email

    def clean_password(self):
        password = self.cleaned_data["password"]
        if password:
            user = User(email=self.cleaned_data.get("email", ""), full_name=self.cleaned_data.get("full_name", ""))
            password_validation.validate_password(password, user)
        return password


@admin.register(PortalMembership)
class PortalMembershipAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ModelAdmin):
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
        obj._state.adding = False
