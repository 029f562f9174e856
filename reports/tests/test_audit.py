"""The audit log: which models keep history, the page (who, what, which fields), its filters, paging, exports
and who may open it.

That the journal and the approval actions cannot be changed is tested where they live
(ledger/tests/test_journal.py, ledger/tests/test_approval.py); here they are only checked to keep no history.
"""

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from django.urls import reverse
from openpyxl import load_workbook
from simple_history.models import HistoricalChanges

from accounts import services as account_services
from accounts.roles import Role
from accounts.tests.factories import UserFactory
from billing_project.billing_time import billing_today
from billing_project.spreadsheets import XLSX
from catalog import services as catalog_services
from catalog.models import Customer
from catalog.tests.factories import PortalMembershipFactory
from reports import audit_views
from reports.audit import WITHOUT_HISTORY, AuditLog, AuditQuery, FieldChange, audited_models

pytestmark = pytest.mark.django_db

URL = reverse("admin:audit_log")
JANUARY = date(2026, 1, 1)
PROJECT_APPS = {"accounts", "catalog", "usage", "ledger", "approvals", "orders", "reports", "fixtures"}
# Losing one of these histories is a regression; a new model must join this list or WITHOUT_HISTORY.
AUDITED = {
    "accounts.user", "accounts.apitoken",
    "catalog.customer", "catalog.partner", "catalog.service", "catalog.priceagreement", "catalog.portalmembership",
    "usage.upload", "usage.closedperiod",
    "ledger.billingconfig", "ledger.billingrun", "ledger.invoice", "ledger.invoiceitem", "ledger.creditnote",
    "ledger.payment", "ledger.allocation", "ledger.refund", "ledger.adjustment",
    "approvals.approvalrequest",
}  # fmt: skip


def entries(response) -> list:
    assert response.status_code == 200, response.content[:500]
    return [entry for entry, _ in response.context["rows"]]


def only(response, model: str) -> list:
    return [entry for entry in entries(response) if entry.model_label == model]


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def acme(finance_user):
    return catalog_services.customer_create(
        actor=finance_user, name="Acme", client_id="ACME", billing_email="a@acme.example"
    )


# Which models keep history.


def test_every_business_model_keeps_history_or_says_why_not():
    models = {
        model._meta.label_lower
        for model in apps.get_models()
        if model._meta.app_label in PROJECT_APPS and not model._meta.proxy and not issubclass(model, HistoricalChanges)
    }
    audited = {model._meta.label_lower for model in audited_models()}

    assert audited >= AUDITED
    assert not audited & set(WITHOUT_HISTORY)
    assert audited | set(WITHOUT_HISTORY) == models


def test_the_journal_and_approval_actions_keep_no_history_of_their_own():
    audited = {model._meta.label_lower for model in audited_models()}

    assert {"ledger.transaction", "ledger.leg", "approvals.approvalaction"}.isdisjoint(audited)


# The page.


def test_a_change_is_listed_with_who_the_object_and_the_fields(finance, finance_user, acme):
    catalog_services.customer_update(
        actor=finance_user, customer=acme, billing_email="ap@acme.example", status=Customer.Status.SUSPENDED
    )

    response = finance.get(URL)

    changed, created = only(response, "catalog.customer")
    assert (changed.user_label, changed.model_name, changed.object_id) == (str(finance_user), "customer", acme.pk)
    assert (changed.object_repr, changed.change_type, changed.change_label) == ("Acme (ACME)", "~", "changed")
    assert changed.changes == (
        FieldChange("billing_email", "billing email", "a@acme.example", "ap@acme.example"),
        FieldChange("status", "status", "Active", "Suspended"),
    )
    assert created.change_type == "+"
    assert {(change.field, change.new) for change in created.changes} >= {("name", "Acme"), ("client_id", "ACME")}
    page = response.content.decode()
    assert "ap@acme.example" in page
    assert reverse("admin:catalog_customer_history", args=[acme.pk]) in page
    assert 'href="?export=csv"' in page and 'href="?export=xlsx"' in page


