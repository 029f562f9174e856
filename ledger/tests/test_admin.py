"""The ledger admin: pages and their query counts, scoping to a CSM's customers, actions that call services,
payment entry, PDF downloads, the customer's statement and month-end."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal as D
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from accounts.roles import Role
from billing_project.formatting import day
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory
from ledger.models import (
    Adjustment,
    BillingConfig,
    BillingRun,
    CreditNote,
    Invoice,
    InvoiceItem,
    Payment,
    ReconciliationReport,
    Transaction,
)
from ledger.selectors import customer_balance
from ledger.services.billing import billing_config_update
from ledger.services.invoices import invoice_create_draft, invoice_create_manual, invoice_issue
from ledger.services.payments import payment_record
from ledger.tasks import month_end_task
from usage.models import ClosedPeriod

pytestmark = pytest.mark.django_db

OCTOBER = date(2026, 10, 1)
RECEIVED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
DIALOG = {"_form_submitted": "on"}  # what an unfold action dialog posts


@pytest.fixture
def october(priced_customer, import_usage):
    """ACME with 100 checks in October 2026 at 0.50: 50.00, tax 20%, 60.00 in all."""
    customer, service = priced_customer
    import_usage(customer, service, [(100, "2026-10-03T10:00:00Z")])
    return customer


@pytest.fixture
def draft(october):
    return invoice_create_draft(actor=None, customer=october, period=OCTOBER)


@pytest.fixture
def issued(draft):
    return invoice_issue(actor=None, invoice=draft, send=False)


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def other_csm_client(client, make_user, issued):
    """Signed in as the CSM of another customer than the invoice's."""
    csm = make_user(Role.CUSTOMER_SUCCESS)
    CustomerFactory(csm=csm)
    client.force_login(csm)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def book_payment(finance, customer, **overrides):
    data = {
        "customer": customer.pk,
        "amount": "60.00",
        "method": Payment.Method.BANK_TRANSFER,
        "received_at_0": "2026-11-20",
        "received_at_1": "09:30:00",
        "bank_reference": "BANK-2026-11-20-001",
        "note": "",
    } | overrides
    return finance.post("/admin/ledger/payment/add/", data)


# Finance's pages and their query counts: a fixed number, whatever the rows (one invoice, transaction… each here).
PAGES = {
    "invoice list": ("/admin/ledger/invoice/", 12),
    "invoice list, filtered": ("/admin/ledger/invoice/?status__exact=issued&month=2026-10&q=ACME", 12),
    "invoice page": ("/admin/ledger/invoice/{invoice}/change/", 15),  # + the approval timeline
    "invoice preview": ("/admin/ledger/invoice/{invoice}/preview/", 8),
    "new invoice": ("/admin/ledger/invoice/add/", 6),
    "payment list": ("/admin/ledger/payment/", 10),
    "payment page": ("/admin/ledger/payment/{payment}/change/", 9),  # + whether it can move to an open invoice
    "new payment": ("/admin/ledger/payment/add/", 6),
    "new refund": ("/admin/ledger/refund/add/", 6),
    "new adjustment": ("/admin/ledger/adjustment/add/", 6),
    "refund list": ("/admin/ledger/refund/", 10),
    "adjustment list": ("/admin/ledger/adjustment/", 10),
    "credit note list": ("/admin/ledger/creditnote/", 10),
    "month-end runs": ("/admin/ledger/billingrun/", 9),
    "month-end": ("/admin/ledger/billingrun/month-end/", 6),
    "journal": ("/admin/ledger/transaction/", 10),
    "transaction page": ("/admin/ledger/transaction/{transaction}/change/", 10),
    "accounts": ("/admin/ledger/account/", 9),
    "billing configurations": ("/admin/ledger/billingconfig/", 9),
    "billing configuration page": ("/admin/ledger/billingconfig/{config}/change/", 8),
    "reconciliation reports": ("/admin/ledger/reconciliationreport/", 8),
    "customer page": ("/admin/catalog/customer/{customer}/change/", 15),
    "customer statement": ("/admin/catalog/customer/{customer}/statement/", 9),
}


