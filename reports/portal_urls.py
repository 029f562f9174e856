from django.contrib.auth import views as auth_views
from django.urls import path

from reports import portal_views

app_name = "portal"

urlpatterns = [
    path("", portal_views.home, name="home"),
    path("usage/", portal_views.usage, name="usage"),
    path("statement/", portal_views.statement, name="statement"),
    path("payments/", portal_views.payments, name="payments"),
    path("invoices/", portal_views.invoices, name="invoices"),
    path("invoices/<int:pk>/pdf/", portal_views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<int:pk>/einvoice/<str:syntax>/", portal_views.invoice_einvoice, name="invoice_einvoice"),
    path("orders/", portal_views.orders, name="orders"),
    path("orders/<int:pk>/", portal_views.order, name="order"),
    path("orders/documents/<int:pk>/", portal_views.order_document, name="order_document"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="reports/portal_login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
