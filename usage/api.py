"""Usage API: event ingestion through the one import pipeline, and a scoped read of usage."""

from datetime import timedelta

from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncMonth
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.idempotency import idempotent
from accounts.permissions import RoleModelPermissions
from billing_project.api_errors import error_body
from billing_project.api_schema import AnyOf, error_response
from billing_project.pagination import (
    PAGE_DESCRIPTION,
    PAGE_SCHEMA,
    KeysetCursorPagination,
    SizedPageNumberPagination,
)
from catalog.models import Service
from catalog.selectors import customer_list_for
from usage.models import DailyUsage, MonthlySummary, Upload, UsageRecord
from usage.selectors import daily_usage_list_for, monthly_summary_list_for, usage_record_list_for
from usage.serializers import (
    UsageEventBatchResultSerializer,
    UsageEventBatchSerializer,
    UsageGroupPageSerializer,
    UsageGroupSerializer,
    UsageQuerySerializer,
    UsageRecordPageSerializer,
    UsageRecordSerializer,
    UsageRejectedSerializer,
)
from usage.services import usage_import_events


class UsageEventsView(APIView):
    """POST /api/usage/events: a batch of usage events, imported whole or not at all.

    A failed batch answers 400 with every bad event (`rows`: row = the event's position from 1,
    column, value, reason; the first 1,000 are listed, `error_count` counts all). The failed upload
    stays in the upload history, and with an Idempotency-Key its 400 is what a replay gets.
    """

    permission_classes = [IsAuthenticated, RoleModelPermissions]
    queryset = UsageRecord.objects.none()  # for RoleModelPermissions: POST needs usage.add_usagerecord

    @extend_schema(
        request=UsageEventBatchSerializer,
        responses={
            201: UsageEventBatchResultSerializer,
            400: error_response(
                "`error.code`: `usage_rejected` (nothing imported; `rows` lists the bad events), `invalid`, "
                "`parse_error`",
                serializer=UsageRejectedSerializer,
            ),
            409: error_response(
                "`error.code`: `conflict` (a period closed or a price changed while importing), "
                "`concurrent_event_ids` (another batch imported the same event ids at once): send it again; "
                "`idempotency_key_reused`"
            ),
        },
    )
    @idempotent
    def post(self, request):
        serializer = UsageEventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        upload = usage_import_events(actor=request.user, events=serializer.validated_data["events"])
        if upload.status == Upload.Status.IMPORTED:
            return Response(UsageEventBatchResultSerializer(upload).data, status=status.HTTP_201_CREATED)
        return Response(_rejected_body(upload), status=status.HTTP_400_BAD_REQUEST)


def _rejected_body(upload: Upload) -> dict:
    fields: dict[str, list[str]] = {}
    for error in upload.errors:
        fields.setdefault(f"events[{error['row']}].{error['column']}", []).append(
            f"'{error['value']}' {error['reason']}" if error["value"] else error["reason"]
        )
    body = error_body(
        "usage_rejected",
        f"{upload.error_count} error(s) in {upload.row_count} event(s); nothing was imported. "
        "Rows are the events' positions in the batch, from 1.",
        fields,
    )
    body["error"].update(
        upload=upload.pk, row_count=upload.row_count, error_count=upload.error_count, rows=upload.errors
    )
    return body


class UsageRecordPagination(KeysetCursorPagination):
    """Records page by a cursor on (service time, id), newest first: no COUNT(*) over millions of rows, and each
    page read from the (service time, id) or (customer, service time, id) index from where the last one ended."""

    ordering = ("-service_time", "-id")
    page_size = 100
    max_page_size = 1000


class UsageGroupPagination(SizedPageNumberPagination):
    page_size = 100
    max_page_size = 1000


QUERY_PARAMETERS = [
    UsageQuerySerializer,
    OpenApiParameter(
        "cursor", str, description="Without group_by: where the page starts, the `next` or `previous` link as it is."
    ),
    OpenApiParameter("page", PAGE_SCHEMA, description=f"With group_by. {PAGE_DESCRIPTION}"),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": UsageRecordPagination.max_page_size},
        description=f"Results per page. Default {UsageRecordPagination.page_size}.",
    ),
]