def test_a_foreign_key_shows_the_object_it_points_at(finance, finance_user, acme, make_user):
    csm = make_user(Role.CUSTOMER_SUCCESS, full_name="Casey Success")

    catalog_services.customer_update(actor=finance_user, customer=acme, csm=csm)

    changed = only(finance.get(URL), "catalog.customer")[0]
    assert changed.changes == (FieldChange("csm", "customer success manager", "", str(csm)),)


def test_a_role_given_in_the_admin_shows_on_the_user_with_the_admin_who_gave_it(client, admin_user):
    user = UserFactory(is_staff=False, full_name="New Hire")
    finance_role = Group.objects.get(name=Role.FINANCE)
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        {
            "email": user.email,
            "full_name": user.full_name,
            "is_active": "on",
            "is_staff": "on",
            "groups": [finance_role.pk],
        },
    )
    assert response.status_code == 302

    changes = [
        (entry.user_label, change)
        for entry in entries(client.get(URL, {"model": "accounts.user", "object_id": user.pk}))
        for change in entry.changes
    ]
    assert (str(admin_user), FieldChange("groups", "groups", "", "Finance")) in changes
    assert (str(admin_user), FieldChange("is_staff", "is staff", "no", "yes")) in changes


def test_a_column_set_by_a_service_is_shown_although_not_editable(finance, admin_user, finance_user):
    token, _ = account_services.api_token_create(actor=admin_user, user=finance_user, name="uploader")

    account_services.api_token_revoke(actor=admin_user, token=token)

    revoked = only(finance.get(URL), "accounts.apitoken")[0]
    assert [change.field for change in revoked.changes] == ["revoked_at"]
    assert revoked.user_label == str(admin_user)


def test_a_deletion_is_listed(finance, finance_user):
    membership = PortalMembershipFactory()
    pk = membership.pk
    membership._history_user = finance_user
    membership.delete()

    deleted = only(finance.get(URL), "catalog.portalmembership")[0]
    assert (deleted.change_type, deleted.object_id, deleted.change_label) == ("-", pk, "deleted")


def test_a_change_by_a_command_or_job_is_shown_as_system(finance):
    catalog_services.customer_create(actor=None, name="Batch", client_id="BATCH")

    created = only(finance.get(URL), "catalog.customer")[0]
    assert created.user_label == "system"
    assert "system" in finance.get(URL).content.decode()


# Filters.


def test_filters_by_user_model_and_object(finance, finance_user, admin_user, acme):
    other = catalog_services.customer_create(actor=admin_user, name="Other", client_id="OTHER")
    catalog_services.customer_update(actor=admin_user, customer=acme, legal_name="Acme Holdings")
    catalog_services.service_create(actor=finance_user, code="kyc", name="KYC check")

    def listed(**filters) -> set[tuple[str, int, str]]:
        return {(e.model_label, e.object_id, e.change_type) for e in entries(finance.get(URL, filters))}

    by_finance = listed(user=finance_user.pk)
    assert ("catalog.customer", acme.pk, "+") in by_finance
    assert ("catalog.customer", acme.pk, "~") not in by_finance
    assert {label for label, _, _ in by_finance} == {"catalog.customer", "catalog.service"}
    assert listed(user=admin_user.pk) == {("catalog.customer", other.pk, "+"), ("catalog.customer", acme.pk, "~")}
    assert {label for label, _, _ in listed(model="catalog.service")} == {"catalog.service"}
    assert listed(model="catalog.customer", object_id=acme.pk) == {
        ("catalog.customer", acme.pk, "+"),
        ("catalog.customer", acme.pk, "~"),
    }
    assert ("catalog.customer", acme.pk, "+") not in listed(user="system")


def test_filters_by_period_in_whole_days(finance, acme):
    Customer.history.filter(id=acme.pk).update(history_date=datetime(2026, 3, 15, 23, 59, tzinfo=UTC))

    def listed(date_from, date_to) -> list:
        return only(finance.get(URL, {"date_from": date_from, "date_to": date_to}), "catalog.customer")

    assert len(listed("2026-03-15", "2026-03-15")) == 1
    assert len(listed("2026-03-01", "2026-03-31")) == 1
    assert listed("2026-03-16", "2026-03-31") == []
    assert listed("2026-03-01", "2026-03-14") == []
    assert only(finance.get(URL), "catalog.customer") == []  # the default: the last 30 days