@pytest.mark.parametrize("name", PAGES)
def test_finance_opens_every_ledger_page_in_a_pinned_number_of_queries(
    finance, issued, name, django_assert_max_num_queries
):
    payment = payment_record(
        actor=None, customer=issued.customer, amount=D("10.00"), received_at=RECEIVED, bank_reference="B-1"
    )
    url, limit = PAGES[name]
    url = url.format(
        invoice=issued.pk,
        payment=payment.pk,
        transaction=Transaction.objects.filter(kind=Transaction.Kind.CHARGE).get().pk,
        config=BillingConfig.objects.get(customer=issued.customer).pk,
        customer=issued.customer_id,
    )
    with django_assert_max_num_queries(limit):
        response = finance.get(url)
    assert response.status_code == 200, url


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_lists_cost_the_same_queries_with_more_rows(finance, priced_customer, issued, import_usage):
    lists = ["/admin/ledger/invoice/", "/admin/ledger/transaction/", "/admin/ledger/payment/"]
    before = {url: count_queries(finance, url) for url in lists}
    _, service = priced_customer
    for number in range(3):
        customer = CustomerFactory()
        PriceAgreementFactory(customer=customer, service=service, valid_from=date(2026, 1, 1))
        import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
        invoice_issue(actor=None, invoice=invoice_create_draft(actor=None, customer=customer, period=OCTOBER))
        payment_record(
            actor=None, customer=customer, amount=D("1.00"), received_at=RECEIVED, bank_reference=f"B-{number}"
        )
    assert {url: count_queries(finance, url) for url in lists} == before


def test_a_csm_sees_only_their_customers_invoices(client, make_user, issued, import_usage):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    own = CustomerFactory(csm=csm)
    own_invoice = invoice_create_manual(actor=None, customer=own)
    client.force_login(csm)

    listed = client.get("/admin/ledger/invoice/")
    assert [invoice.pk for invoice in listed.context["cl"].result_list] == [own_invoice.pk]
    assert client.get(f"/admin/ledger/invoice/{own_invoice.pk}/change/").status_code == 200
    assert client.get(f"/admin/ledger/invoice/{issued.pk}/change/").status_code == 302  # "does not exist"
    assert client.get(f"/admin/ledger/invoice/{issued.pk}/preview/").status_code == 404


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES])
def test_cs_and_sales_see_invoices_but_neither_issue_nor_credit_them(client, make_user, role, draft):
    user = make_user(role)
    draft.customer.csm = user if role == Role.CUSTOMER_SUCCESS else None
    draft.customer.save()
    client.force_login(user)

    page = client.get(f"/admin/ledger/invoice/{draft.pk}/change/")
    assert page.status_code == 200
    offered = {action["title"] for action in page.context["actions_detail"]}
    assert offered == {"Preview"}
    assert client.post(f"/admin/ledger/invoice/{draft.pk}/issue/", DIALOG).status_code == 403
    assert client.get("/admin/ledger/payment/add/").status_code == 403
    draft.refresh_from_db()
    assert (draft.status, draft.number) == (Invoice.Status.DRAFT, None)


def test_finance_issues_a_draft_and_the_page_then_offers_what_fits_an_issued_invoice(finance, draft):
    page = finance.get(f"/admin/ledger/invoice/{draft.pk}/change/")
    assert [action["title"] for action in page.context["actions_detail"]] == [
        "Preview",
        "Add line",
        "Submit for approval",
        "Issue",
        "Cancel draft",
    ]

    response = finance.post(f"/admin/ledger/invoice/{draft.pk}/issue/", DIALOG)

    assert response.status_code == 302
    assert response["Location"] == f"/admin/ledger/invoice/{draft.pk}/change/"
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.ISSUED
    assert messages_of(response) == [f"Invoice {draft.number} issued: EUR\xa060.00, due on {day(draft.due_date)}."]
    assert customer_balance(draft.customer) == D("60.00")
    page = finance.get(f"/admin/ledger/invoice/{draft.pk}/change/")
    assert [action["title"] for action in page.context["actions_detail"]] == [
        "Preview",
        "Record payment",
        "Download PDF",
        "Send again",
        "Credit",
    ]
    assert "Receivable — Acme" in page.content.decode()  # the charge's legs, in the journal section


