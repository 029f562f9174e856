"""Reports in the API: GET /api/reports/partner-revenue (reports.revenue) and the finance reports,
GET /api/reports/<name> (reports.finance)."""

import inspect

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project import money
from billing_project.api_fields import CharField, RegexField
from billing_project.billing_time import billing_today
from catalog.models import Partner
from catalog.selectors import customer_list_for
from reports import finance
from reports.order_kpis import period
from reports.revenue import NO_PARTNER, PartnerRevenueReport, partner_revenue, report_may_see

DAYS = "a day from 1900-01-01 to 2100-12-31 (YYYY-MM-DD, BILLING_TIME_ZONE)"


class PartnerRevenuePermission(permissions.BasePermission):
    """`reports.view_partner_revenue`: Admin, Finance and Sales; Operations, Customer Success and the portal get
    403, as for any operation their role may not call."""

    message = "Your role may not see the partner revenue report."

    def has_permission(self, request, view) -> bool:
        return report_may_see(request.user)


class PartnerRevenueQuerySerializer(serializers.Serializer):
    start = serializers.DateField(
        required=False,
        help_text=f"First day of the period, inclusive; {DAYS}. Leave out for the first day of `end`'s month.",
    )
    end = serializers.DateField(
        required=False, help_text=f"Last day of the period, inclusive; {DAYS}, not before `start`. Leave out for today."
    )
    partner = RegexField(
        r"^(none|[1-9][0-9]{0,18})$",
        required=False,
        help_text="A partner's id, or `none` for the orders without a partner. Leave out for every partner.",
    )
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)

    def validate_partner(self, value: str):
        if value == NO_PARTNER:
            return NO_PARTNER
        partner = Partner.objects.filter(pk=int(value)).first()
        if partner is None:
            raise serializers.ValidationError("No such partner.")
        return partner

    def validate(self, attrs):
        attrs.setdefault("end", billing_today())
        attrs.setdefault("start", attrs["end"].replace(day=1))
        period(attrs["start"], attrs["end"])  # a ValidationError naming `start` or `end`
        return attrs


class PartnerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = CharField()


def _money(**kwargs) -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=money.BALANCE_MAX_DIGITS, decimal_places=money.AMOUNT_DECIMAL_PLACES, **kwargs
    )


class PartnerRevenueRowSerializer(serializers.Serializer):
    partner = serializers.SerializerMethodField(help_text="Null: the orders without a partner.")
    currency = CharField()
    orders_completed = serializers.IntegerField()
    orders_failed = serializers.IntegerField()
    fees = _money()
    base_charges = _money()
    expenses = _money(help_text="The orders' expenses, reversals included.")
    partner_share = _money(help_text="The orders' live settlements (calculated, approved or paid).")
    kept_by_us = _money(help_text="fees + base_charges − expenses − partner_share.")

    @extend_schema_field(PartnerRefSerializer(allow_null=True))
    def get_partner(self, row):
        if row.partner_id is None:
            return None
        return {"id": row.partner_id, "name": row.partner_name}


class PartnerRevenueTotalSerializer(serializers.Serializer):
    currency = CharField()
    orders_completed = serializers.IntegerField()
    orders_failed = serializers.IntegerField()
    fees = _money()
    base_charges = _money()
    expenses = _money()
    partner_share = _money()
    kept_by_us = _money()


