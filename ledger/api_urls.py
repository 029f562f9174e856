from django.urls import path
from rest_framework.routers import SimpleRouter

from ledger import api

router = SimpleRouter(trailing_slash=False)
router.register("invoices", api.InvoiceViewSet, basename="invoice")
# The same resource under the name older clients use: same views, same scoping, same rules.
router.register("bills", api.InvoiceViewSet, basename="bill")
router.register("payments", api.PaymentViewSet, basename="payment")
router.register("transactions", api.TransactionViewSet, basename="transaction")
router.register("balances", api.BalanceViewSet, basename="balance")

urlpatterns = [
    *router.urls,
    path("customers/<int:pk>/statement", api.CustomerStatementView.as_view(), name="customer-statement"),
    path("price-quote", api.PriceQuoteView.as_view(), name="price-quote"),
]