def test_an_action_from_a_dialog_answers_htmx_with_a_redirect_header(finance, draft):
    response = finance.post(f"/admin/ledger/invoice/{draft.pk}/cancel/", DIALOG, headers={"HX-Request": "true"})

    assert response["HX-Redirect"] == f"/admin/ledger/invoice/{draft.pk}/change/"
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.CANCELLED


def test_a_service_refusal_is_shown_as_a_message_and_changes_nothing(finance, issued):
    response = finance.post(f"/admin/ledger/invoice/{issued.pk}/cancel/", DIALOG)

    assert response.status_code == 302
    assert "only a draft or rejected invoice is cancelled" in messages_of(response)[0]
    issued.refresh_from_db()
    assert issued.status == Invoice.Status.ISSUED


def test_a_customer_whose_bills_need_approval_is_submitted_not_issued(finance, draft, make_user):
    draft.customer.require_csm_approval = True
    draft.customer.csm = make_user(Role.CUSTOMER_SUCCESS)
    draft.customer.save()

    refused = finance.post(f"/admin/ledger/invoice/{draft.pk}/issue/", DIALOG)
    assert "needs approval" in messages_of(refused)[0]
    finance.post(f"/admin/ledger/invoice/{draft.pk}/submit/", DIALOG)

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.PENDING_APPROVAL


def test_a_manual_invoice_is_created_given_lines_and_issued(finance, october):
    created = finance.post(
        "/admin/ledger/invoice/add/", {"customer": october.pk, "period": "2026-11", "kind": Invoice.Kind.MANUAL}
    )
    invoice = Invoice.objects.get(kind=Invoice.Kind.MANUAL)
    assert created["Location"] == f"/admin/ledger/invoice/{invoice.pk}/change/"
    assert (invoice.period, invoice.status, invoice.total) == (date(2026, 11, 1), Invoice.Status.DRAFT, D("0.00"))

    line = {"description": "Onboarding workshop", "quantity": "2", "unit_price": "150"}
    finance.post(f"/admin/ledger/invoice/{invoice.pk}/add-line/", DIALOG | line)

    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("300.00"), D("60.00"), D("360.00"))
    assert invoice.items.get().description == "Onboarding workshop"


def test_a_second_usage_invoice_for_the_month_is_refused_on_the_form(finance, draft):
    response = finance.post(
        "/admin/ledger/invoice/add/", {"customer": draft.customer_id, "period": "2026-10", "kind": Invoice.Kind.USAGE}
    )

    assert response.status_code == 200
    assert "already has a usage invoice for 2026-10" in str(response.context["form"].non_field_errors())
    assert response.context["form"].errors["period"] == [f"Invoice {draft.pk} already bills this month."]
    assert Invoice.objects.count() == 1


def test_the_preview_shows_the_lines_and_regenerates_a_draft(finance, draft, import_usage):
    preview = finance.get(f"/admin/ledger/invoice/{draft.pk}/preview/")
    assert "KYC check — usage at 0.5" in preview.content.decode()
    assert "EUR\xa060.00" in preview.content.decode()

    customer = draft.customer
    service = InvoiceItem.objects.get(invoice=draft, source=InvoiceItem.Source.USAGE).service
    import_usage(customer, service, [(20, "2026-10-20T10:00:00Z")])
    finance.post(f"/admin/ledger/invoice/{draft.pk}/preview/")

    draft.refresh_from_db()
    assert draft.total == D("72.00")


def test_a_partial_credit_note_through_the_dialog(finance, issued):
    finance.post(
        f"/admin/ledger/invoice/{issued.pk}/credit/",
        DIALOG | {"scope": "partial", "amount": "12.00", "reason": "Duplicate checks on 3 October"},
    )

    note = CreditNote.objects.get()
    assert (note.total, note.full, note.reason) == (D("12.00"), False, "Duplicate checks on 3 October")
    assert customer_balance(issued.customer) == D("48.00")


