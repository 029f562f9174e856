"""The customer portal: read-only pages of the signed-in customer's own account."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from billing_project.billing_time import billing_today
from catalog.models import PriceAgreement
from catalog.selectors import portal_customer_id


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
        },
    )
