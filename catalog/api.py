from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.idempotency import idempotent
from accounts.permissions import RoleModelPermissions
from catalog import selectors, services
from catalog.filters import CustomerFilter, PriceAgreementFilter, ServiceFilter
from catalog.serializers import CustomerSerializer, PriceAgreementSerializer, ServiceSerializer


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
        return selectors.price_agreement_list_for(self.request.user).order_by(
            "customer__name", "service__code", "valid_from"
        )

    def perform_service_create(self, data):
        return services.price_agreement_create(actor=self.request.user, **data)
