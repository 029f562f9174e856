from rest_framework.routers import SimpleRouter

from catalog import api

router = SimpleRouter(trailing_slash=False)
router.register("customers", api.CustomerViewSet, basename="customer")
router.register("services", api.ServiceViewSet, basename="service")
router.register("price-agreements", api.PriceAgreementViewSet, basename="price-agreement")

urlpatterns = router.urls
