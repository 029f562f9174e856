"""Payout batches in the API (Finance and Admin): list, read, create (partners and a cut-off date), approve (by
someone other than the creator), cancel, and download the SEPA bank file (pain.001) and the partner's statement.

Writes call orders.services.payouts; their refusals come back in the one error format. Its input and output
serializers are here, beside the views, as they serve no other part of the API.
"""

import django_filters
from django.db.models import Count, Prefetch, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.idempotency import IDEMPOTENCY_PARAMETERS, idempotent
from billing_project import money
from billing_project.api_fields import AmountField, CharField, ModelSerializer
from billing_project.api_filters import ApiFilterSet, IdFilter
from billing_project.api_schema import error_response
from catalog.models import Partner
from orders.api import OrderDeskView, _read
from orders.models import PayoutBatch, Settlement
from orders.services.payouts import (
    CREATE_PERMISSION,
    DECIDE_PERMISSION,
    payout_batch_approve,
    payout_batch_cancel,
    payout_batch_create,
    payout_batch_pain001,
    payout_statement_pdf,
)

VIEW = ["orders.view_payoutbatch"]
NOT_FOUND = "`not_found`: no payout batch of that id"


class PayoutSettlementSerializer(ModelSerializer):
    """A settlement a batch pays: its order and calculation; `amount` is what it adds (negative for a correction
    that gives back). It is paid (`paid_at`) when the batch is approved."""

    order = serializers.IntegerField(source="order_id", read_only=True)
    order_number = CharField(source="order.number", read_only=True)
    order_type = CharField(source="order.order_type.code", read_only=True)
    net = AmountField(read_only=True)
    share = AmountField(read_only=True)
    amount = AmountField(read_only=True)

    class Meta:
        model = Settlement
        fields = [
            "id",
            "order",
            "order_number",
            "order_type",
            "sequence",
            "currency",
            "net",
            "percentage",
            "share",
            "amount",
            "approved_at",
            "paid_at",
        ]
        read_only_fields = fields


class PayoutBatchSerializer(ModelSerializer):
    partner_name = CharField(source="partner.name", read_only=True)
    total = AmountField(read_only=True, help_text="What is transferred: the sum of its settlements.")
    settlement_count = serializers.IntegerField(read_only=True)
    created_by = serializers.EmailField(source="created_by.email", read_only=True)
    approved_by = serializers.EmailField(source="approved_by.email", read_only=True, allow_null=True)

    class Meta:
        model = PayoutBatch
        fields = [
            "id",
            "number",
            "partner",
            "partner_name",
            "currency",
            "cut_off",
            "total",
            "settlement_count",
            "status",
            "iban",
            "bic",
            "created_by",
            "created_at",
            "approved_by",
            "approved_at",
            "cancelled_at",
            "cancel_reason",
        ]
        read_only_fields = fields


class PayoutBatchDetailSerializer(PayoutBatchSerializer):
    settlements = PayoutSettlementSerializer(many=True, read_only=True)

    class Meta(PayoutBatchSerializer.Meta):
        fields = [*PayoutBatchSerializer.Meta.fields, "settlements"]
        read_only_fields = fields


class PayoutBatchCreateSerializer(serializers.Serializer):
    partners = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.all(), many=True, allow_empty=False, help_text="The ids of the partners to pay."
    )
    cut_off = serializers.DateField(help_text="Settlements approved on or before this day are paid.")


class PayoutBatchCancelSerializer(serializers.Serializer):
    reason = CharField(max_length=2000, help_text="Why the batch is cancelled.")


class PayoutBatchFilter(ApiFilterSet):
    partner = IdFilter(field_name="partner_id", label="Partner id")
    currency = django_filters.ChoiceFilter(choices=money.CURRENCY_CHOICES, label="Currency")
    status = django_filters.ChoiceFilter(choices=PayoutBatch.Status.choices, label="Status")

    class Meta:
        model = PayoutBatch
        fields = ["partner", "currency", "status"]