def test_the_default_period_is_the_last_thirty_days(finance):
    form = finance.get(URL).context["form"]

    assert form.cleaned_data["date_to"] == billing_today()
    assert form.cleaned_data["date_from"] == billing_today() - timedelta(days=30)


def test_a_period_that_ends_before_it_starts_is_a_form_error(finance):
    response = finance.get(URL, {"date_from": "2026-03-02", "date_to": "2026-03-01"})

    assert response.status_code == 200
    assert "date_to" in response.context["form"].errors
    assert "rows" not in response.context


@pytest.mark.parametrize(
    ("query", "field", "label"),
    [
        ({"date_to": "9999-12-31"}, "date_to", "To"),
        ({"date_from": "0001-01-01"}, "date_from", "From"),
        ({"date_from": "1899-12-31", "date_to": "2026-03-01"}, "date_from", "From"),
    ],
)
def test_a_day_out_of_range_is_a_form_error_naming_the_field(finance, query, field, label):
    response = finance.get(URL, query)

    assert response.status_code == 200
    assert response.context["form"].errors[field] == ["Enter a day from 1900-01-01 to 2100-12-31."]
    assert f"<p>{label}: Enter a day from 1900-01-01 to 2100-12-31.</p>" in response.content.decode()
    assert "rows" not in response.context
    assert finance.get(URL, {**query, "export": "csv"})["Content-Type"].startswith("text/html")


def test_the_first_and_last_days_a_filter_may_name_are_accepted(finance, acme):
    Customer.history.filter(id=acme.pk).update(history_date=datetime(1900, 1, 1, tzinfo=UTC))

    response = finance.get(URL, {"date_from": "1900-01-01", "date_to": "2100-12-31"})

    assert ("catalog.customer", acme.pk) in {(entry.model_label, entry.object_id) for entry in entries(response)}


# Paging and query counts.


def test_pages_hold_fifty_changes_newest_first(finance, finance_user):
    for number in range(55):
        catalog_services.service_create(actor=finance_user, code=f"svc_{number:02d}", name=f"Service {number}")

    first = entries(finance.get(URL, {"model": "catalog.service"}))
    second = entries(finance.get(URL, {"model": "catalog.service", "page": 2}))

    assert (len(first), len(second)) == (50, 5)
    assert "page=2" in finance.get(URL, {"model": "catalog.service"}).content.decode()
    assert first[0].object_repr == "Service 54 (svc_54)"
    assert second[-1].object_repr == "Service 0 (svc_00)"
    assert [entry.when for entry in first + second] == sorted((entry.when for entry in first + second), reverse=True)


def test_the_page_reads_a_fixed_number_of_queries_whatever_the_rows(
    finance, finance_user, make_user, django_assert_max_num_queries
):
    for number in range(12):
        customer = catalog_services.customer_create(actor=finance_user, name=f"C{number}", client_id=f"C{number}")
        service = catalog_services.service_create(actor=finance_user, code=f"s{number}", name=f"S{number}")
        catalog_services.price_agreement_create(
            actor=finance_user, customer=customer, service=service, unit_price=Decimal("0.5"), valid_from=JANUARY
        )
        catalog_services.customer_update(actor=finance_user, customer=customer, csm=make_user(Role.CUSTOMER_SUCCESS))

    # Session, user, portal check, permissions (2), the user list, the count, the page's keys; per model on the
    # page (customers, users, agreements, services, billing configurations) the records and the previous versions,
    # the users' roles; one per related model (users, groups, customers, services). Fifty rows or five: the same.
    with django_assert_max_num_queries(20):
        response = finance.get(URL)

    assert len(entries(response)) == 50


# Exports.