def test_a_partial_credit_needs_its_amount(finance, issued):
    response = finance.post(f"/admin/ledger/invoice/{issued.pk}/credit/", DIALOG | {"scope": "partial", "reason": "x"})

    assert response.status_code == 200  # the dialog again, with the error
    assert response.context["form"].errors == {"amount": ["Give the amount to credit."]}
    assert not CreditNote.objects.exists()


def test_a_payment_entered_in_the_admin_is_booked_and_pays_the_invoice(finance, finance_user, issued):
    response = book_payment(finance, issued.customer)

    payment = Payment.objects.get()
    assert response["Location"] == f"/admin/ledger/payment/{payment.pk}/change/"
    assert messages_of(response) == [
        f"Payment of EUR\xa060.00 from {issued.customer} booked: EUR\xa060.00 set against invoices, "
        "EUR\xa00.00 left as credit."
    ]
    assert (payment.amount, payment.created_by, payment.received_at) == (D("60.00"), finance_user, RECEIVED)
    assert customer_balance(issued.customer) == D("0.00")
    issued.refresh_from_db()
    assert issued.status == Invoice.Status.PAID


def test_a_duplicate_bank_reference_is_shown_on_the_form_and_books_nothing(finance, issued):
    book_payment(finance, issued.customer, amount="20.00")
    transactions = Transaction.objects.count()

    response = book_payment(finance, issued.customer, amount="40.00")

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["bank_reference"] == ["Already booked for this customer."]
    assert "is already booked for Acme" in str(form.non_field_errors())
    assert Payment.objects.count() == 1
    assert Transaction.objects.count() == transactions
    assert customer_balance(issued.customer) == D("40.00")


def test_an_adjustment_needs_a_reason_and_moves_the_balance(finance, issued):
    data = {"customer": issued.customer_id, "direction": Adjustment.Direction.CREDIT, "amount": "5.00"}
    assert finance.post("/admin/ledger/adjustment/add/", data).context["form"].errors == {
        "reason": ["This field is required."]
    }

    finance.post("/admin/ledger/adjustment/add/", data | {"reason": "Goodwill for the outage"})

    assert Adjustment.objects.get().reason == "Goodwill for the outage"
    assert customer_balance(issued.customer) == D("55.00")


# --- Payments to a chosen invoice, and moved between invoices ---------------------------------------------------


@pytest.fixture
def newer(issued):
    """A second open invoice of ACME (24.00), newer than `issued` (60.00)."""
    draft = invoice_create_manual(
        actor=None, customer=issued.customer, lines=[{"description": "Setup", "quantity": D(1), "unit_price": D(20)}]
    )
    return invoice_issue(actor=None, invoice=draft, send=False)


def offered_on(client, invoice) -> list[str]:
    return [
        action["title"]
        for action in client.get(f"/admin/ledger/invoice/{invoice.pk}/change/").context["actions_detail"]
    ]


def test_record_payment_on_an_open_invoice_opens_the_payment_form_filled_in_with_it(finance, issued, newer):
    response = finance.get(f"/admin/ledger/invoice/{newer.pk}/record-payment/")

    assert response["Location"] == f"/admin/ledger/payment/add/?invoice={newer.pk}"
    form = finance.get(response["Location"]).context["form"]
    assert form.initial == {"customer": newer.customer, "amount": D("24.00"), "invoice": newer}
    html = form.as_div()
    assert f'<option value="{newer.pk}" selected data-outstanding="24.00">' in html
    assert 'value="24.00"' in html
    # Only the customer's open invoices are offered, with what each still owes.
    assert [label for _, label in form.fields["invoice"].choices] == [
        "None: the oldest open invoices first",
        f"{issued.number} — EUR\xa060.00 open, due {day(issued.due_date)}",
        f"{newer.number} — EUR\xa024.00 open, due {day(newer.due_date)}",
    ]


