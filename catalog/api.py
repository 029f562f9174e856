from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, mixins, permissions, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.idempotency import idempotent
from accounts.models import User
from accounts.permissions import RoleModelPermissions
from billing_project.api_schema import error_response
from catalog import selectors, services
from catalog.filters import CustomerFilter, PriceAgreementFilter, ServiceFilter
from catalog.serializers import (
    CustomerSerializer,
    DeputyGrantSerializer,
    DeputySerializer,
    MinimumCommitmentSerializer,
    PartnerSerializer,
    PriceAgreementSerializer,
    ServiceSerializer,
)


class CatalogViewSet(viewsets.GenericViewSet):
    """Shared shape: role permissions, a queryset scoped to the caller, writes through services."""

    permission_classes = [IsAuthenticated, RoleModelPermissions]

    @idempotent
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        instance = self.perform_service_create(serializer.validated_data)
        return Response(self.get_serializer(instance).data, status=status.HTTP_201_CREATED)


class CustomerViewSet(CatalogViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Customers: list, read, create and change (PATCH) those the caller may see."""

    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter

    def get_queryset(self):
        return selectors.customer_list_for(self.request.user).order_by("name")

    def perform_service_create(self, data):
        return services.customer_create(actor=self.request.user, **data)

    @idempotent
    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        instance = services.customer_update(actor=request.user, customer=instance, **serializer.validated_data)
        return Response(self.get_serializer(instance).data)


class PartnerViewSet(CatalogViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Partners: list, read, create and change (PATCH). Their bank details (`iban`, `bic`, `payout_currency`) are
    Finance's and Admin's: left out of the response for other roles. An invalid IBAN or BIC is a 400 naming it."""

    serializer_class = PartnerSerializer

    def get_queryset(self):
        return selectors.partner_list_for(self.request.user).order_by("name", "pk")

    def perform_service_create(self, data):
        return services.partner_create(actor=self.request.user, **data)

    @idempotent
    def partial_update(self, request, *args, **kwargs):
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        instance = services.partner_update(actor=request.user, partner=instance, **serializer.validated_data)
        return Response(self.get_serializer(instance).data)


class ServiceViewSet(CatalogViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Services of the catalog: list, read and create. A portal user sees those their customer is priced for."""

    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter

    def get_queryset(self):
        return selectors.service_list_for(self.request.user).order_by("code")

    def perform_service_create(self, data):
        return services.service_create(actor=self.request.user, **data)


class PriceAgreementViewSet(CatalogViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Price agreements: list, read and create; a price change is a new agreement, never an edit."""

    serializer_class = PriceAgreementSerializer
    filterset_class = PriceAgreementFilter

    def get_queryset(self):
        return (
            selectors.price_agreement_list_for(self.request.user)
            .prefetch_related("tiers")
            .order_by("customer__name", "service__code", "valid_from")
        )

    def perform_service_create(self, data):
        return services.price_agreement_create(actor=self.request.user, **data)


class MinimumCommitmentViewSet(CatalogViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    """Minimum commitments: list, read and create. Each is an amount per billing month in the customer's
    currency; when a month's lines add up to less, the invoice charges the difference."""

    serializer_class = MinimumCommitmentSerializer

    def get_queryset(self):
        return selectors.minimum_commitment_list_for(self.request.user).order_by("customer__name", "valid_from")

    def perform_service_create(self, data):
        return services.minimum_commitment_create(actor=self.request.user, **data)


class MayShareCustomers(permissions.BasePermission):
    message = "Only an Admin can give a customer deputy CSMs."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm("catalog.share_customer")


class CustomerDeputiesView(generics.ListAPIView):
    """GET: a customer's deputy CSMs, the Customer Success users who see and approve its bills and orders like its
    CSM. POST: make one more (Admin). Every grant and revoke is in the audit trail."""

    permission_classes = [IsAuthenticated, MayShareCustomers]
    serializer_class = DeputySerializer
    filter_backends: list = []

    def customer(self):
        return get_object_or_404(selectors.customer_list_for(self.request.user), pk=self.kwargs["pk"])

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return User.objects.none()
        return selectors.customer_deputies(self.customer()).order_by("email")

    @extend_schema(
        summary="Make a Customer Success user a deputy CSM of the customer (again: changes nothing)",
        request=DeputyGrantSerializer,
        responses={
            201: DeputySerializer,
            400: error_response(
                "`error.code`: `invalid` (`user` is not an active Customer Success user, or is "
                "already the customer's CSM)"
            ),
        },
    )
    @idempotent
    def post(self, request, pk):
        customer = self.customer()
        serializer = DeputyGrantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        services.customer_deputy_add(actor=request.user, customer=customer, user=user)
        return Response(DeputySerializer(user).data, status=status.HTTP_201_CREATED)


class CustomerDeputyView(generics.GenericAPIView):
    permission_classes = [IsAuthenticated, MayShareCustomers]
    serializer_class = DeputySerializer
    filter_backends: list = []

    @extend_schema(
        summary="Take a deputy CSM off the customer",
        request=None,
        responses={204: None, 404: error_response("`not_found` (no such customer, or that user is not its deputy)")},
    )
    def delete(self, request, pk, user_pk):
        customer = get_object_or_404(selectors.customer_list_for(request.user), pk=pk)
        user = User.objects.filter(pk=user_pk).first()
        if user is None or not services.customer_deputy_remove(actor=request.user, customer=customer, user=user):
            raise Http404("That user is not a deputy CSM of the customer.")
        return Response(status=status.HTTP_204_NO_CONTENT)
