from django.urls import path
from rest_framework.routers import SimpleRouter

from orders import api, api_payouts

router = SimpleRouter(trailing_slash=False)
router.register("orders", api.OrderViewSet, basename="order")
router.register("order-types", api.OrderTypeViewSet, basename="order-type")
router.register("document-types", api.DocumentTypeViewSet, basename="document-type")
router.register("companies", api.CompanyViewSet, basename="company")
router.register("registrars", api.RegistrarViewSet, basename="registrar")
router.register("revenue-share-agreements", api.RevenueShareAgreementViewSet, basename="revenue-share-agreement")
router.register("payout-batches", api_payouts.PayoutBatchViewSet, basename="payout-batch")
router.register("settlements", api.SettlementViewSet, basename="settlement")

DOCUMENT = "orders/<int:order_pk>/documents/<int:document_pk>"
TASK = "orders/<int:order_pk>/tasks/<int:task_pk>"
EXPENSE = "orders/<int:order_pk>/expenses/<int:expense_pk>"

urlpatterns = [
    *router.urls,
    path("orders/<int:order_pk>/documents", api.OrderDocumentsView.as_view(), name="order-documents"),
    path(f"{DOCUMENT}/review", api.OrderDocumentReviewView.as_view(), name="order-document-review"),
    path(f"{DOCUMENT}/submit", api.OrderDocumentSubmitView.as_view(), name="order-document-submit"),
    path(
        f"{DOCUMENT}/files/<int:file_pk>/download",
        api.OrderDocumentDownloadView.as_view(),
        name="order-document-file-download",
    ),
    path("orders/<int:order_pk>/tasks", api.OrderTasksView.as_view(), name="order-tasks"),
    path(TASK, api.OrderTaskView.as_view(), name="order-task"),
    path(f"{TASK}/complete", api.OrderTaskCompleteView.as_view(), name="order-task-complete"),
    path(f"{TASK}/reopen", api.OrderTaskReopenView.as_view(), name="order-task-reopen"),
    path("orders/<int:order_pk>/comments", api.OrderCommentsView.as_view(), name="order-comments"),
    path("orders/<int:order_pk>/expenses", api.OrderExpensesView.as_view(), name="order-expenses"),
    path(f"{EXPENSE}/reverse", api.OrderExpenseReverseView.as_view(), name="order-expense-reverse"),
    path(f"{EXPENSE}/receipt", api.OrderExpenseReceiptView.as_view(), name="order-expense-receipt"),
    path("orders/<int:order_pk>/access", api.OrderAccessView.as_view(), name="order-access"),
    path("orders/<int:order_pk>/access/<int:user_pk>", api.OrderAccessUserView.as_view(), name="order-access-user"),
]