def test_record_payment_is_offered_on_open_invoices_to_who_may_book_payments(client, finance, issued, newer, make_user):
    assert "Record payment" in offered_on(finance, newer)
    book_payment(finance, issued.customer, amount="24.00", invoice=newer.pk)
    assert "Record payment" not in offered_on(finance, newer)  # paid

    client.force_login(make_user(Role.SALES))
    assert "Record payment" not in offered_on(client, issued)
    assert client.get(f"/admin/ledger/invoice/{issued.pk}/record-payment/").status_code == 403


def test_a_payment_booked_for_the_newer_invoice_pays_it_and_leaves_the_older_open(finance, issued, newer):
    response = book_payment(finance, issued.customer, amount="24.00", invoice=newer.pk)

    assert messages_of(response) == [
        f"Payment of EUR\xa024.00 from {issued.customer} booked: EUR\xa024.00 set against invoices, "
        "EUR\xa00.00 left as credit. "
        f"{newer.number} is paid."
    ]
    newer.refresh_from_db()
    issued.refresh_from_db()
    assert (newer.status, issued.status, issued.outstanding) == (Invoice.Status.PAID, Invoice.Status.ISSUED, D("60.00"))


def test_an_invoice_of_another_customer_is_refused_on_the_form_and_nothing_is_booked(finance, issued):
    other = CustomerFactory(currency="EUR")
    foreign = invoice_issue(
        actor=None,
        invoice=invoice_create_manual(
            actor=None, customer=other, lines=[{"description": "X", "quantity": D(1), "unit_price": D(5)}]
        ),
        send=False,
    )

    response = book_payment(finance, issued.customer, invoice=foreign.pk)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "invoice": ["Select a valid choice. That choice is not one of the available choices."]
    }
    assert not Payment.objects.exists()


def test_the_form_reads_the_open_invoices_of_the_customer_chosen(finance, client, issued, newer, make_user):
    response = finance.get(f"/admin/ledger/payment/open-invoices/?customer={issued.customer_id}")

    assert response.json() == {
        "invoices": [
            {
                "id": issued.pk,
                "label": f"{issued.number} — EUR\xa060.00 open, due {day(issued.due_date)}",
                "outstanding": "60.00",
            },
            {
                "id": newer.pk,
                "label": f"{newer.number} — EUR\xa024.00 open, due {day(newer.due_date)}",
                "outstanding": "24.00",
            },
        ]
    }
    assert finance.get("/admin/ledger/payment/open-invoices/?customer=x").status_code == 404
    csm = make_user(Role.CUSTOMER_SUCCESS)
    client.force_login(csm)
    assert client.get(f"/admin/ledger/payment/open-invoices/?customer={issued.customer_id}").status_code == 403


@pytest.fixture
def wrongly_allocated(issued, newer):
    """24.00 meant for the newer invoice went to the older one."""
    payment = payment_record(
        actor=None, customer=issued.customer, amount=D("24.00"), received_at=RECEIVED, bank_reference="B-24"
    )
    return payment, issued, newer


def test_a_payment_moves_to_another_invoice_from_its_page(finance, finance_user, wrongly_allocated):
    payment, older, newer = wrongly_allocated
    url = f"/admin/ledger/payment/{payment.pk}/move/"
    assert "Move to another invoice" in [
        action["title"]
        for action in finance.get(f"/admin/ledger/payment/{payment.pk}/change/").context["actions_detail"]
    ]
    dialog = finance.get(url).context["form"]
    assert [label for _, label in dialog.fields["source"].choices] == [f"What it pays on {older.number}: EUR\xa024.00"]
    assert finance.get(f"/admin/ledger/payment/{payment.pk + 1000}/move/").status_code == 404

    response = finance.post(
        url, DIALOG | {"source": str(older.pk), "invoice": newer.pk, "amount": ""}, headers={"HX-Request": "true"}
    )

    assert response["HX-Redirect"] == f"/admin/ledger/payment/{payment.pk}/change/"
    assert messages_of(response) == [
        f"EUR\xa024.00 of payment B-24 moved from {older.number} to {newer.number}: it is paid. "
        f"{older.number} owes EUR\xa060.00 again."
    ]
    newer.refresh_from_db()
    older.refresh_from_db()
    assert (newer.status, older.status) == (Invoice.Status.PAID, Invoice.Status.ISSUED)
    assert [(a.invoice_id, a.amount) for a in payment.allocations.order_by("pk")] == [
        (older.pk, D("24.00")),
        (older.pk, D("-24.00")),
        (newer.pk, D("24.00")),
    ]
    assert payment.allocations.last().history.get().history_user == finance_user


