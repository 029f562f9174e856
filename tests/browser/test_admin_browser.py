"""The admin and the portal through a real browser: what a Finance user and a portal user can do."""

from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.roles import Role
from accounts.tests.factories import PASSWORD, UserFactory
from catalog.models import PriceAgreement
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, ServiceFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def admin_log_in(page: Page, email: str) -> None:
    page.goto("/admin/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def open_page(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response.status == 200, f"{path} answered {response.status}"


def choose_in_autocomplete(page: Page, select_id: str, search: str, option: str) -> None:
    """Pick `option` in the select2 widget that replaces the <select id=select_id>."""
    page.locator(f"#select2-{select_id}-container").click()
    page.locator(".select2-container--open").get_by_role("searchbox").fill(search)
    page.get_by_role("option", name=option).click()
    expect(page.locator(f"#select2-{select_id}-container")).to_have_text(option)


def assert_created_by(customer, service, finance_user) -> None:
    agreement = PriceAgreement.objects.get(customer=customer, service=service)
    assert agreement.unit_price == Decimal("0.125")
    assert agreement.valid_from.isoformat() == "2026-02-01"
    assert agreement.valid_to is None
    assert agreement.history.get(history_type="+").history_user == finance_user


@pytest.fixture
def finance(db):
    return UserFactory(roles=[Role.FINANCE], email="finance@countinghouse.example")


def test_finance_user_adds_a_price_agreement_on_the_customer_page(page: Page, finance):
    customer = CustomerFactory(name="Acme Verification GmbH", client_id="ACME")
    service = ServiceFactory(name="Identity check", code="kyc_id")
    ServiceFactory(name="Sanctions screening", code="aml_screen")

    admin_log_in(page, finance.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    open_page(page, f"/admin/catalog/customer/{customer.pk}/change/")
    tabs = page.locator("#tabs-items")
    tabs.get_by_role("link", name="Price agreements").click()
    page.get_by_role("link", name="Add another Price agreement").click()
    choose_in_autocomplete(page, "id_price_agreements-0-service", "Identity", "Identity check (kyc_id)")
    page.locator("[name=price_agreements-0-unit_price]").fill("0.125")
    page.locator("[name=price_agreements-0-valid_from]").fill("2026-02-01")
    with page.expect_response(lambda response: response.request.method == "POST") as posted:
        page.get_by_role("button", name="Save and continue editing").click()
    assert posted.value.status == 302, f"saving the customer answered {posted.value.status}"

    expect(page.get_by_text("was changed successfully")).to_be_visible()
    tabs.get_by_role("link", name="Price agreements").click()
    expect(page.get_by_text(f"{customer.name} · {service.name} · 1 Feb 2026 – open-ended")).to_be_visible()
    expect(page.locator("[name=price_agreements-0-unit_price]")).to_have_value("0.125000")
    assert_created_by(customer, service, finance)


def test_finance_user_adds_a_price_agreement_on_the_agreement_page(page: Page, finance):
    customer = CustomerFactory(name="Acme Verification GmbH", client_id="ACME")
    CustomerFactory(name="Globex Screening Ltd", client_id="GLOBEX")
    service = ServiceFactory(name="Identity check", code="kyc_id")
    ServiceFactory(name="Sanctions screening", code="aml_screen")

    admin_log_in(page, finance.email)
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    open_page(page, "/admin/catalog/priceagreement/add/")
    choose_in_autocomplete(page, "id_customer", "Acme", "Acme Verification GmbH (ACME)")
    choose_in_autocomplete(page, "id_service", "Identity", "Identity check (kyc_id)")
    page.get_by_label("Unit price").fill("0.125")
    page.get_by_label("Valid from").fill("2026-02-01")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url("/admin/catalog/priceagreement/")
    expect(page.get_by_text("was added successfully")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Acme Verification GmbH (ACME)")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Identity check (kyc_id)")
    expect(row).to_contain_text("0.125")
    assert_created_by(customer, service, finance)


def test_portal_user_is_kept_out_of_the_admin_but_sees_their_account_in_the_portal(page: Page):
    membership = PortalMembershipFactory(
        user__email="jane@acme.example", customer__name="Acme Verification GmbH", customer__client_id="ACME"
    )
    CustomerFactory(name="Globex Screening Ltd", client_id="GLOBEX")

    page.goto("/admin/")
    expect(page).to_have_url("/admin/login/?next=/admin/")
    admin_log_in(page, membership.user.email)
    expect(page).to_have_url("/admin/login/")
    expect(page.get_by_text("Please enter the correct email and password for a staff account")).to_be_visible()

    page.goto("/portal/login/")
    page.get_by_label("Email").fill(membership.user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url("/portal/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Acme Verification GmbH")
    expect(page.get_by_text("Globex")).to_have_count(0)

    # Signed in to the portal, the admin still turns them away to its login form.
    for path in ["/admin/", "/admin/catalog/customer/", f"/admin/catalog/customer/{membership.customer_id}/change/"]:
        page.goto(path)
        expect(page).to_have_url(f"/admin/login/?next={path}")
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        expect(page.get_by_text("Acme Verification GmbH")).to_have_count(0)