class PartnerRevenueSerializer(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    rows = PartnerRevenueRowSerializer(many=True, help_text="By currency, then partner name; no partner last.")
    totals = PartnerRevenueTotalSerializer(many=True, help_text="One per currency, in alphabetical order.")


class PartnerRevenueView(APIView):
    """GET /api/reports/partner-revenue: the orders completed or failed in a period (days in BILLING_TIME_ZONE,
    both inclusive; by default this month to today), by partner and currency, with fees, base charges, expenses
    (reversals included), partner share (live settlements) and what is kept; totals per currency (money is never
    converted). See reports.revenue for which orders count."""

    permission_classes = [permissions.IsAuthenticated, PartnerRevenuePermission]

    @extend_schema(
        operation_id="reports_partner_revenue",
        parameters=[PartnerRevenueQuerySerializer],
        responses=PartnerRevenueSerializer,
    )
    def get(self, request):
        query = PartnerRevenueQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        report: PartnerRevenueReport = partner_revenue(
            request.user,
            start=params["start"],
            end=params["end"],
            partner=params.get("partner"),
            currency=params.get("currency"),
        )
        return Response(PartnerRevenueSerializer(report).data)


# --- Finance reports (reports.finance) ----------------------------------------------------------------------------


def _report_permission(name: str) -> type[permissions.BasePermission]:
    class FinanceReportPermission(permissions.BasePermission):
        message = "Your role may not see this report."

        def has_permission(self, request, view) -> bool:
            user = request.user
            return (
                user.is_authenticated
                and not getattr(user, "is_portal_user", False)
                and user.has_perm(finance.PERMISSIONS[name])
            )

    return FinanceReportPermission


class ReportQuerySerializer(serializers.Serializer):
    """The filters every finance report takes: the period, a customer, a currency."""

    start = serializers.DateField(
        required=False,
        help_text=f"First day of the period, inclusive; {DAYS}. Leave out for the first day of `end`'s month.",
    )
    end = serializers.DateField(
        required=False, help_text=f"Last day of the period, inclusive; {DAYS}, not before `start`. Leave out for today."
    )
    customer = serializers.IntegerField(
        required=False, min_value=1, help_text="A customer's id (one you may see). Leave out for every customer."
    )
    currency = serializers.ChoiceField(choices=money.CURRENCY_CHOICES, required=False)

    def validate_customer(self, value: int):
        customer = customer_list_for(self.context["request"].user).filter(pk=value).first()
        if customer is None:
            raise serializers.ValidationError("No such customer.")
        return customer

    def validate(self, attrs):
        attrs.setdefault("end", billing_today())
        attrs.setdefault("start", attrs["end"].replace(day=1))
        period(attrs["start"], attrs["end"])  # a ValidationError naming `start` or `end`
        return attrs


class PagedQuerySerializer(ReportQuerySerializer):
    page = serializers.IntegerField(required=False, min_value=1, default=1, help_text="A page number from 1.")
    page_size = serializers.IntegerField(
        required=False, min_value=1, max_value=1000, default=100, help_text="Rows per page, 1 to 1,000."
    )


class AgingQuerySerializer(PagedQuerySerializer):
    start = None
    end = None
    as_of = serializers.DateField(required=False, help_text=f"The day, at its end; {DAYS}. Leave out for today.")

    def validate(self, attrs):
        attrs.setdefault("as_of", billing_today())
        period(attrs["as_of"], attrs["as_of"])
        return attrs


class InvoiceRegisterQuerySerializer(PagedQuerySerializer):
    status = serializers.ChoiceField(
        choices=finance.REGISTER_STATUSES[1:],
        required=False,
        help_text="Invoices of one status only, or `credit_note` for credit notes only. Leave out for both.",
    )


class PaymentsRegisterQuerySerializer(PagedQuerySerializer):
    kind = serializers.ChoiceField(
        choices=finance.PAYMENT_KINDS[1:], required=False, help_text="Payments or refunds only. Leave out for both."
    )


class RevenueQuerySerializer(ReportQuerySerializer):
    group = serializers.ChoiceField(
        choices=finance.REVENUE_GROUPS,
        required=False,
        default=finance.BY_SERVICE,
        help_text="Rows by service or by category.",
    )


def _field(column: finance.Column, *, required: bool = True) -> serializers.Field:
    options = {"allow_null": column.nullable, "required": required, "help_text": column.label}
    if column.kind == finance.MONEY:
        return _money(**options)
    if column.kind == finance.COUNT:
        return serializers.IntegerField(**options)
    if column.kind in (finance.DAY, finance.MONTH):
        return serializers.DateField(**options)
    if column.kind == finance.RATE:
        return serializers.DecimalField(max_digits=7, decimal_places=4, **options)
    return CharField(**options)


def _report_serializer(name: str, columns: list[finance.Column], *, paged: bool) -> type[serializers.Serializer]:
    """The response of one report: its rows (typed by its columns) and one totals row per currency."""
    prefix = "".join(part.capitalize() for part in name.split("-"))
    row = type(f"{prefix}RowSerializer", (serializers.Serializer,), {c.key: _field(c) for c in columns})
    sums = {c.key: _field(c, required=False) for c in columns if c.kind in (finance.MONEY, finance.COUNT)}
    total = type(f"{prefix}TotalSerializer", (serializers.Serializer,), {"currency": CharField(), **sums})
    fields = {
        "filters": serializers.DictField(child=CharField(), help_text="The filters applied, as the PDF prints them."),
        "rows": row(many=True),
        "totals": total(many=True, help_text="One per currency, in alphabetical order; money is never converted."),
    }
    if paged:
        fields |= {
            "count": serializers.IntegerField(help_text="Rows over every page."),
            "page": serializers.IntegerField(),
            "page_size": serializers.IntegerField(),
        }
    return type(f"{prefix}Serializer", (serializers.Serializer,), fields)


class FinanceReportAPIView(APIView):
    """GET /api/reports/<name>: the same report as the admin page, as JSON."""

    name = ""
    query_class = ReportQuerySerializer
    columns: list[finance.Column] = []
    paged = False

    def get_permissions(self):
        return [permissions.IsAuthenticated(), _report_permission(self.name)()]

    def build(self, user, params: dict) -> finance.ReportTable:
        raise NotImplementedError

    def respond(self, request):
        query = self.query_class(data=request.query_params, context={"request": request})
        query.is_valid(raise_exception=True)
        params = dict(query.validated_data)
        table = self.build(request.user, params)
        data = {"filters": dict(table.filters), "rows": table.rows, "totals": table.totals}
        if self.paged:
            size, number = params["page_size"], params["page"]
            data |= {
                "rows": table.rows[(number - 1) * size : number * size],
                "count": len(table.rows),
                "page": number,
                "page_size": size,
            }
        return Response(self.response_class(data).data)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.response_class = _report_serializer(cls.name, cls.columns, paged=cls.paged)

        def get(self, request):  # each report's own function: the schema's settings stay its own
            return self.respond(request)

        cls.get = extend_schema(
            operation_id=f"reports_{cls.name.replace('-', '_')}",
            parameters=[cls.query_class],
            responses=cls.response_class,
            description=inspect.cleandoc(cls.__doc__ or ""),
        )(get)


def _scope(params: dict) -> dict:
    return {"customer": params.get("customer"), "currency": params.get("currency")}


class AgedReceivablesView(FinanceReportAPIView):
    """What customers still owe on their issued invoices at the end of `as_of`, by days past the due date
    (current, 1–30, 31–60, 61–90, over 90), per customer and currency, a page at a time (a row per customer with
    something open: thousands); totals per currency over every page."""

    name = "aged-receivables"
    query_class = AgingQuerySerializer
    columns = finance.AGING_COLUMNS
    paged = True

    def build(self, user, params):
        return finance.aged_receivables(user, as_of=params["as_of"], **_scope(params))


class InvoiceRegisterView(FinanceReportAPIView):
    """Invoices and credit notes issued in the period (credit notes negative), by issue time, a page at a time;
    totals per currency over every page: what was invoiced."""

    name = "invoice-register"
    query_class = InvoiceRegisterQuerySerializer
    columns = finance.INVOICE_REGISTER_COLUMNS
    paged = True

    def build(self, user, params):
        return finance.invoice_register(
            user, start=params["start"], end=params["end"], status=params.get("status"), **_scope(params)
        )


class PaymentsRegisterView(FinanceReportAPIView):
    """Payments received and refunds paid in the period (refunds negative), a page at a time; totals per
    currency over every page: what was collected."""

    name = "payments-register"
    query_class = PaymentsRegisterQuerySerializer
    columns = finance.PAYMENTS_REGISTER_COLUMNS
    paged = True

    def build(self, user, params):
        return finance.payments_register(
            user, start=params["start"], end=params["end"], kind=params.get("kind"), **_scope(params)
        )


class RevenueView(FinanceReportAPIView):
    """Revenue without tax by the month an invoice bills, by category and service (with `group=category`, the
    service is empty), less credit notes on those invoices; the months from `start`'s to `end`'s."""

    name = "revenue"
    query_class = RevenueQuerySerializer
    columns = finance.REVENUE_COLUMNS

    def build(self, user, params):
        return finance.revenue_by_service(
            user, start=params["start"], end=params["end"], group=params["group"], **_scope(params)
        )


class TaxReportView(FinanceReportAPIView):
    """Per currency, tax rate and exemption: the taxable base and tax of invoices issued in the period, less the
    credit notes issued in it."""

    name = "tax"
    columns = finance.TAX_COLUMNS

    def build(self, user, params):
        return finance.tax_report(user, start=params["start"], end=params["end"], **_scope(params))


FINANCE_REPORT_VIEWS = [AgedReceivablesView, InvoiceRegisterView, PaymentsRegisterView, RevenueView, TaxReportView]