def test_a_move_the_service_refuses_is_shown_on_the_dialog_and_changes_nothing(finance, wrongly_allocated):
    payment, older, newer = wrongly_allocated

    response = finance.post(
        f"/admin/ledger/payment/{payment.pk}/move/",
        DIALOG | {"source": str(older.pk), "invoice": newer.pk, "amount": "24.01"},
    )

    assert response.status_code == 200  # the dialog again
    assert response.context["form"].errors == {
        "__all__": [f"Payment B-24 has EUR\xa024.00 on {older.number}; no more can be moved."],
        "amount": ["At most EUR\xa024.00."],
    }
    assert payment.allocations.count() == 1


def test_only_finance_and_admin_move_payments(client, make_user, wrongly_allocated):
    payment, older, newer = wrongly_allocated
    client.force_login(make_user(Role.SALES))

    assert "Move to another invoice" not in [
        action["title"]
        for action in client.get(f"/admin/ledger/payment/{payment.pk}/change/").context["actions_detail"]
    ]
    response = client.post(
        f"/admin/ledger/payment/{payment.pk}/move/", DIALOG | {"source": str(older.pk), "invoice": newer.pk}
    )
    assert response.status_code == 403
    assert payment.allocations.count() == 1


def test_a_payment_is_not_offered_a_move_when_its_customer_has_no_open_invoice(finance, issued):
    payment = payment_record(
        actor=None, customer=issued.customer, amount=D("60.00"), received_at=RECEIVED, bank_reference="B-60"
    )

    page = finance.get(f"/admin/ledger/payment/{payment.pk}/change/")

    assert [action["title"] for action in page.context["actions_detail"]] == []


def test_a_refund_beyond_the_customers_credit_is_refused_on_the_form(finance, issued):
    data = {"customer": issued.customer_id, "amount": "5.00", "method": "bank_transfer", "reason": "Overpaid"}

    response = finance.post("/admin/ledger/refund/add/", data)

    assert response.context["form"].errors["amount"] == ["At most EUR\xa00.00."]
    assert customer_balance(issued.customer) == D("60.00")