class UsageListView(generics.GenericAPIView):
    """GET /api/usage: usage records the caller may see, or their totals with group_by.

    `from` and `to` are days of service time in BILLING_TIME_ZONE, both inclusive. group_by=day
    totals per customer, service and day of service time in BILLING_TIME_ZONE; group_by=month per
    billing month (the record's period, the same calendar month in that zone). Totals hold quantity,
    record count and amount at the snapshot prices (before allowance and fees; see the monthly report
    for amounts under the rating rule).
    """

    permission_classes = [IsAuthenticated, RoleModelPermissions]
    queryset = UsageRecord.objects.none()  # for RoleModelPermissions: GET needs usage.view_usagerecord
    serializer_class = UsageRecordSerializer
    filter_backends: list = []
    pagination_class = None  # chosen per request: a cursor over records, page numbers over totals

    @extend_schema(
        operation_id="usage_list",
        parameters=QUERY_PARAMETERS,
        responses=AnyOf("UsagePage", [UsageRecordPageSerializer, UsageGroupPageSerializer]),
    )
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        group_by = params.get("group_by")
        if group_by is None:
            self.pagination_class = UsageRecordPagination
            page = self.paginate_queryset(self._records(params).select_related("customer", "service"))
            return self.get_paginated_response(UsageRecordSerializer(page, many=True).data)
        self.pagination_class = UsageGroupPagination
        # Totals come from what the import keeps: the monthly summaries for whole months, the daily usage for days
        # and parts of months. A few rows a customer and month or day, not millions of records.
        if group_by == "month" and _whole_months(params["days"]):
            totals = _month_totals(self._summaries(params))
        else:
            totals = _daily_totals(self._days(params), group_by)
        page = self.paginate_queryset(totals)
        return self.get_paginated_response(UsageGroupSerializer(page, many=True).data)

    def _check_customer(self, params: dict) -> None:
        if "customer" in params and not customer_list_for(self.request.user).filter(pk=params["customer"]).exists():
            raise NotFound("No such customer.")

    def _records(self, params: dict) -> QuerySet[UsageRecord]:
        self._check_customer(params)
        if "customer" in params:
            records = UsageRecord.objects.filter(customer_id=params["customer"])
        else:
            records = usage_record_list_for(self.request.user)
        if "service" in params:
            # By id, not through a join: the planner then keeps walking the list's index in its order.
            service_id = Service.objects.filter(code=params["service"]).values_list("pk", flat=True).first()
            records = records.filter(service_id=service_id) if service_id else records.none()
        days = params["days"]
        # Service time alone: the (service time, id) and (customer, service time, id) indexes read the range in the
        # list's order (a `period` bound as well would only mislead the planner's row estimate).
        if days.first:
            records = records.filter(service_time__gte=days.start)
        if days.last:
            records = records.filter(service_time__lt=days.end)
        return records

    def _summaries(self, params: dict) -> QuerySet[MonthlySummary]:
        """The monthly summaries of `_records`' customers, service and whole months."""
        self._check_customer(params)
        if "customer" in params:
            summaries = MonthlySummary.objects.filter(customer_id=params["customer"])
        else:
            summaries = monthly_summary_list_for(self.request.user)
        if "service" in params:
            summaries = summaries.filter(service__code=params["service"])
        days = params["days"]
        if days.first:
            summaries = summaries.filter(period__gte=days.first)
        if days.last:
            summaries = summaries.filter(period__lte=days.last.replace(day=1))
        return summaries

    def _days(self, params: dict) -> QuerySet[DailyUsage]:
        """The daily usage of `_records`' customers, service and days."""
        self._check_customer(params)
        if "customer" in params:
            days = DailyUsage.objects.filter(customer_id=params["customer"])
        else:
            days = daily_usage_list_for(self.request.user)
        if "service" in params:
            days = days.filter(service__code=params["service"])
        if params["days"].first:
            days = days.filter(day__gte=params["days"].first)
        if params["days"].last:
            days = days.filter(day__lte=params["days"].last)
        return days


def _whole_months(days) -> bool:
    """Whether the day range starts on a month's first day and ends on a month's last day (either end may be open)."""
    return (days.first is None or days.first.day == 1) and (
        days.last is None or (days.last + timedelta(days=1)).day == 1
    )


def _month_totals(summaries: QuerySet[MonthlySummary]) -> QuerySet:
    """Totals per customer, service and billing month from the summaries, as `_totals(records, "month")` has them
    (a record's currency is its customer's, which cannot change once the customer is priced)."""
    return (
        summaries.values("customer_id", "service__code", "period", currency=F("customer__currency"))
        .annotate(
            total_quantity=Sum("quantity"),
            record_count=Sum("record_count"),
            total_amount=Sum("amount"),
        )
        .order_by("period", "customer_id", "service__code")
    )


def _daily_totals(days: QuerySet[DailyUsage], group_by: str) -> QuerySet:
    """Totals per customer, service and day, or billing month, from the daily usage, as the records would sum up
    (a month is the calendar month of its days in the billing time zone)."""
    currency = F("customer__currency")
    if group_by == "day":
        # One row a customer, service and day already: nothing to add up.
        return days.values(
            "customer_id",
            "service__code",
            "day",
            "record_count",
            currency=currency,
            total_quantity=F("quantity"),
            total_amount=F("amount"),
        ).order_by("day", "customer_id", "service__code")
    return (
        days.values("customer_id", "service__code", period=TruncMonth("day"), currency=currency)
        .annotate(total_quantity=Sum("quantity"), record_count=Sum("record_count"), total_amount=Sum("amount"))
        .order_by("period", "customer_id", "service__code")
    )
