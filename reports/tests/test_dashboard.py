"""The back-office dashboard (/admin/): KPI figures, scoped like the lists they link to."""

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.roles import Role
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def kpis(response) -> dict[str, int]:
    """data-kpi slug -> the figure shown on the page."""
    html = response.content.decode()
    return {slug: int(value) for slug, value in re.findall(r'data-kpi="([\w-]+)">\s*(\d+)\s*<', html)}


def today() -> date:
    return timezone.localdate()


def seed(csm):
    """Two active customers of `csm` (one with an agreement in force), and others around them."""
    mine = CustomerFactory(csm=csm)
    CustomerFactory(csm=csm)
    CustomerFactory(csm=csm, status=Customer.Status.CLOSED)
    CustomerFactory()  # active, nobody's
    CustomerFactory(status=Customer.Status.SUSPENDED)
    ServiceFactory.create_batch(2)
    ServiceFactory(active=False)
    PriceAgreementFactory(customer=mine, valid_from=today() - timedelta(days=30))  # in force
    PriceAgreementFactory(customer=mine, valid_from=today() + timedelta(days=1))  # not yet
    other = PriceAgreementFactory(valid_from=today() - timedelta(days=60), valid_to=today())  # in force, last day
    PriceAgreementFactory(
        customer=other.customer,
        service=other.service,
        valid_from=today() - timedelta(days=90),
        valid_to=today() - timedelta(days=61),
    )  # ended
    return mine


def test_dashboard_shows_the_counts_for_a_user_who_sees_everything(client, make_user, finance_user):
    seed(make_user(Role.CUSTOMER_SUCCESS))
    client.force_login(finance_user)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    # Active customers: 2 of the CSM, 1 nobody's, 1 made for `other`; active services: 2 + 3 made for agreements.
    assert kpis(response) == {"active-customers": 4, "active-services": 5, "agreements-in-force-today": 2}


def test_csm_dashboard_counts_only_their_customers(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    seed(csm)
    client.force_login(csm)

    response = client.get(reverse("admin:index"))

    assert kpis(response) == {"active-customers": 2, "active-services": 5, "agreements-in-force-today": 1}


def test_kpis_link_to_the_filtered_lists(client, finance_user):
    client.force_login(finance_user)

    html = client.get(reverse("admin:index")).content.decode()

    assert f'href="{reverse("admin:catalog_customer_changelist")}?status__exact=active"' in html
    assert f'href="{reverse("admin:catalog_service_changelist")}?active__exact=1"' in html


def test_dashboard_hides_figures_the_user_may_not_open(client, make_user):
    PriceAgreementFactory(valid_from=today())
    operations = make_user(Role.OPERATIONS)  # sees customers and services, not price agreements
    client.force_login(operations)

    response = client.get(reverse("admin:index"))

    assert set(kpis(response)) == {"active-customers", "active-services"}
    assert f'href="{reverse("admin:catalog_priceagreement_changelist")}"' not in response.content.decode()


def test_staff_without_a_role_sees_no_figures(client, make_user):
    CustomerFactory()
    client.force_login(make_user())

    response = client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert kpis(response) == {}


def test_agreements_in_force_follow_the_billing_time_zone(client, finance_user, settings):
    # 26 hours apart: the two zones are never on the same date.
    settings.TIME_ZONE = "Etc/GMT+12"
    settings.BILLING_TIME_ZONE = "Pacific/Kiritimati"
    billing_today = timezone.localdate(timezone=ZoneInfo("Pacific/Kiritimati"))
    assert billing_today != timezone.localdate()
    PriceAgreementFactory(valid_from=billing_today, valid_to=billing_today)
    client.force_login(finance_user)

    response = client.get(reverse("admin:index"))

    assert kpis(response)["agreements-in-force-today"] == 1


def test_dashboard_query_count_does_not_grow_with_data(client, finance_user, django_assert_max_num_queries):
    for _ in range(20):
        PriceAgreementFactory(valid_from=today())
    client.force_login(finance_user)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("admin:index"))

    assert kpis(response)["agreements-in-force-today"] == 20