def test_the_pdf_is_served_to_finance_as_a_download(finance, issued):
    response = finance.get(f"/admin/ledger/invoice/{issued.pk}/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{issued.number}.pdf"'
    assert b"".join(response.streaming_content).startswith(b"%PDF")


def test_the_pdf_of_another_customers_invoice_answers_404_to_a_csm(other_csm_client, issued):
    assert other_csm_client.get(f"/admin/ledger/invoice/{issued.pk}/pdf/").status_code == 404


def test_a_draft_has_no_pdf_to_download(finance, draft):
    response = finance.get(f"/admin/ledger/invoice/{draft.pk}/pdf/")

    assert response["Location"] == f"/admin/ledger/invoice/{draft.pk}/change/"
    assert messages_of(response) == ["Draft invoice for Acme, October 2026 is not issued yet: it has no PDF."]


def test_the_statement_exports_every_movement_as_csv_with_formulae_neutralised(finance, issued):
    payment_record(
        actor=None, customer=issued.customer, amount=D("25.00"), received_at=RECEIVED, bank_reference="=HYPERLINK(1)"
    )

    response = finance.get(f"/admin/catalog/customer/{issued.customer_id}/statement/", {"export": "csv"})

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows[0] == ["date", "kind", "reference", "description", "amount", "balance_after", "currency"]
    charge, payment = rows[1:]
    assert charge[1:] == [
        "Charge",
        issued.number,
        f"Invoice {issued.number}, 1 Oct 2026 – 31 Oct 2026",
        "60.00",
        "60.00",
        "EUR",
    ]
    assert payment[1:] == [
        "Payment",
        "'=HYPERLINK(1)",
        "Payment =HYPERLINK(1) (Bank transfer)",
        "-25.00",
        "35.00",
        "EUR",
    ]


def test_the_statement_exports_xlsx_with_numbers_and_no_live_formulae(finance, issued):
    payment_record(actor=None, customer=issued.customer, amount=D("25.00"), received_at=RECEIVED, bank_reference="=1+2")

    response = finance.get(f"/admin/catalog/customer/{issued.customer_id}/statement/", {"export": "xlsx"})

    assert response.streaming
    sheet = load_workbook(io.BytesIO(response.getvalue())).active
    assert [cell.value for cell in sheet[3]][2:6] == ["'=1+2", "Payment =1+2 (Bank transfer)", -25, 35]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_another_customers_statement_answers_404_to_a_csm(other_csm_client, issued):
    url = f"/admin/catalog/customer/{issued.customer_id}/statement/"
    assert other_csm_client.get(url).status_code == 404
    assert other_csm_client.get(url, {"export": "csv"}).status_code == 404


def test_the_customer_page_shows_the_balance_and_the_latest_movements(finance, issued):
    response = finance.get(f"/admin/catalog/customer/{issued.customer_id}/change/")

    page = " ".join(response.content.decode().split())
    assert '<strong data-testid="customer-balance">EUR 60.00</strong> (owed by the customer)' in page
    assert "Monthly, net 14 days, tax 20 %" in page
    assert [line.reference for line in response.context["account"]["lines"]] == [issued.number]


def test_operations_sees_neither_the_account_section_nor_the_statement(client, make_user, october):
    operations = make_user(Role.OPERATIONS)
    client.force_login(operations)

    response = client.get(f"/admin/catalog/customer/{october.pk}/change/")

    assert response.status_code == 200
    assert "account" not in response.context
    assert client.get(f"/admin/catalog/customer/{october.pk}/statement/").status_code == 403


def test_the_billing_configuration_is_changed_through_its_service(finance, finance_user, october):
    config = BillingConfig.objects.get(customer=october)
    data = {
        "cycle": "monthly",
        "payment_terms_days": "30",
        "tax_rate": "0.2000",
        "tax_id": "DE123",
        "tax_exempt_reason": "",
        "invoice_email": "ap@acme.example",
        "reminder_interval_days": "7",
        "approval_rule": BillingConfig.ApprovalRule.NONE,
        "sales_approval_above": "",
    }

    response = finance.post(f"/admin/ledger/billingconfig/{config.pk}/change/", data)

    assert response.status_code == 302
    config.refresh_from_db()
    assert (config.payment_terms_days, config.tax_id, config.invoice_email) == (30, "DE123", "ap@acme.example")
    assert config.history.first().history_user == finance_user


def test_month_end_preview_shows_the_lines_and_writes_nothing(finance, october):
    tables = [Invoice, InvoiceItem, BillingRun, ClosedPeriod, BillingConfig, Transaction]
    before = {model: model.objects.count() for model in tables}

    response = finance.post(
        "/admin/ledger/billingrun/month-end/", {"period": "2026-10", "customer": october.pk, "preview": ""}
    )

    assert response.status_code == 200
    (preview,) = response.context["preview"].invoices
    assert (preview.customer, preview.subtotal, preview.tax, preview.total) == (
        october,
        D("50.00"),
        D("10.00"),
        D("60.00"),
    )
    assert "KYC check — usage at 0.5" in response.content.decode()
    assert {model: model.objects.count() for model in tables} == before


def test_month_end_for_one_customer_creates_its_draft_in_process(finance, finance_user, october):
    response = finance.post(
        "/admin/ledger/billingrun/month-end/", {"period": "2026-10", "customer": october.pk, "run": ""}
    )

    run = BillingRun.objects.get()
    assert response["Location"] == f"/admin/ledger/billingrun/{run.pk}/change/"
    assert (run.customer, run.started_by, run.invoices_created, run.status) == (october, finance_user, 1, "completed")
    invoice = Invoice.objects.get()
    assert (invoice.customer, invoice.status, invoice.billing_run, invoice.total) == (
        october,
        Invoice.Status.DRAFT,
        run,
        D("60.00"),
    )
    assert messages_of(response) == [f"Month-end 2026-10 for {october} created its invoice."]
    assert october.name in finance.get(response["Location"]).content.decode()  # the run lists its invoice


def test_month_end_for_every_customer_runs_through_celery(finance, finance_user, october, eager_celery):
    with mock.patch.object(month_end_task, "delay", wraps=month_end_task.delay) as delay:
        response = finance.post("/admin/ledger/billingrun/month-end/", {"period": "2026-10", "run": ""})

    delay.assert_called_once_with(period="2026-10-01", actor_id=finance_user.pk)
    assert response["Location"] == "/admin/ledger/billingrun/"
    assert Invoice.objects.get().customer == october


def test_a_month_with_a_bad_format_is_refused(finance):
    response = finance.post("/admin/ledger/billingrun/month-end/", {"period": "October", "preview": ""})

    assert response.context["form"].errors == {"period": ["Enter a month as YYYY-MM, e.g. 2026-10."]}


def test_reconciliation_runs_on_demand_for_the_admin(client, admin_user, issued):
    client.force_login(admin_user)

    response = client.post("/admin/ledger/reconciliationreport/reconcile_now/", DIALOG)

    report = ReconciliationReport.objects.get()
    assert report.balanced
    assert response["Location"] == f"/admin/ledger/reconciliationreport/{report.pk}/change/"


def test_the_journal_is_read_only_even_for_the_admin(client, admin_user, issued):
    client.force_login(admin_user)
    entry = Transaction.objects.get()

    assert client.get("/admin/ledger/transaction/add/").status_code == 403
    assert client.post(f"/admin/ledger/transaction/{entry.pk}/change/", {}).status_code == 403
    assert client.post(f"/admin/ledger/transaction/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/ledger/invoice/{issued.pk}/change/", {}).status_code == 403


# Nothing to bill (issue 10, point 6).


def test_a_new_usage_draft_with_nothing_to_bill_shows_why_on_the_form(finance, priced_customer):
    customer, _ = priced_customer

    response = finance.post(
        "/admin/ledger/invoice/add/", {"customer": customer.pk, "period": "2026-10", "kind": Invoice.Kind.USAGE}
    )

    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["period"] == ["Nothing to bill for this month."]
    assert "ACME has nothing to bill for 2026-10" in form.non_field_errors()[0]
    assert not Invoice.objects.exists()


def test_the_preview_of_a_zero_draft_says_it_would_not_be_issued(finance, priced_customer):
    customer, _ = priced_customer
    billing_config_update(actor=None, customer=customer, send_zero_invoices=True)
    draft = invoice_create_draft(actor=None, customer=customer, period=OCTOBER)
    billing_config_update(actor=None, customer=customer, send_zero_invoices=False)

    html = finance.get(f"/admin/ledger/invoice/{draft.pk}/preview/").content.decode()

    assert "It would not be issued: ACME has nothing to bill for 2026-10" in html
    assert f"cancel draft #{draft.pk}" in html


def test_the_month_end_preview_lists_who_has_nothing_to_bill_and_the_runs_count_them(finance, priced_customer):
    customer, _ = priced_customer

    preview = finance.post("/admin/ledger/billingrun/month-end/", {"period": "2026-10", "preview": ""})

    assert list(preview.context["preview"].nothing_to_bill) == [customer]
    assert 'data-testid="preview-nothing-to-bill"' in preview.content.decode()
    finance.post("/admin/ledger/billingrun/month-end/", {"period": "2026-10", "customer": customer.pk, "run": ""})
    runs = finance.get("/admin/ledger/billingrun/")
    assert "Nothing to bill" in runs.content.decode()
    assert BillingRun.objects.get().nothing_to_bill == 1


def test_the_billing_configuration_offers_the_zero_invoice_option(finance, october):
    config = BillingConfig.objects.get(customer=october)

    page = finance.get(f"/admin/ledger/billingconfig/{config.pk}/change/").content.decode()

    assert "Send a 0.00 invoice when there is nothing to bill" in page
