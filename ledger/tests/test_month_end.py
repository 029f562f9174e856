from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Customer
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import BillingRun, Invoice, InvoiceItem
from ledger.services import month_end
from ledger.services.billing import billing_config_update
from ledger.tasks import month_end_task
from usage.models import ClosedPeriod, Upload
from usage.services import usage_import_events

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)


@pytest.fixture
def customers(import_usage):
    """Three customers priced for one service: one with October usage, one with a fee only, one with neither."""
    service = ServiceFactory(code="kyc_check", name="KYC check")
    used, fee_only, idle = CustomerFactory(), CustomerFactory(), CustomerFactory()
    PriceAgreementFactory(customer=used, service=service, unit_price=D("0.5"), valid_from=date(2026, 1, 1))
    PriceAgreementFactory(customer=fee_only, service=service, monthly_fee=D(99), valid_from=date(2026, 1, 1))
    PriceAgreementFactory(customer=idle, service=service, valid_from=date(2026, 1, 1))
    import_usage(used, service, [(10, "2026-10-05T10:00:00Z"), (4, "2026-11-02T10:00:00Z")])
    return used, fee_only, idle, service


def test_month_end_bills_usage_and_fees_and_skips_customers_with_neither(customers):
    used, fee_only, idle, _ = customers

    run = month_end.month_end_run(actor=None, period=OCTOBER)

    invoices = {invoice.customer_id: invoice for invoice in Invoice.objects.all()}
    assert set(invoices) == {used.pk, fee_only.pk}
    assert (invoices[used.pk].total, invoices[fee_only.pk].total) == (D("5.00"), D("99.00"))
    assert all(invoice.status == Invoice.Status.DRAFT and invoice.billing_run == run for invoice in invoices.values())
    assert (run.status, run.customer_count, run.invoices_created, run.nothing_to_bill) == ("completed", 3, 2, 1)
    assert run.finished_at is not None


def test_month_end_writes_each_line_and_its_history_naming_who_ran_it(customers, finance_user):
    used, fee_only, _, service = customers
    billing_config_update(actor=None, customer=used, tax_rate=D("0.19"))

    month_end.month_end_run(actor=finance_user, period=OCTOBER)

    invoice = Invoice.objects.get(customer=used)
    (line,) = invoice.items.all()
    assert (line.position, line.source, line.service_id, line.quantity, line.unit_price) == (
        0,
        "usage",
        service.pk,
        D("10"),
        D("0.5"),
    )
    assert (line.amount, line.tax_rate, line.tax_amount) == (D("5.00"), D("0.19"), D("0.95"))
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("5.00"), D("0.95"), D("5.95"))
    for record in (invoice, line, ClosedPeriod.objects.get(customer=used, period=OCTOBER)):
        (created,) = record.history.all()
        assert (created.history_type, created.history_user) == ("+", finance_user)
        fields = [field.attname for field in type(record)._meta.concrete_fields]
        assert [getattr(created, name) for name in fields] == [getattr(record, name) for name in fields]
    assert InvoiceItem.history.filter(invoice_id__in=Invoice.objects.values("pk")).count() == 2


def test_a_rerun_bills_nobody_twice(customers):
    month_end.month_end_run(actor=None, period=OCTOBER)

    again = month_end.month_end_run(actor=None, period=OCTOBER)

    assert Invoice.objects.count() == 2
    assert (again.invoices_created, again.already_invoiced) == (0, 2)


def test_month_end_closes_the_period_so_no_more_usage_lands_in_it(customers):
    used, _, _, service = customers
    month_end.month_end_run(actor=None, period=OCTOBER)

    late = usage_import_events(
        actor=None,
        events=[
            {
                "serviceName": service.code,
                "clientId": used.client_id,
                "quantity": "1",
                "serviceTime": "2026-10-30T10:00:00Z",
            }
        ],
        received_at=datetime(2026, 12, 1, tzinfo=UTC),
    )

    assert ClosedPeriod.objects.filter(period=OCTOBER).count() == 3
    assert late.status == Upload.Status.FAILED
    assert "closed billing period" in late.errors[0]["reason"]