def test_the_csv_export_holds_every_change_of_the_filters_with_formulae_neutralised(finance, finance_user):
    for number in range(60):
        catalog_services.service_create(actor=finance_user, code=f"svc_{number:02d}", name=f"Service {number}")
    catalog_services.customer_create(actor=finance_user, name='=HYPERLINK("http://x","y")', client_id="EVIL")

    response = finance.get(URL, {"export": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-log-')
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == audit_views.EXPORT_HEADERS
    body = [row for row in rows[1:] if row[2] in ("catalog.service", "catalog.customer")]
    assert len(body) == 61  # all of them, not a page
    evil = body[0]
    assert evil[1:6] == [finance_user.email, "catalog.customer", str(Customer.objects.get().pk), evil[4], "created"]
    assert evil[4].startswith("'=HYPERLINK")
    assert "name: =HYPERLINK" in evil[6]


def test_the_csv_export_keeps_to_the_filters(finance, finance_user, admin_user):
    catalog_services.service_create(actor=finance_user, code="mine", name="Mine")
    catalog_services.service_create(actor=admin_user, code="theirs", name="Theirs")

    page = finance.get(URL, {"user": finance_user.pk, "model": "catalog.service"}).content.decode()
    assert f'href="?user={finance_user.pk}&amp;model=catalog.service&amp;export=csv"' in page

    response = finance.get(URL, {"export": "csv", "user": finance_user.pk, "model": "catalog.service"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row[4] for row in rows[1:]] == ["Mine (mine)"]


def test_the_xlsx_export_is_a_workbook_without_live_formulae(finance, finance_user):
    catalog_services.customer_create(actor=finance_user, name="=1+2", client_id="FORMULA")
    catalog_services.customer_create(actor=None, name="Plain", client_id="PLAIN")

    response = finance.get(URL, {"export": "xlsx", "model": "catalog.customer"})

    assert response["Content-Type"] == XLSX
    sheet = load_workbook(io.BytesIO(b"".join(response.streaming_content))).active
    rows = list(sheet.iter_rows(values_only=True))
    assert list(rows[0]) == audit_views.EXPORT_HEADERS
    assert [(row[1], row[4], row[5]) for row in rows[1:]] == [
        ("system", "Plain (PLAIN)", "created"),
        (finance_user.email, "'=1+2 (FORMULA)", "created"),
    ]
    assert isinstance(rows[1][0], datetime)
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_an_xlsx_export_too_big_for_one_workbook_is_refused_with_a_reason(finance, finance_user, monkeypatch):
    monkeypatch.setattr(audit_views, "XLSX_MAX_ROWS", 1)
    catalog_services.service_create(actor=finance_user, code="a", name="A")
    catalog_services.service_create(actor=finance_user, code="b", name="B")

    response = finance.get(URL, {"export": "xlsx", "model": "catalog.service"})

    assert response.status_code == 200
    assert "narrow the filters or export CSV" in response.context["export_error"]


def test_the_selector_streams_every_entry_in_the_pages_order(finance_user, admin_user):
    for number in range(7):
        catalog_services.service_create(actor=finance_user, code=f"s{number}", name=f"S{number}")
        catalog_services.partner_create(actor=admin_user, name=f"P{number}")
    now = datetime.now(UTC)
    log = AuditLog(AuditQuery(start=now - timedelta(days=1), end=now + timedelta(days=1)))

    streamed = [(entry.model_label, entry.history_id) for entry in log]

    assert streamed == [(entry.model_label, entry.history_id) for entry in log[0 : log.count()]]
    assert len(streamed) == log.count()


# Who may open it.


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (Role.ADMIN, 200),
        (Role.FINANCE, 200),
        (Role.CUSTOMER_SUCCESS, 403),
        (Role.SALES, 403),
        (Role.OPERATIONS, 403),
        ("staff without role", 403),
    ],
)
def test_admin_and_finance_open_the_audit_log_and_others_are_refused(client, make_user, kind, status):
    client.force_login(make_user(kind) if kind in Role.values else make_user())

    assert client.get(URL).status_code == status
    assert client.get(URL, {"export": "csv"}).status_code == status


def test_a_portal_user_and_an_anonymous_visitor_are_sent_to_the_login(client, portal_user):
    assert client.get(URL)["Location"] == f"{reverse('admin:login')}?next={URL}"
    client.force_login(portal_user)
    assert client.get(URL)["Location"] == f"{reverse('admin:login')}?next={URL}"
