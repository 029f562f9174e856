"""A month-end run whose worker died: shown as stalled, and closed as failed by Finance with a reason."""

from datetime import date, timedelta
from decimal import Decimal as D
from unittest import mock

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.utils import timezone

from accounts.roles import Role
from billing_project.errors import Conflict, DomainError
from catalog.tests.factories import CustomerFactory, PriceAgreementFactory, ServiceFactory
from ledger.models import BillingRun, BillingRunCustomer, Invoice
from ledger.selectors import billing_run_is_stalled, billing_run_list, billing_run_stalled_list
from ledger.services import month_end
from ledger.services.billing import billing_config_update
from ledger.services.month_end import billing_run_mark_failed

pytestmark = pytest.mark.django_db
OCTOBER = date(2026, 10, 1)
DIALOG = {"_form_submitted": "on"}  # what an unfold action dialog posts


def run_started(minutes_ago: int, *, reached_minutes_ago: list[int] = ()) -> BillingRun:
    """A run started `minutes_ago` (its history with it) that reached a customer at each of the given times."""
    now = timezone.now()
    with mock.patch("django.utils.timezone.now", return_value=now - timedelta(minutes=minutes_ago)):
        run, _ = month_end.billing_run_start(actor=None, period=OCTOBER)
    for minutes in reached_minutes_ago:
        BillingRunCustomer.objects.create(
            run=run, customer=CustomerFactory(), created_at=now - timedelta(minutes=minutes)
        )
    return billing_run_list().get(pk=run.pk)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def finance(client, finance_user):
    client.force_login(finance_user)
    return client


# --- Telling a stalled run ---------------------------------------------------------------------------------------


def test_a_running_run_with_no_progress_for_30_minutes_is_stalled():
    stalled = run_started(45)
    moving = run_started(120, reached_minutes_ago=[110, 5])  # started long ago, reached a customer just now
    fresh = run_started(10)

    assert [billing_run_is_stalled(run) for run in (stalled, moving, fresh)] == [True, False, False]
    assert list(billing_run_stalled_list()) == [stalled]
    assert moving.last_progress_at > timezone.now() - timedelta(minutes=6)


def test_a_finished_run_is_never_stalled():
    run = run_started(600)
    BillingRun.objects.filter(pk=run.pk).update(status=BillingRun.Status.COMPLETED, finished_at=timezone.now())

    assert not billing_run_is_stalled(billing_run_list().get(pk=run.pk))


def test_a_failure_noted_on_the_run_counts_as_progress():
    run = run_started(45)

    month_end.billing_run_record_failure(run=run, customer_ids=[1], error=ValueError("bad price"))

    assert not billing_run_is_stalled(billing_run_list().get(pk=run.pk))


def test_how_long_counts_as_stalled_is_a_setting(settings):
    run = run_started(45)
    settings.BILLING_RUN_STALLED_AFTER_MINUTES = 60

    assert not billing_run_is_stalled(run)
    settings.BILLING_RUN_STALLED_AFTER_MINUTES = 40
    assert billing_run_is_stalled(run)


def test_month_end_keeps_when_it_reached_each_customer(priced_customer, import_usage):
    customer, service = priced_customer
    import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
    before = timezone.now()

    run = month_end.month_end_run(actor=None, period=OCTOBER)

    reached = BillingRunCustomer.objects.get(run=run)  # set by the database (SQLite keeps milliseconds)
    assert before - timedelta(seconds=1) <= reached.created_at <= timezone.now()


def test_a_customer_row_inserted_without_naming_the_time_gets_it_from_the_database():
    run = run_started(45)
    customer = CustomerFactory()
    table, quote = BillingRunCustomer._meta.db_table, connection.ops.quote_name
    with connection.cursor() as cursor:  # as a set-based insert of the other columns would
        cursor.execute(
            f"INSERT INTO {quote(table)} (run_id, customer_id, routed) VALUES (%s, %s, %s)",
            [run.pk, customer.pk, False],
        )

    assert not billing_run_is_stalled(billing_run_list().get(pk=run.pk))


# --- Closing it as failed -----------------------------------------------------------------------------------------


def test_marking_a_stalled_run_failed_records_who_and_why(finance_user):
    run = run_started(45, reached_minutes_ago=[40])

    billing_run_mark_failed(actor=finance_user, run=run, reason="  Worker killed by the OOM killer  ")

    run.refresh_from_db()
    assert (run.status, run.finished_at is not None) == (BillingRun.Status.FAILED, True)
    note = run.failures[-1]
    assert (note["stage"], note["customers"], note["by"]) == ("stalled", [], finance_user.get_username())
    assert note["error"] == f"Marked as failed by {finance_user.get_username()}: Worker killed by the OOM killer"
    latest = run.history.order_by("-history_date", "-history_id").first()
    assert (latest.status, latest.history_user, latest.history_change_reason) == (
        BillingRun.Status.FAILED,
        finance_user,
        "Worker killed by the OOM killer",
    )


def test_a_run_still_moving_or_finished_is_not_marked_failed(finance_user):
    moving = run_started(120, reached_minutes_ago=[5])
    finished = run_started(600)
    BillingRun.objects.filter(pk=finished.pk).update(status=BillingRun.Status.COMPLETED, finished_at=timezone.now())

    with pytest.raises(Conflict, match="counts as stalled only after 30 minutes"):
        billing_run_mark_failed(actor=finance_user, run=moving, reason="Looks stuck")
    with pytest.raises(Conflict, match="not running"):
        billing_run_mark_failed(actor=finance_user, run=finished, reason="Looks stuck")
    with pytest.raises(DomainError, match="Say why"):
        billing_run_mark_failed(actor=finance_user, run=run_started(45), reason=" ")
    assert set(BillingRun.objects.values_list("status", flat=True)) == {"running", "completed"}


