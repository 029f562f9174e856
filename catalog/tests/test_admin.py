"""The catalog's admin: scoping per role, saves through services with history, history views, query counts."""

from datetime import date
from decimal import Decimal
from unittest import mock

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from catalog import services
from catalog.models import Customer, Partner, PortalMembership, PriceAgreement, Service
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory

pytestmark = pytest.mark.django_db

INLINE = "price_agreements"


def customer_form(customer: Customer | None = None, **overrides) -> dict:
    """The POST body of the customer change form, with an empty agreements inline."""
    data = {
        "name": customer.name if customer else "Acme Trading",
        "legal_name": customer.legal_name if customer else "Acme Trading Ltd",
        "client_id": customer.client_id if customer else "ACME-1",
        "status": customer.status if customer else "active",
        "currency": customer.currency if customer else "EUR",
        "billing_email": customer.billing_email if customer else "ap@acme.example",
        "street_line1": customer.street_line1 if customer else "",
        "country": customer.country.code or "" if customer else "",
        "einvoice_delivery": customer.einvoice_delivery if customer else "pdf",
        "csm": customer.csm_id or "" if customer else "",
        "sales_owner": customer.sales_owner_id or "" if customer else "",
        "start_date": (customer.start_date if customer else date(2026, 1, 1)).isoformat(),
        "end_date": "",
        # The browser sends back the hidden initial of a field whose default is callable.
        "initial-start_date": (customer.start_date if customer else date.today()).isoformat(),
        f"{INLINE}-TOTAL_FORMS": "0",
        f"{INLINE}-INITIAL_FORMS": "0",
        f"{INLINE}-MIN_NUM_FORMS": "0",
        f"{INLINE}-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def inline_rows(*rows: dict) -> dict:
    """New rows for the agreements inline (no existing rows)."""
    data = {f"{INLINE}-TOTAL_FORMS": str(len(rows))}
    for index, row in enumerate(rows):
        data.update({f"{INLINE}-{index}-{field}": value for field, value in row.items()})
    return data


def agreement_row(service, valid_from="2026-01-01", valid_to="", unit_price="0.05") -> dict:
    return {
        "service": service.pk,
        "pricing_model": "per_unit",
        "unit_price": unit_price,
        "included_quantity": "0",
        "monthly_fee": "0",
        "valid_from": valid_from,
        "valid_to": valid_to,
    }


def tier_rows(*rows: dict, initial: int = 0) -> dict:
    """The tiers inline of an agreement's page: `initial` saved rows first (each row its fields, with `id`)."""
    data = {
        "tiers-TOTAL_FORMS": str(len(rows)),
        "tiers-INITIAL_FORMS": str(initial),
        "tiers-MIN_NUM_FORMS": "0",
        "tiers-MAX_NUM_FORMS": "1000",
    }
    for index, row in enumerate(rows):
        data.update({f"tiers-{index}-{field}": value for field, value in row.items()})
    return data


def change_url(model_name: str, pk: int) -> str:
    return reverse(f"admin:catalog_{model_name}_change", args=[pk])


# Customer Success sees their own customers only.


def test_csm_changelist_lists_only_their_customers(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    mine = CustomerFactory(csm=csm, name="Mine Ltd")
    CustomerFactory(csm=make_user(Role.CUSTOMER_SUCCESS), name="Theirs Ltd")
    CustomerFactory(name="Nobody's Ltd")
    client.force_login(csm)

    response = client.get(reverse("admin:catalog_customer_changelist"))

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [mine]
    assert b"Theirs Ltd" not in response.content
    assert b"Nobody&#x27;s Ltd" not in response.content


def test_finance_changelist_lists_every_customer(client, finance_user):
    CustomerFactory.create_batch(3)
    client.force_login(finance_user)

    response = client.get(reverse("admin:catalog_customer_changelist"))

    assert response.context["cl"].result_count == 3


def test_csm_is_turned_away_from_another_customers_change_page(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    other = CustomerFactory(csm=make_user(Role.CUSTOMER_SUCCESS), name="Theirs Ltd")
    client.force_login(csm)

    response = client.get(change_url("customer", other.pk), follow=True)

    assert response.redirect_chain[0] == (reverse("admin:index"), 302)
    assert "doesn’t exist" in " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert b"Theirs Ltd" not in response.content


def test_csm_cannot_change_another_customer_by_posting(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    other = CustomerFactory(csm=make_user(Role.CUSTOMER_SUCCESS))
    client.force_login(csm)

    response = client.post(change_url("customer", other.pk), customer_form(other, billing_email="evil@example.com"))

    assert response.status_code == 302
    other.refresh_from_db()
    assert other.billing_email != "evil@example.com"


def test_csm_sees_the_price_agreements_of_their_customer_inline(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    agreement = PriceAgreementFactory(customer__csm=csm, service__code="kyc_check", unit_price=Decimal("0.125"))
    client.force_login(csm)

    response = client.get(change_url("customer", agreement.customer_id))

    assert response.status_code == 200
    inline = next(
        formset for formset in response.context["inline_admin_formsets"] if formset.opts.model is PriceAgreement
    )
    assert [form.original for form in inline] == [agreement]
    assert b"kyc_check" in response.content
    # Customer Success may only view agreements: the inline is read-only for them.
    assert not inline.has_change_permission
    assert not inline.has_add_permission


def test_csm_agreement_changelist_lists_only_their_customers_agreements(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    mine = PriceAgreementFactory(customer__csm=csm)
    other = PriceAgreementFactory()
    client.force_login(csm)

    response = client.get(reverse("admin:catalog_priceagreement_changelist"))
    assert list(response.context["cl"].result_list) == [mine]
    assert client.get(change_url("priceagreement", other.pk)).status_code == 302


def test_csm_saving_their_customer_leaves_the_read_only_agreements_alone(client, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    agreement = PriceAgreementFactory(customer__csm=csm)
    customer = agreement.customer
    client.force_login(csm)

    data = customer_form(customer, billing_email="new@customer.example")
    data.update({f"{INLINE}-TOTAL_FORMS": "1", f"{INLINE}-INITIAL_FORMS": "1"})
    response = client.post(change_url("customer", customer.pk), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    customer.refresh_from_db()
    assert customer.billing_email == "new@customer.example"
    assert customer.history.latest().history_user == csm
    assert agreement.history.count() == 1  # no write on the agreement the CSM may only view


# Saves go through the services and record who acted.


def test_adding_a_customer_calls_the_service_and_records_the_acting_user(client, finance_user):
    client.force_login(finance_user)
    admin_class = type(admin.site._registry[Customer])

    with mock.patch.object(admin_class, "create_service", wraps=services.customer_create) as create:
        response = client.post(reverse("admin:catalog_customer_add"), customer_form())

    assert response.status_code == 302, response.context and response.context["errors"]
    create.assert_called_once()
    assert create.call_args.kwargs["actor"] == finance_user
    customer = Customer.objects.get(client_id="ACME-1")
    assert customer.name == "Acme Trading"
    assert customer.history.latest().history_user == finance_user
    assert customer.history.latest().history_type == "+"


def test_changing_a_customer_calls_the_service_with_only_the_changed_fields(client, finance_user):
    customer = CustomerFactory()
    client.force_login(finance_user)
    admin_class = type(admin.site._registry[Customer])

    with mock.patch.object(admin_class, "update_service", wraps=services.customer_update) as update:
        response = client.post(change_url("customer", customer.pk), customer_form(customer, status="suspended"))

    assert response.status_code == 302, response.context and response.context["errors"]
    update.assert_called_once_with(actor=finance_user, customer=mock.ANY, status="suspended")
    customer.refresh_from_db()
    assert customer.status == "suspended"
    assert customer.history.latest().history_user == finance_user


def test_invalid_customer_form_shows_the_error_and_writes_nothing(client, finance_user):
    client.force_login(finance_user)

    response = client.post(reverse("admin:catalog_customer_add"), customer_form(client_id="bad id!"))

    assert response.status_code == 200
    assert "client_id" in response.context["adminform"].form.errors
    assert not Customer.objects.exists()


def test_adding_an_agreement_inline_on_the_customer_page(client, finance_user):
    customer = CustomerFactory()
    service = ServiceFactory()
    client.force_login(finance_user)

    data = customer_form(customer) | inline_rows(agreement_row(service, valid_from="2026-02-01", unit_price="0.07"))
    with mock.patch.object(services, "price_agreement_create", wraps=services.price_agreement_create) as create:
        response = client.post(change_url("customer", customer.pk), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    create.assert_called_once()
    agreement = PriceAgreement.objects.get(customer=customer, service=service)
    assert (agreement.valid_from, agreement.unit_price) == (date(2026, 2, 1), Decimal("0.07"))
    assert agreement.history.latest().history_user == finance_user
    assert customer.history.latest().history_user == finance_user


def test_adding_a_customer_with_an_agreement_inline(client, finance_user):
    service = ServiceFactory()
    client.force_login(finance_user)

    response = client.post(reverse("admin:catalog_customer_add"), customer_form() | inline_rows(agreement_row(service)))

    assert response.status_code == 302, response.context and response.context["errors"]
    agreement = PriceAgreement.objects.get()
    assert agreement.customer.client_id == "ACME-1"
    assert agreement.history.latest().history_user == finance_user


def test_changing_an_agreement_inline_goes_through_the_update_service(client, finance_user):
    agreement = PriceAgreementFactory(unit_price=Decimal("0.05"))
    client.force_login(finance_user)
    row = {f"{INLINE}-0-id": agreement.pk, f"{INLINE}-0-customer": agreement.customer_id}
    row |= {f"{INLINE}-0-{k}": v for k, v in agreement_row(agreement.service, unit_price="0.06").items()}
    data = customer_form(agreement.customer) | row | {f"{INLINE}-TOTAL_FORMS": "1", f"{INLINE}-INITIAL_FORMS": "1"}

    response = client.post(change_url("customer", agreement.customer_id), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    agreement.refresh_from_db()
    assert agreement.unit_price == Decimal("0.06")
    assert agreement.history.latest().history_user == finance_user
    assert agreement.history.latest().history_type == "~"


def test_overlapping_rows_in_the_inline_show_an_error_and_write_nothing(client, finance_user):
    customer = CustomerFactory(billing_email="before@customer.example")
    service = ServiceFactory()
    client.force_login(finance_user)
    rows = inline_rows(
        agreement_row(service, valid_from="2026-01-01", valid_to="2026-06-30"),
        agreement_row(service, valid_from="2026-06-01"),
    )

    response = client.post(
        change_url("customer", customer.pk), customer_form(customer, billing_email="x@y.example") | rows
    )

    assert response.status_code == 200
    assert "Overlaps" in str(response.context["errors"])
    assert not PriceAgreement.objects.exists()
    customer.refresh_from_db()
    assert customer.billing_email == "before@customer.example"


def test_an_edited_row_and_a_new_row_that_overlap_show_an_error(client, finance_user):
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=date(2026, 3, 31))
    client.force_login(finance_user)
    edited = {f"{INLINE}-0-id": existing.pk, f"{INLINE}-0-customer": existing.customer_id}
    edited |= {f"{INLINE}-0-{k}": v for k, v in agreement_row(existing.service, valid_to="").items()}
    new = {f"{INLINE}-1-{k}": v for k, v in agreement_row(existing.service, valid_from="2026-04-01").items()}
    data = customer_form(existing.customer) | edited | new
    data |= {f"{INLINE}-TOTAL_FORMS": "2", f"{INLINE}-INITIAL_FORMS": "1"}

    response = client.post(change_url("customer", existing.customer_id), data)

    assert response.status_code == 200
    assert "Overlaps another row" in str(response.context["errors"])
    existing.refresh_from_db()
    assert existing.valid_to == date(2026, 3, 31)
    assert PriceAgreement.objects.count() == 1


def test_a_saved_agreement_keeps_its_service_in_the_inline(client, finance_user):
    existing = PriceAgreementFactory()
    client.force_login(finance_user)
    row = {f"{INLINE}-0-id": existing.pk, f"{INLINE}-0-customer": existing.customer_id}
    row |= {f"{INLINE}-0-{k}": v for k, v in agreement_row(ServiceFactory()).items()}
    data = customer_form(existing.customer) | row | {f"{INLINE}-TOTAL_FORMS": "1", f"{INLINE}-INITIAL_FORMS": "1"}

    response = client.post(change_url("customer", existing.customer_id), data)

    assert response.status_code == 200
    assert "keeps its service" in str(response.context["errors"])
    assert PriceAgreement.objects.get().service == existing.service


def test_inline_row_overlapping_a_stored_agreement_shows_an_error(client, finance_user):
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=None)
    client.force_login(finance_user)
    data = customer_form(existing.customer) | inline_rows(agreement_row(existing.service, valid_from="2026-03-01"))
    data.update({f"{INLINE}-INITIAL_FORMS": "0"})

    response = client.post(change_url("customer", existing.customer_id), data)

    assert response.status_code == 200
    assert "Overlaps" in str(response.context["errors"])
    assert PriceAgreement.objects.count() == 1


def test_adding_an_agreement_on_its_add_page(client, finance_user):
    customer = CustomerFactory()
    service = ServiceFactory()
    client.force_login(finance_user)

    with mock.patch.object(services, "price_agreement_create", wraps=services.price_agreement_create) as create:
        response = client.post(
            reverse("admin:catalog_priceagreement_add"),
            {"customer": customer.pk}
            | agreement_row(service, valid_from="2026-03-01", valid_to="2026-12-31")
            | tier_rows(),
        )

    assert response.status_code == 302, response.context and response.context["errors"]
    create.assert_called_once()
    agreement = PriceAgreement.objects.get()
    assert (agreement.customer, agreement.service, agreement.valid_to) == (customer, service, date(2026, 12, 31))
    assert agreement.history.latest().history_user == finance_user


def test_overlapping_agreement_on_the_add_page_shows_a_form_error_and_writes_nothing(client, finance_user):
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))
    client.force_login(finance_user)

    response = client.post(
        reverse("admin:catalog_priceagreement_add"),
        {"customer": existing.customer_id} | agreement_row(existing.service, valid_from="2026-06-30") | tier_rows(),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Overlaps" in str(errors["valid_from"])
    assert PriceAgreement.objects.count() == 1


def test_changing_an_agreement_keeps_its_customer_and_service(client, finance_user):
    agreement = PriceAgreementFactory(unit_price=Decimal("0.05"))
    other_customer = CustomerFactory()
    client.force_login(finance_user)

    response = client.post(
        change_url("priceagreement", agreement.pk),
        {"customer": other_customer.pk} | agreement_row(ServiceFactory(), unit_price="0.09") | tier_rows(),
    )

    assert response.status_code == 302, response.context and response.context["errors"]
    agreement.refresh_from_db()
    assert agreement.unit_price == Decimal("0.09")
    assert agreement.customer != other_customer
    assert agreement.history.latest().history_user == finance_user


# History.


def test_history_view_shows_the_changes_and_who_made_them(client, finance_user, admin_user):
    customer = services.customer_create(actor=finance_user, name="Acme", client_id="ACME-1", currency="EUR")
    services.customer_update(actor=admin_user, customer=customer, billing_email="ap@acme.example")
    client.force_login(finance_user)

    response = client.get(reverse("admin:catalog_customer_history", args=[customer.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert finance_user.email in html
    assert admin_user.email in html
    assert "ap@acme.example" in html  # the diff of the change


def test_history_version_view_opens_read_only(client, finance_user):
    customer = services.customer_create(actor=finance_user, name="Acme", client_id="ACME-1", currency="EUR")
    services.customer_update(actor=finance_user, customer=customer, name="Acme Renamed")
    first = customer.history.earliest()
    client.force_login(finance_user)
    url = reverse("admin:catalog_customer_simple_history", args=[customer.pk, first.history_id])

    response = client.get(url)

    assert response.status_code == 200
    assert b'value="Acme"' in response.content
    # Reverting would write without the services: the version page is for reading only.
    assert client.post(url, customer_form(customer, name="Acme")).status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Acme Renamed"


def test_csm_cannot_read_the_history_of_another_customer(client, make_user, finance_user):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    other = services.customer_create(actor=finance_user, name="Theirs", client_id="THEIRS-1", currency="EUR")
    version = other.history.latest()
    mine = services.customer_create(actor=finance_user, name="Mine", client_id="MINE-1", currency="EUR", csm=csm)
    client.force_login(csm)

    assert client.get(reverse("admin:catalog_customer_history", args=[mine.pk])).status_code == 200
    assert client.get(reverse("admin:catalog_customer_history", args=[other.pk])).status_code == 404
    version_url = reverse("admin:catalog_customer_simple_history", args=[other.pk, version.history_id])
    assert client.get(version_url).status_code == 404


def test_view_only_user_cannot_write_through_the_history_version_page(client, make_user, finance_user):
    operations = make_user(Role.OPERATIONS)  # may view customers, not change them
    customer = services.customer_create(actor=finance_user, name="Acme", client_id="ACME-1", currency="EUR")
    version = customer.history.latest()
    client.force_login(operations)
    url = reverse("admin:catalog_customer_simple_history", args=[customer.pk, version.history_id])

    assert client.get(url).status_code == 200
    response = client.post(url, customer_form(customer, name="Hijacked"))

    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.name == "Acme"


# Portal memberships, partners and services are added through their services too.


def test_admin_adds_a_portal_user_for_a_customer(client, admin_user):
    customer = CustomerFactory()
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:catalog_portalmembership_add"),
        {"customer": customer.pk, "email": "Buyer@Customer.example", "full_name": "Buyer", "password": ""},
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    membership = PortalMembership.objects.get()
    assert (membership.customer, membership.user.email) == (customer, "buyer@customer.example")
    assert not membership.user.is_staff
    assert not membership.user.has_usable_password()
    assert membership.history.latest().history_user == admin_user


@pytest.mark.parametrize(
    ("email", "password", "field"),
    [("taken@example.com", "", "email"), ("TAKEN@example.com", "", "email"), ("new@example.com", "12345", "password")],
)
def test_portal_user_form_errors_are_shown_not_raised(client, admin_user, email, password, field):
    UserFactory(email="taken@example.com")
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:catalog_portalmembership_add"),
        {"customer": CustomerFactory().pk, "email": email, "full_name": "Buyer", "password": password},
    )

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not PortalMembership.objects.exists()


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Partner, {"name": "Formation Partners", "iban": "de89 3704 0044 0532 0130 00", "payout_currency": "EUR"}),
        (
            Service,
            {
                "code": "kyc_check",
                "name": "KYC check",
                "unit_label": "check",
                "unit_code": "C62",
                "category": "kyc",
                "active": "on",
            },
        ),
    ],
)
def test_finance_adds_partners_and_services_with_history(client, finance_user, model, data):
    client.force_login(finance_user)
    blank = {"contact_person": "", "email": "", "phone": "", "description": "", "bic": ""}

    response = client.post(reverse(f"admin:catalog_{model._meta.model_name}_add"), blank | data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    created = model.objects.get()
    assert created.history.latest().history_user == finance_user


def test_service_code_cannot_change_once_priced(client, finance_user):
    agreement = PriceAgreementFactory(service__code="kyc_check")
    service = agreement.service
    client.force_login(finance_user)

    response = client.post(
        change_url("service", service.pk),
        {"code": "kyc_renamed", "name": service.name, "unit_label": "check", "category": "kyc", "active": "on"},
    )

    assert response.status_code == 200
    assert "code" in response.context["adminform"].form.errors
    service.refresh_from_db()
    assert service.code == "kyc_check"


# Query counts: a changelist costs the same for 3 rows as for 30 (session, user, groups, permissions,
# count, rows, filters, sidebar; measured, and pinned so that a new N+1 fails here).
CUSTOMER_CHANGELIST_QUERIES = 12  # + what the page's customers owe on overdue invoices
AGREEMENT_CHANGELIST_QUERIES = 13  # + the page's agreements' tiers, for their price column


def _changelist_queries(client, url, django_assert_max_num_queries, limit):
    with django_assert_max_num_queries(limit):
        response = client.get(url)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("rows", [3, 30])
def test_customer_changelist_query_count_does_not_grow_with_rows(
    client, finance_user, make_user, rows, django_assert_max_num_queries
):
    csms = [make_user(Role.CUSTOMER_SUCCESS) for _ in range(3)]
    sales = make_user(Role.SALES)
    for index in range(rows):
        CustomerFactory(csm=csms[index % 3], sales_owner=sales)
    client.force_login(finance_user)

    response = _changelist_queries(
        client, reverse("admin:catalog_customer_changelist"), django_assert_max_num_queries, CUSTOMER_CHANGELIST_QUERIES
    )
    assert response.context["cl"].result_count == rows


@pytest.mark.parametrize("rows", [3, 30])
def test_agreement_changelist_query_count_does_not_grow_with_rows(
    client, finance_user, rows, django_assert_max_num_queries
):
    for _ in range(rows):
        PriceAgreementFactory()
    client.force_login(finance_user)

    response = _changelist_queries(
        client,
        reverse("admin:catalog_priceagreement_changelist"),
        django_assert_max_num_queries,
        AGREEMENT_CHANGELIST_QUERIES,
    )
    assert response.context["cl"].result_count == rows


@pytest.mark.parametrize("rows", [3, 30])
def test_csm_customer_changelist_query_count_does_not_grow_with_rows(
    client, make_user, rows, django_assert_max_num_queries
):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    CustomerFactory.create_batch(rows, csm=csm)
    client.force_login(csm)

    response = _changelist_queries(
        client, reverse("admin:catalog_customer_changelist"), django_assert_max_num_queries, CUSTOMER_CHANGELIST_QUERIES
    )
    assert response.context["cl"].result_count == rows


def test_a_price_agreement_date_out_of_range_shows_the_whole_list_with_a_message(client, finance_user):
    agreement = PriceAgreementFactory()
    client.force_login(finance_user)
    url = reverse("admin:catalog_priceagreement_changelist")

    response = client.get(url, {"valid_from__year": 9999, "valid_from__month": 12, "valid_from__day": 31}, follow=True)

    assert response.status_code == 200
    assert "Date filter 9999-12-31: Enter a day from 1900-01-01 to 2100-12-31." in response.content.decode()
    assert list(response.context["cl"].result_list) == [agreement]


def test_requiring_csm_approval_without_a_csm_shows_the_error_on_the_form(client, finance_user):
    client.force_login(finance_user)

    response = client.post(reverse("admin:catalog_customer_add"), customer_form(require_csm_approval="on"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == ["require_csm_approval"]
    assert "ACME-1 has no CSM to approve its bills: choose its CSM" in errors["require_csm_approval"][0]
    assert not Customer.objects.exists()


def test_sales_without_the_csm_field_is_told_why_a_customer_without_a_csm_cannot_require_approval(client, make_user):
    sales = make_user(Role.SALES)  # sees the CSM read-only: the error is on the field they can change
    customer = CustomerFactory(csm=None)
    client.force_login(sales)

    form = customer_form(customer, require_csm_approval="on")
    del form["csm"], form["sales_owner"]
    response = client.post(change_url("customer", customer.pk), form)

    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["require_csm_approval"]
    customer.refresh_from_db()
    assert customer.require_csm_approval is False