def test_the_preview_writes_nothing(customers):
    used, fee_only, _, _ = customers

    previews = month_end.month_end_preview(period=OCTOBER).invoices

    assert [(p.customer.pk, p.total) for p in previews] == [(used.pk, D("5.00")), (fee_only.pk, D("99.00"))]
    assert not Invoice.objects.exists() and not ClosedPeriod.objects.exists() and not BillingRun.objects.exists()


def test_customers_configured_for_it_are_issued_at_once(customers):
    used, fee_only, _, _ = customers
    billing_config_update(actor=None, customer=used, auto_issue=True)

    run = month_end.month_end_run(actor=None, period=OCTOBER)

    statuses = dict(Invoice.objects.values_list("customer_id", "status"))
    assert statuses == {used.pk: Invoice.Status.ISSUED, fee_only.pk: Invoice.Status.DRAFT}
    assert run.invoices_issued == 1


@pytest.mark.parametrize("chunk_size", [1, 500])
def test_a_customer_whose_billing_fails_is_recorded_and_the_rest_of_the_chunk_is_billed(
    customers, monkeypatch, chunk_size
):
    used, fee_only, _, _ = customers
    real_bill = month_end.month_end_bill
    calls = []

    def bill(*, run, customer_ids, actor):
        calls.append(list(customer_ids))
        if used.pk in customer_ids:
            raise RuntimeError("database went away")
        return real_bill(run=run, customer_ids=customer_ids, actor=actor)

    monkeypatch.setattr(month_end, "month_end_bill", bill)
    run = month_end.month_end_run(actor=None, period=OCTOBER, chunk_size=chunk_size)

    if chunk_size > 1:  # the whole chunk first, then each of its customers on their own
        assert calls == [sorted(calls[0]), *([pk] for pk in sorted(calls[0]))]

    assert run.status == BillingRun.Status.FAILED
    assert run.failures == [{"stage": "bill", "customers": [used.pk], "error": "RuntimeError: database went away"}]
    assert list(Invoice.objects.values_list("customer_id", flat=True)) == [fee_only.pk]
    monkeypatch.undo()
    assert month_end.month_end_run(actor=None, period=OCTOBER).invoices_created == 1  # the rerun catches up


def test_the_command_bills_one_customer_and_reports(customers, capsys):
    used, _, _, _ = customers

    call_command("month_end", "--period", "2026-10", "--customer", used.client_id)

    assert list(Invoice.objects.values_list("customer_id", flat=True)) == [used.pk]
    assert "1 invoice(s) made" in capsys.readouterr().out