def test_a_worker_that_was_only_slow_leaves_the_run_failed(finance_user):
    run = run_started(45)
    billing_run_mark_failed(actor=finance_user, run=run, reason="No worker alive")
    BillingRun.objects.filter(pk=run.pk).update(customers_done=run.customer_count)

    month_end.billing_run_finish_if_done(run=run)

    run.refresh_from_db()
    assert run.status == BillingRun.Status.FAILED


# --- In the admin ------------------------------------------------------------------------------------------------


def test_the_run_list_shows_a_stalled_run_and_filters_on_it(finance):
    stalled, moving = run_started(45), run_started(120, reached_minutes_ago=[5])

    page = finance.get("/admin/ledger/billingrun/").content.decode()
    assert "Stalled (no progress for 30 min)" in page
    assert page.count("Stalled (no progress") == 1

    response = finance.get("/admin/ledger/billingrun/", {"stalled": "yes"})
    assert list(response.context["cl"].result_list) == [stalled]
    assert moving not in response.context["cl"].result_list


def test_finance_marks_a_stalled_run_failed_from_its_page(finance, finance_user):
    run = run_started(45)
    page = finance.get(f"/admin/ledger/billingrun/{run.pk}/change/")
    assert "Mark as failed" in [action["title"] for action in page.context["actions_detail"]]
    assert "Stalled (no progress for 30 min)" in page.content.decode()

    response = finance.post(
        f"/admin/ledger/billingrun/{run.pk}/mark-failed/", DIALOG | {"reason": "Worker host rebooted"}
    )

    assert response["Location"] == f"/admin/ledger/billingrun/{run.pk}/change/"
    assert messages_of(response) == [f"{run} marked as failed."]
    run.refresh_from_db()
    assert run.status == BillingRun.Status.FAILED
    assert run.failures[-1]["error"] == f"Marked as failed by {finance_user.get_username()}: Worker host rebooted"
    history = finance.get(f"/admin/ledger/billingrun/{run.pk}/history/")
    assert history.status_code == 200
    assert "Worker host rebooted" in history.content.decode()


def test_a_run_still_moving_offers_no_mark_as_failed_and_refuses_it(finance):
    run = run_started(120, reached_minutes_ago=[5])

    page = finance.get(f"/admin/ledger/billingrun/{run.pk}/change/")
    assert "Mark as failed" not in [action["title"] for action in page.context["actions_detail"]]
    response = finance.post(f"/admin/ledger/billingrun/{run.pk}/mark-failed/", DIALOG | {"reason": "Impatient"})

    assert "counts as stalled only after 30 minutes" in messages_of(response)[0]
    run.refresh_from_db()
    assert run.status == BillingRun.Status.RUNNING


@pytest.mark.parametrize("role", [Role.CUSTOMER_SUCCESS, Role.SALES, Role.OPERATIONS])
def test_only_finance_and_admin_mark_a_run_failed(client, make_user, role):
    run = run_started(45)
    client.force_login(make_user(role))

    response = client.post(f"/admin/ledger/billingrun/{run.pk}/mark-failed/", DIALOG | {"reason": "Dead"})

    assert response.status_code == 403
    run.refresh_from_db()
    assert run.status == BillingRun.Status.RUNNING


def test_the_admin_marks_a_run_failed_too(client, admin_user):
    run = run_started(45)
    client.force_login(admin_user)

    client.post(f"/admin/ledger/billingrun/{run.pk}/mark-failed/", DIALOG | {"reason": "Dead worker"})

    run.refresh_from_db()
    assert run.status == BillingRun.Status.FAILED


def test_a_rerun_routes_the_drafts_a_run_marked_as_failed_made_but_never_routed(make_user, import_usage):
    finance, csm = make_user(Role.FINANCE), make_user(Role.CUSTOMER_SUCCESS)
    service = ServiceFactory()
    needs_approval, issued_at_once = CustomerFactory(csm=csm), CustomerFactory()
    for customer, rule, auto_issue in ((needs_approval, "csm", False), (issued_at_once, "none", True)):
        PriceAgreementFactory(customer=customer, service=service, unit_price=D(1), valid_from=date(2026, 1, 1))
        billing_config_update(actor=None, customer=customer, approval_rule=rule, auto_issue=auto_issue)
        import_usage(customer, service, [(10, "2026-10-05T10:00:00Z")])
    stalled_since = timezone.now() - timedelta(hours=2)
    with mock.patch("django.utils.timezone.now", return_value=stalled_since):
        run, ids = month_end.billing_run_start(actor=None, period=OCTOBER)
        month_end.month_end_bill(run=run, customer_ids=ids, actor=None)  # then the worker dies before routing
    BillingRunCustomer.objects.filter(run=run).update(created_at=stalled_since)  # the database's clock set it
    billing_run_mark_failed(actor=finance, run=run, reason="Worker died")

    rerun = month_end.month_end_run(actor=finance, period=OCTOBER)

    assert Invoice.objects.get(customer=needs_approval).status == Invoice.Status.PENDING_APPROVAL
    assert Invoice.objects.get(customer=issued_at_once).status == Invoice.Status.ISSUED
    assert (rerun.status, rerun.already_invoiced, rerun.invoices_submitted, rerun.invoices_issued) == (
        BillingRun.Status.COMPLETED,
        2,
        1,
        1,
    )
    assert not BillingRunCustomer.objects.filter(run=run, routed=False).exists()
    again = month_end.month_end_run(actor=finance, period=OCTOBER)
    assert (again.invoices_submitted, again.invoices_issued, again.failures) == (0, 0, [])
