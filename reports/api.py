"""Reports in the API: GET /api/reports/partner-revenue (reports.revenue)."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from billing_project import money
from billing_project.api_fields import CharField, RegexField
from billing_project.billing_time import billing_today
from catalog.models import Partner
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
