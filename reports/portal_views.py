"""The customer portal: read-only pages of the signed-in customer's own account."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render

from billing_project.billing_time import billing_today
from catalog.models import PriceAgreement
from catalog.selectors import portal_customer_id
from ledger.models import Invoice
from ledger.selectors import customer_balance, invoice_list_for

# What a customer sees of its invoices: never a draft or one waiting for approval.
SENT_STATUSES = [Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID, Invoice.Status.VOID]


def _sent_invoices(user):
    return invoice_list_for(user).filter(status__in=SENT_STATUSES)


@login_required
def home(request):
    customer_id = portal_customer_id(request.user)
    if customer_id is None:
        if request.user.is_staff:
            return redirect("admin:index")
        return render(request, "reports/portal_no_account.html", status=403)
    membership = request.user.portal_membership
    today = billing_today()
    agreements = PriceAgreement.objects.filter(customer_id=customer_id).select_related("service")
    return render(
        request,
        "reports/portal_home.html",
        {
            "customer": membership.customer,
            "current_agreements": agreements.in_force_on(today).order_by("service__code"),
            "past_and_future_agreements": agreements.exclude(pk__in=agreements.in_force_on(today)).order_by(
                "service__code", "-valid_from"
            ),
            "today": today,
            "balance": customer_balance(membership.customer),
            "invoices": _sent_invoices(request.user).order_by("-issued_at")[:24],
        },
    )


@login_required
def invoice_pdf(request, pk: int):
    """An issued invoice's PDF, for the portal user of its customer only; anyone else gets 404."""
    if portal_customer_id(request.user) is None:
        raise Http404
    invoice = get_object_or_404(_sent_invoices(request.user), pk=pk)
    if not invoice.pdf:
        raise Http404
    return FileResponse(invoice.pdf.open("rb"), as_attachment=True, filename=f"{invoice.number}.pdf")