def test_the_command_dry_run_writes_nothing(customers, capsys):
    call_command("month_end", "--period", "2026-10", "--dry-run")

    assert "2 invoice(s) would be made" in capsys.readouterr().out
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    ("arguments", "message"), [(["--period", "2026-13"], "YYYY-MM"), (["--customer", "NOPE"], "no customer")]
)
def test_the_command_refuses_bad_arguments(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("month_end", *arguments)


def test_the_celery_task_fans_out_per_customer_and_finishes_the_run(customers, eager_celery):
    run_id = month_end_task.delay(period="2026-10-01").get()

    run = BillingRun.objects.get(pk=run_id)
    assert (run.status, run.customers_done, run.invoices_created) == ("completed", 3, 2)
    assert Invoice.objects.count() == 2


def test_last_month_is_the_default_period():
    assert month_end.previous_period(date(2026, 11, 1)) == OCTOBER
    assert month_end.previous_period(date(2027, 1, 15)) == date(2026, 12, 1)


@pytest.fixture
def one_nobody_can_approve(customers, people):
    """`customers`, the two billed ones under the CSM rule; the first has lost its CSM (saved before one was
    required), so nobody can approve its bill."""
    used, fee_only, _, _ = customers
    for customer in (used, fee_only):
        Customer.objects.filter(pk=customer.pk).update(csm=people["csm"])
        customer.refresh_from_db()
        billing_config_update(actor=None, customer=customer, approval_rule="csm")
    Customer.objects.filter(pk=used.pk).update(csm=None)
    why = f"NoApprover: {used.client_id} has no CSM: set one on the customer or change its approval rule."
    return used, fee_only, why


def test_the_celery_path_leaves_a_bill_nobody_can_approve_a_draft_and_the_run_says_why(
    one_nobody_can_approve, eager_celery
):
    used, fee_only, why = one_nobody_can_approve

    run = BillingRun.objects.get(pk=month_end_task.delay(period="2026-10-01").get())

    statuses = dict(Invoice.objects.values_list("customer_id", "status"))
    assert statuses == {used.pk: Invoice.Status.DRAFT, fee_only.pk: Invoice.Status.PENDING_APPROVAL}
    assert (run.customers_done, run.invoices_created, run.invoices_submitted) == (3, 2, 1)
    assert run.failures == [{"stage": "route", "customers": [used.pk], "error": why}]


def test_the_command_reports_why_a_bill_was_left_a_draft(one_nobody_can_approve, capsys):
    used, _, why = one_nobody_can_approve

    with pytest.raises(CommandError, match="1 failure"):
        call_command("month_end", "--period", "2026-10", "--customer", used.client_id)

    assert why in capsys.readouterr().err
    assert Invoice.objects.get().status == Invoice.Status.DRAFT


# A month with nothing to bill gets no invoice, unless the customer asks for a 0.00 one (issue 10, point 6).


@pytest.fixture
def within_allowance(customers, import_usage):
    """`customers` plus ZERO-1: no fee, 1,000 checks included, 10 used in October (a 0.00 invoice, one included
    line), issued at once by its configuration."""
    service = customers[-1]
    zero = CustomerFactory(client_id="ZERO-1", name="Zero Ltd")
    PriceAgreementFactory(
        customer=zero, service=service, unit_price=D("0.5"), included_quantity=D(1000), valid_from=date(2026, 1, 1)
    )
    billing_config_update(actor=None, customer=zero, auto_issue=True)
    import_usage(zero, service, [(10, "2026-10-05T10:00:00Z")])
    return zero


def test_a_month_within_the_allowance_gets_no_invoice_and_counts_as_nothing_to_bill(within_allowance, mailoutbox):
    run = month_end.month_end_run(actor=None, period=OCTOBER)

    assert not Invoice.objects.filter(customer=within_allowance).exists()
    assert (run.status, run.customer_count, run.invoices_created, run.nothing_to_bill) == ("completed", 4, 2, 2)
    assert run.invoices_issued == 0 and mailoutbox == []


def test_with_send_zero_invoices_month_end_sends_a_zero_invoice(
    within_allowance, django_capture_on_commit_callbacks, mailoutbox, eager_celery
):
    billing_config_update(actor=None, customer=within_allowance, send_zero_invoices=True)

    with django_capture_on_commit_callbacks(execute=True):
        run = month_end.month_end_run(actor=None, period=OCTOBER)

    invoice = Invoice.objects.get(customer=within_allowance)
    assert (invoice.status, invoice.total, invoice.items.get().source) == (Invoice.Status.PAID, D("0.00"), "included")
    assert (run.invoices_created, run.invoices_issued, run.nothing_to_bill) == (3, 1, 1)
    assert [message.to for message in mailoutbox] == [[within_allowance.billing_email]]


def test_the_celery_path_counts_nothing_to_bill_too(within_allowance, eager_celery):
    run = BillingRun.objects.get(pk=month_end_task.delay(period="2026-10-01").get())

    assert (run.status, run.customers_done, run.invoices_created, run.nothing_to_bill) == ("completed", 4, 2, 2)
    assert not Invoice.objects.filter(customer=within_allowance).exists()


def test_the_preview_and_the_dry_run_list_who_has_nothing_to_bill(within_allowance, capsys):
    preview = month_end.month_end_preview(period=OCTOBER)

    assert within_allowance not in [invoice.customer for invoice in preview.invoices]
    assert within_allowance in preview.nothing_to_bill and len(preview.nothing_to_bill) == 2  # and the idle one

    call_command("month_end", "--period", "2026-10", "--dry-run")
    out = capsys.readouterr().out
    assert "ZERO-1: nothing to bill, no invoice" in out
    assert "2 invoice(s) would be made, 2 customer(s) with nothing to bill; nothing written." in out
    assert not Invoice.objects.exists()
