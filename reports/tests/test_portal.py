"""The customer portal: a portal user sees their own customer's prices and nobody else's."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from billing_project.billing_time import billing_today
from catalog import services as catalog_services
from catalog.models import PricingModel
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory

pytestmark = pytest.mark.django_db

HOME = reverse("portal:home")
LOGIN = reverse("portal:login")


@pytest.fixture
def membership():
    return PortalMembershipFactory(
        user__email="jane@acme.example", customer__name="Acme Verification GmbH", customer__currency="CHF"
    )


def test_portal_user_sees_current_earlier_and_upcoming_prices_of_their_customer_only(
    client, membership, django_assert_max_num_queries
):
    customer = membership.customer
    today = timezone.localdate()
    identity = ServiceFactory(code="kyc_id", name="Identity check")
    screening = ServiceFactory(code="aml_screen", name="Sanctions screening")
    earlier = PriceAgreementFactory(
        customer=customer,
        service=identity,
        unit_price=Decimal("0.300000"),
        valid_from=today - timedelta(days=400),
        valid_to=today - timedelta(days=31),
    )
    current = PriceAgreementFactory(
        customer=customer,
        service=identity,
        unit_price=Decimal("0.250000"),
        monthly_fee=Decimal("99.00"),
        valid_from=today - timedelta(days=30),
    )
    upcoming = PriceAgreementFactory(
        customer=customer, service=screening, unit_price=Decimal("1.750000"), valid_from=today + timedelta(days=10)
    )
    other = CustomerFactory(name="Globex Screening Ltd", client_id="GLOBEX")
    secret = ServiceFactory(code="secret_svc", name="Globex special service")
    PriceAgreementFactory(customer=other, service=secret, unit_price=Decimal("9.870000"), valid_from=today)
    PriceAgreementFactory(customer=other, service=identity, unit_price=Decimal("0.110000"), valid_from=today)
    client.force_login(membership.user)

    with django_assert_max_num_queries(11):  # 8, and the two tables' tiers and the commitment, whatever their number
        response = client.get(HOME)

    assert response.status_code == 200
    assert response.context["customer"] == customer
    assert [agreement for agreement, _ in response.context["current_agreements"]] == [current]
    assert [agreement for agreement, _ in response.context["past_and_future_agreements"]] == [upcoming, earlier]
    content = response.content.decode()
    assert "Acme Verification GmbH" in content
    for shown in [
        "CHF\u00a00.25 per",
        "CHF\u00a099.00",
        "CHF\u00a00.30 per",
        "CHF\u00a01.75 per",
        "Sanctions screening",
    ]:
        assert shown in content  # prices trimmed to two decimals, not six
    assert "0.250000" not in content
    for hidden in ["Globex", "GLOBEX", "secret_svc", "9.87", "0.11"]:
        assert hidden not in content


def test_portal_user_without_prices_sees_the_empty_states(client, membership):
    client.force_login(membership.user)

    response = client.get(HOME)

    assert response.status_code == 200
    assert "No prices are in force today." in response.content.decode()
    assert "No earlier or upcoming prices." in response.content.decode()


def test_staff_user_is_sent_to_the_admin(client, make_user):
    client.force_login(make_user(Role.FINANCE))

    response = client.get(HOME)

    assert response.status_code == 302
    assert response.url == reverse("admin:index")


def test_signed_in_user_without_a_customer_account_is_refused(client):
    client.force_login(UserFactory(is_staff=False))

    response = client.get(HOME)

    assert response.status_code == 403
    assert "reports/portal_no_account.html" in [template.name for template in response.templates]
    assert "No customer account" in response.content.decode()


def test_anonymous_visitor_is_sent_to_the_portal_login(client):
    response = client.get(HOME)

    assert response.status_code == 302
    assert response.url == f"{LOGIN}?next={HOME}"


def test_portal_login_signs_a_portal_user_in(client, membership):
    response = client.post(LOGIN, {"username": "jane@acme.example", "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == HOME
    assert client.get(HOME).context["customer"] == membership.customer


def test_portal_login_locks_out_after_five_failures(client, membership, settings):
    settings.AXES_FAILURE_LIMIT = 5
    settings.AXES_COOLOFF_TIME = timedelta(minutes=30)
    wrong = {"username": "jane@acme.example", "password": "not the password"}
    for _ in range(4):
        response = client.post(LOGIN, wrong)
        assert response.status_code == 200
        assert "did not match" in response.content.decode()
        assert 'value="jane@acme.example"' in response.content.decode()

    response = client.post(LOGIN, wrong)

    assert response.status_code == 429
    assert "accounts/locked_out.html" in [template.name for template in response.templates]
    content = response.content.decode()
    assert "Too many failed sign-ins" in content
    assert "jane@acme.example" in content
    assert "locked after 5 failed attempts" in content
    assert "Try again in 30 minutes." in content

    # Locked out, even the right password does not sign in.
    response = client.post(LOGIN, {"username": "jane@acme.example", "password": PASSWORD})
    assert response.status_code == 429
    assert client.get(HOME).status_code == 302


def test_portal_user_sees_balance_and_sent_invoices_and_downloads_only_their_own_pdf(client, membership):
    from ledger.services.invoices import invoice_create_manual, invoice_issue

    line = [{"description": "Onboarding", "quantity": Decimal(1), "unit_price": Decimal("1250.00")}]
    issued = invoice_issue(
        actor=None,
        invoice=invoice_create_manual(actor=None, customer=membership.customer, lines=line),
        send=False,
    )
    draft = invoice_create_manual(actor=None, customer=membership.customer, lines=line)
    other = invoice_issue(
        actor=None, invoice=invoice_create_manual(actor=None, customer=CustomerFactory(), lines=line), send=False
    )
    client.force_login(membership.user)

    page = client.get(HOME)
    invoices = client.get(reverse("portal:invoices"))

    assert page.context["balance"] == Decimal("1250.00")
    assert "You owe <strong>CHF\u00a01,250.00</strong>" in page.content.decode()
    assert "1 open invoice<" in page.content.decode()
    assert list(invoices.context["open_invoices"]) == [issued]
    assert list(invoices.context["page"].object_list) == []
    assert issued.number in invoices.content.decode() and other.number not in invoices.content.decode()
    download = client.get(reverse("portal:invoice_pdf", args=[issued.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert client.get(reverse("portal:invoice_pdf", args=[other.pk])).status_code == 404
    assert client.get(reverse("portal:invoice_pdf", args=[draft.pk])).status_code == 404


def test_portal_prices_show_tiers_packages_and_the_commitment(client, membership):
    customer = membership.customer
    today = billing_today()
    month_start = today.replace(day=1)
    catalog_services.price_agreement_create(
        actor=None,
        customer=customer,
        service=ServiceFactory(name="API call", unit_label="call"),
        valid_from=month_start,
        pricing_model=PricingModel.GRADUATED,
        tiers=[
            {"up_to": Decimal(10_000), "unit_price": Decimal("0.010")},
            {"up_to": None, "unit_price": Decimal("0.008"), "flat_fee": Decimal("5")},
        ],
    )
    catalog_services.price_agreement_create(
        actor=None,
        customer=customer,
        service=ServiceFactory(name="Document check", unit_label="check"),
        valid_from=month_start,
        pricing_model=PricingModel.PACKAGE,
        package_size=Decimal(1_000),
        package_price=Decimal("5.00"),
    )
    catalog_services.minimum_commitment_create(
        actor=None, customer=customer, amount=Decimal("500"), valid_from=month_start
    )
    client.force_login(membership.user)

    content = client.get(HOME).content.decode()

    currency = customer.currency
    assert "Each unit at the price of its tier:<br>1 – 10,000: " + f"{currency}\u00a00.01<br>" in content
    assert f"10,001 and above: {currency}\u00a00.008, plus {currency}\u00a05.00 once reached" in content
    assert f"{currency}\u00a05.00 per package of 1,000 checks, started packages in full" in content
    assert f"Minimum commitment: {currency}\u00a0500.00 a month" in content