def _file(content: bytes, name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


class PayoutBatchViewSet(OrderDeskView, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Payout batches, newest first: each pays one partner, in one currency, its approved settlements up to a
    cut-off date. Finance and Admin only."""

    serializer_class = PayoutBatchSerializer
    filterset_class = PayoutBatchFilter
    portal_reads = False
    required_permissions = {"GET": VIEW, "POST": [CREATE_PERMISSION]}

    def get_queryset(self) -> QuerySet[PayoutBatch]:
        if getattr(self, "swagger_fake_view", False):
            return PayoutBatch.objects.none()
        return (
            PayoutBatch.objects.select_related("partner", "created_by", "approved_by")
            .annotate(settlement_count=Count("settlements"))
            .order_by("-created_at", "-pk")
        )

    def _detail(self, pk) -> dict:
        settlements = Settlement.objects.select_related("order__order_type").order_by("order__number", "sequence")
        batch = self.get_queryset().prefetch_related(Prefetch("settlements", queryset=settlements)).get(pk=pk)
        return PayoutBatchDetailSerializer(batch).data

    @extend_schema(responses={200: PayoutBatchDetailSerializer, 404: error_response(NOT_FOUND)})
    def retrieve(self, request, pk=None):
        return Response(self._detail(self.get_object().pk))

    @extend_schema(
        summary="Create payout batches",
        description="One batch per chosen partner and currency, gathering its approved settlements not yet in a "
        "batch, approved on or before `cut_off`; a currency whose settlements do not come to more than zero waits. "
        "Refused whole: nothing to pay at all (`nothing_to_pay`), or a partner to pay without an IBAN (`no_iban`).",
        request=PayoutBatchCreateSerializer,
        responses={
            201: PayoutBatchSerializer(many=True),
            400: error_response("`error.code`: `nothing_to_pay`, `no_iban`, `required`, `invalid`"),
        },
    )
    @idempotent
    def create(self, request):
        data = _read(PayoutBatchCreateSerializer, request)
        batches = payout_batch_create(actor=request.user, partners=data["partners"], cut_off=data["cut_off"])
        made = self.get_queryset().filter(pk__in=[batch.pk for batch in batches]).order_by("pk")
        return Response(PayoutBatchSerializer(made, many=True).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Approve a batch and pay it",
        description="By a Finance user other than its creator (`own_batch`, 403). Posts `payout` (the partner's "
        "payable to cash) and marks its settlements paid; then download the bank file.",
        request=None,
        responses={
            200: PayoutBatchDetailSerializer,
            403: error_response("`error.code`: `permission_denied`, `own_batch`"),
            404: error_response(NOT_FOUND),
            409: error_response("`error.code`: `already_approved`, `cancelled`, `batch_changed`"),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], required_permissions={"POST": VIEW + [DECIDE_PERMISSION]})
    @idempotent
    def approve(self, request, pk=None):
        batch = payout_batch_approve(actor=request.user, batch=self.get_object())
        return Response(self._detail(batch.pk))

    @extend_schema(
        summary="Cancel a batch awaiting approval",
        description="Nothing is paid; its settlements wait for another batch.",
        request=PayoutBatchCancelSerializer,
        responses={
            200: PayoutBatchDetailSerializer,
            400: error_response("`error.code`: `required`, `invalid`"),
            404: error_response(NOT_FOUND),
            409: error_response("`error.code`: `not_cancellable`"),
        },
        parameters=IDEMPOTENCY_PARAMETERS,
    )
    @action(detail=True, methods=["post"], required_permissions={"POST": VIEW + [DECIDE_PERMISSION]})
    @idempotent
    def cancel(self, request, pk=None):
        data = _read(PayoutBatchCancelSerializer, request)
        batch = payout_batch_cancel(actor=request.user, batch=self.get_object(), reason=data["reason"])
        return Response(self._detail(batch.pk))

    @extend_schema(
        summary="Download the bank file (SEPA pain.001.001.03)",
        description="Of an approved EUR batch: one credit transfer of its total, end-to-end id the batch number. "
        "Refused for another currency (`not_sepa_currency`) or a batch not approved (`not_approved`).",
        responses={
            (200, "application/xml"): OpenApiResponse(OpenApiTypes.BINARY, description="The pain.001 file."),
            400: error_response("`error.code`: `not_sepa_currency`, `not_approved`"),
            404: error_response(NOT_FOUND),
        },
    )
    @action(detail=True, methods=["get"], url_path="bank-file", required_permissions={"GET": VIEW})
    def bank_file(self, request, pk=None):
        batch = self.get_object()
        return _file(payout_batch_pain001(batch), f"{batch.number}-pain001.xml", "application/xml")

    @extend_schema(
        summary="Download the partner's statement (PDF)",
        description="Each settlement with its order and calculation, and the total. None for a cancelled batch.",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The statement."),
            400: error_response("`error.code`: `cancelled`"),
            404: error_response(NOT_FOUND),
        },
    )
    @action(detail=True, methods=["get"], required_permissions={"GET": VIEW})
    def statement(self, request, pk=None):
        batch = self.get_object()
        return _file(payout_statement_pdf(batch), f"{batch.number}-statement.pdf", "application/pdf")
