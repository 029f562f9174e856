from django.urls import path
from rest_framework.routers import SimpleRouter

from catalog import api

router = SimpleRouter(trailing_slash=False)
router.register("customers", api.CustomerViewSet, basename="customer")
router.register("partners", api.PartnerViewSet, basename="partner")
router.register("services", api.ServiceViewSet, basename="service")
router.register("price-agreements", api.PriceAgreementViewSet, basename="price-agreement")
router.register("minimum-commitments", api.MinimumCommitmentViewSet, basename="minimum-commitment")

urlpatterns = [
    *router.urls,
    path("customers/<int:pk>/deputies", api.CustomerDeputiesView.as_view(), name="customer-deputies"),
    path("customers/<int:pk>/deputies/<int:user_pk>", api.CustomerDeputyView.as_view(), name="customer-deputy"),
]
