"""Month-end: one usage invoice per customer and period, whatever reruns, races or crashes happen.

Customers are billed in chunks, each in its own database transaction that locks the chunk's
customers (primary-key order), closes their period in `usage` (an import still running for them
then fails its own closed-period check), skips those already invoiced, rates the rest from the
monthly summaries and bulk-inserts invoices and lines: a fixed number of queries per chunk, whatever
the number of usage records. The unique constraint on (customer, period) for usage invoices holds
even if all of that were bypassed.
"""

import calendar
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from approvals.services import approval_submit, approval_submit_many
from billing_project.billing_time import billing_today, check_booking_day
from billing_project.bulk import history_record_created, insert_rows
from billing_project.errors import Conflict, DomainError
from catalog.models import Customer, MinimumCommitment, PriceAgreement
from ledger.approval import invoice_approval_rule
from ledger.locks import lock_billing_run, lock_customers
from ledger.models import BillingConfig, BillingRun, BillingRunCustomer, Invoice, InvoiceItem
from ledger.selectors import billing_run_is_stalled, billing_run_list
from ledger.services.billing import billing_config_for
from ledger.services.invoices import (
    InvoiceBeyondBounds,
    LineDraft,
    invoice_bounds_problem,
    invoice_issue,
    invoices_issue,
    items_for,
    line_tax,
    usage_lines,
)
from ledger.vat import VatTreatment, vat_treatment
from usage.models import MonthlySummary
from usage.report_selectors import usage_month_report
from usage.services import usage_close_periods

CHUNK_SIZE = 500
logger = logging.getLogger(__name__)
CHANGE_REASON_MAX_LENGTH = 100  # django-simple-history's history_change_reason column


def previous_period(today: date | None = None) -> date:
    """The month before `today`'s (in the billing zone): what a run on the 1st bills."""
    today = today or billing_today()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def billable_customer_ids(*, period: date, customer_ids: Iterable[int] | None = None) -> list[int]:
    """Customers with usage in the period or an agreement overlapping it (it may carry a monthly fee)."""
    last_day = period.replace(day=calendar.monthrange(period.year, period.month)[1])
    agreements = PriceAgreement.objects.filter(valid_from__lte=last_day).exclude(valid_to__lt=period)
    commitments = MinimumCommitment.objects.filter(valid_from__lte=last_day).exclude(valid_to__lt=period)
    summaries = MonthlySummary.objects.filter(period=period)
    if customer_ids is not None:
        customer_ids = list(customer_ids)
        agreements = agreements.filter(customer_id__in=customer_ids)
        commitments = commitments.filter(customer_id__in=customer_ids)
        summaries = summaries.filter(customer_id__in=customer_ids)
    ids = (
        set(agreements.values_list("customer_id", flat=True))
        | set(commitments.values_list("customer_id", flat=True))
        | set(summaries.values_list("customer_id", flat=True))
    )
    return sorted(ids)


@dataclass
class InvoicePreview:
    customer: Customer
    lines: list[LineDraft]
    vat: VatTreatment
    taxes: list[Decimal]  # per line
    subtotal: Decimal
    tax: Decimal
    total: Decimal

    @property
    def items(self) -> list[InvoiceItem]:
        """The lines as unsaved invoice items, for showing a preview."""
        return items_for(Invoice(customer=self.customer), self.lines, self.vat)

    @property
    def problem(self) -> str | None:
        """Why this invoice cannot be made (a figure beyond MAX_AMOUNT or MAX_QUANTITY), or None."""
        return invoice_bounds_problem(
            self.lines, subtotal=self.subtotal, tax=self.tax, total=self.total, currency=self.customer.currency
        )


def invoice_preview(customer: Customer, lines: list[LineDraft], vat: VatTreatment) -> InvoicePreview:
    """The totals an invoice of these lines would have, taxed under `vat`; writes nothing."""
    taxes = [line_tax(line.amount, vat.rate) for line in lines]  # usage lines: no disbursement among them
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    tax = sum(taxes, Decimal("0.00"))
    return InvoicePreview(customer, lines, vat, taxes, subtotal, tax, subtotal + tax)


def _previews(period: date, customer_ids: list[int]) -> list[InvoicePreview]:
    """What each customer's usage invoice would hold. Customers with nothing to bill get none: no usage and no
    fee, or an invoice of 0.00 (no fee, all usage within the allowance), unless their billing configuration
    asks for a 0.00 invoice (`send_zero_invoices`): it would take a number and send an email for nothing."""
    rows_by_customer = defaultdict(list)
    for row in usage_month_report(year=period.year, month=period.month, customer_ids=customer_ids):
        rows_by_customer[row.customer_id].append(row)
    if not rows_by_customer:
        return []
    customers = Customer.objects.in_bulk(list(rows_by_customer))
    configs = {config.customer_id: config for config in BillingConfig.objects.filter(customer_id__in=rows_by_customer)}
    previews = []
    for customer_id in sorted(rows_by_customer):
        customer = customers[customer_id]
        config = configs.get(customer_id) or BillingConfig(customer=customer)  # defaults; a preview writes nothing
        preview = invoice_preview(customer, usage_lines(rows_by_customer[customer_id]), vat_treatment(config, customer))
        if preview.total or config.send_zero_invoices:
            previews.append(preview)
    return previews


@dataclass
class MonthEndPreview:
    invoices: list[InvoicePreview]  # the invoices month-end would make
    nothing_to_bill: list[Customer]  # customers not yet invoiced who would get none: nothing to bill


def month_end_preview(*, period: date, customer_ids: Iterable[int] | None = None) -> MonthEndPreview:
    """A dry run: the invoices month-end would make for customers not yet invoiced, and who would get none.
    Writes nothing."""
    check_booking_day(period, field="period", label="month")
    ids = billable_customer_ids(period=period, customer_ids=customer_ids)
    invoiced = set(
        Invoice.objects.filter(customer_id__in=ids, period=period, kind=Invoice.Kind.USAGE).values_list(
            "customer_id", flat=True
        )
    )
    todo = [pk for pk in ids if pk not in invoiced]
    previews = _previews(period, todo)
    billed = {preview.customer.pk for preview in previews}
    idle = Customer.objects.filter(pk__in=[pk for pk in todo if pk not in billed]).order_by("name")
    return MonthEndPreview(invoices=previews, nothing_to_bill=list(idle))


@dataclass
class ChunkOutcome:
    created: list[Invoice] = field(default_factory=list)  # new drafts, to route
    leftover: list[Invoice] = field(default_factory=list)  # drafts an earlier delivery or run died before routing
    adopted: list[int] = field(default_factory=list)  # earlier, finished runs' unrouted BillingRunCustomer rows
    customer_ids: list[int] = field(default_factory=list)  # the customers this call is to count done
    already_invoiced: int = 0
    nothing_to_bill: int = 0


@transaction.atomic
def month_end_bill(*, run: BillingRun, customer_ids: Iterable[int], actor: User | None) -> ChunkOutcome:
    """Bill one chunk of customers for the run's period: draft invoices, period closed. Safe to repeat."""
    period = run.period
    locked = lock_customers(customer_ids)
    usage_close_periods(actor=actor, customer_ids=locked, period=period)
    # A customer this run already billed (a task delivered twice) is not billed or counted again; if the
    # earlier delivery died before routing its draft, this one routes it.
    seen = dict(BillingRunCustomer.objects.filter(run=run, customer_id__in=locked).values_list("customer_id", "routed"))
    fresh = [pk for pk in locked if pk not in seen]
    unrouted = [pk for pk, routed in seen.items() if not routed]
    invoiced = set(
        Invoice.objects.filter(customer_id__in=fresh, period=period, kind=Invoice.Kind.USAGE).values_list(
            "customer_id", flat=True
        )
    )
    todo = [pk for pk in fresh if pk not in invoiced]
    previews = _previews(period, todo)
    invoices = []
    for preview in previews:
        if problem := preview.problem:  # the chunk rolls back and is billed again customer by customer
            raise InvoiceBeyondBounds(
                f"The invoice of {preview.customer.client_id} for {period:%Y-%m} cannot be made: {problem}."
            )
        invoice = Invoice(
            customer=preview.customer,
            kind=Invoice.Kind.USAGE,
            period=period,
            currency=preview.customer.currency,
            subtotal=preview.subtotal,
            tax=preview.tax,
            total=preview.total,
            billing_run=run,
            created_by=actor,
        )
        invoices.append(invoice)
    _insert_with_lines(invoices, previews, actor)
    BillingRunCustomer.objects.bulk_create([BillingRunCustomer(run=run, customer_id=pk) for pk in fresh])
    # A draft an earlier run made and never routed (its worker died and the run was closed as failed) is
    # routed by this one; a run still going routes its own.
    adopted = dict(
        BillingRunCustomer.objects.filter(
            customer_id__in=invoiced, routed=False, run__period=period, run__finished_at__isnull=False
        )
        .exclude(run=run)
        .values_list("pk", "customer_id")
    )
    leftover = list(
        Invoice.objects.filter(
            customer_id__in=[*unrouted, *adopted.values()],
            period=period,
            kind=Invoice.Kind.USAGE,
            status=Invoice.Status.DRAFT,
        ).select_related("customer")
    )
    outcome = ChunkOutcome(
        created=invoices,
        leftover=leftover,
        adopted=list(adopted),
        customer_ids=[*fresh, *unrouted],
        already_invoiced=len(invoiced),
        nothing_to_bill=len(todo) - len(invoices),
    )
    # Progress counters, bumped in place by concurrent tasks: no history version per bump; the run's history
    # keeps its start and its finish, which carries the final counts.
    BillingRun.objects.filter(pk=run.pk).update(
        invoices_created=F("invoices_created") + len(invoices),
        already_invoiced=F("already_invoiced") + outcome.already_invoiced,
        nothing_to_bill=F("nothing_to_bill") + outcome.nothing_to_bill,
    )
    return outcome


_ITEM_COLUMNS = [
    "invoice_id",
    "position",
    "source",
    "description",
    "service_id",
    "quantity",
    "unit_price",
    "amount",
    "tax_rate",
    "tax_amount",
    "vat_category",
    "vat_exemption_reason",
    "vat_exemption_code",
]


def _insert_with_lines(invoices: list[Invoice], previews: list[InvoicePreview], actor: User | None) -> None:
    """Insert the chunk's invoices and their lines, each with its "created" history row.

    Month-end writes tens of thousands of lines: they go in as plain rows (COPY on PostgreSQL), and
    their history with one statement per table, not as a model instance per row."""
    if not invoices:
        return
    Invoice.objects.bulk_create(invoices)
    if invoices[0].pk is None:  # a database that returns no ids on bulk insert
        by_customer = dict(
            Invoice.objects.filter(
                billing_run=invoices[0].billing_run_id, customer_id__in=[invoice.customer_id for invoice in invoices]
            ).values_list("customer_id", "pk")
        )
        for invoice in invoices:
            invoice.pk = by_customer[invoice.customer_id]
    insert_rows(
        InvoiceItem,
        _ITEM_COLUMNS,
        (
            (
                invoice.pk,
                position,
                line.source,
                line.description,
                line.service_id,
                line.quantity,
                line.unit_price,
                line.amount,
                preview.vat.rate,
                tax,
                preview.vat.category,
                preview.vat.exemption_reason,
                preview.vat.exemption_code,
            )
            for invoice, preview in zip(invoices, previews, strict=True)
            for position, (line, tax) in enumerate(zip(preview.lines, preview.taxes, strict=True))
        ),
    )
    ids = [invoice.pk for invoice in invoices]
    in_ids = f"({', '.join(['%s'] * len(ids))})"
    now = timezone.now()
    history_record_created(Invoice, where=f"id IN {in_ids}", params=ids, user=actor, when=now)
    history_record_created(InvoiceItem, where=f"invoice_id IN {in_ids}", params=ids, user=actor, when=now)


def _route(run: BillingRun, invoices: list[Invoice], actor: User | None, *, recheck: bool = False) -> None:
    """Each new draft goes its customer's way: submitted for approval when its rule says so, otherwise
    issued at once when the billing configuration says so, otherwise left as a draft for Finance.
    One customer's failure is noted on the run and does not stop the others.

    The drafts to submit go in one batch (`approval_submit_many`, in one transaction with the run's count);
    if the batch fails, they are submitted one by one, so that only the invoices at fault stay drafts with
    their failure noted. The run's counters take one UPDATE each per call. With `recheck` (drafts an
    earlier delivery left unrouted) only those still drafts are routed, read in one query."""
    if recheck and invoices:
        drafts = set(
            Invoice.objects.filter(pk__in=[i.pk for i in invoices], status=Invoice.Status.DRAFT).values_list(
                "pk", flat=True
            )
        )
        invoices = [i for i in invoices if i.pk in drafts]  # the others were routed meanwhile by another delivery
    if not invoices:
        return
    configs = {
        config.customer_id: config
        for config in BillingConfig.objects.filter(customer_id__in=[i.customer_id for i in invoices]).select_related(
            "customer"
        )
    }
    to_submit, to_issue = [], []
    for invoice in invoices:
        config = configs.get(invoice.customer_id) or billing_config_for(invoice.customer)
        try:
            needs_approval = bool(invoice_approval_rule(invoice, config).steps)
        except Exception as error:  # the invoice stays a draft; Finance sees why on the run
            billing_run_record_failure(run=run, customer_ids=[invoice.customer_id], error=error, stage="route")
            continue
        if needs_approval:
            to_submit.append(invoice)
        elif config.auto_issue:
            to_issue.append(invoice)
    _submit(run, to_submit, actor)
    _issue(run, to_issue, actor)


def _submit(run: BillingRun, invoices: list[Invoice], actor: User | None) -> None:
    _in_batch(
        run,
        invoices,
        "invoices_submitted",
        batch=lambda batch: len(approval_submit_many(actor=actor, targets=batch)),
        one=lambda invoice: approval_submit(actor=actor, target=invoice),
    )


def _issue(run: BillingRun, invoices: list[Invoice], actor: User | None) -> None:
    """Issued in one batch (`invoices_issue`): their PDFs and e-invoices are made after commit, by a task."""
    _in_batch(
        run,
        invoices,
        "invoices_issued",
        batch=lambda batch: len(invoices_issue(actor=actor, invoices=batch)),
        one=lambda invoice: invoice_issue(actor=actor, invoice=invoice),
    )


def _in_batch(
    run: BillingRun,
    invoices: list[Invoice],
    counter: str,
    *,
    batch: Callable[[list[Invoice]], int],
    one: Callable[[Invoice], object],
) -> None:
    """Route the invoices in one batch, `batch` returning how many it routed, counted on the run's `counter` in the
    same transaction. If the batch fails (an e-invoice that breaks a rule, an approval nobody can give), it rolled
    back whole, and each invoice is routed on its own (`_one_by_one`), so that only the invoices at fault stay drafts,
    their failure noted."""
    if not invoices:
        return
    try:
        with transaction.atomic():
            routed = batch(invoices)
            BillingRun.objects.filter(pk=run.pk).update(**{counter: F(counter) + routed})
        return
    except Exception:
        logger.warning("Run %s: a batch of %s failed; routing them one by one", run.pk, counter, exc_info=True)
    _one_by_one(run, invoices, counter, one)


def _one_by_one(run: BillingRun, invoices: list[Invoice], counter: str, route: Callable[[Invoice], object]) -> None:
    """Route each invoice on its own: a failure is noted on the run for its customer and stops no other. The
    run's `counter` counts those `route` returned something for, in one UPDATE."""
    routed = 0
    try:
        for invoice in invoices:
            try:
                if route(invoice) is not None:
                    routed += 1
            except Exception as error:
                billing_run_record_failure(run=run, customer_ids=[invoice.customer_id], error=error, stage="route")
    finally:
        if routed:
            BillingRun.objects.filter(pk=run.pk).update(**{counter: F(counter) + routed})


@transaction.atomic
def billing_run_record_failure(
    *, run: BillingRun, customer_ids: list[int], error: Exception, stage: str = "bill"
) -> None:
    """Note that billing (stage "bill") or routing the new draft (stage "route") failed for these customers."""
    run = lock_billing_run(run)
    run.failures.append({"stage": stage, "customers": customer_ids, "error": f"{type(error).__name__}: {error}"[:500]})
    run.save(update_fields=["failures"])


def billing_run_start(
    *, actor: User | None, period: date, customer: Customer | None = None
) -> tuple[BillingRun, list[int]]:
    check_booking_day(period, field="period", label="month")
    ids = billable_customer_ids(period=period, customer_ids=[customer.pk] if customer else None)
    run = BillingRun(period=period, customer=customer, started_by=actor, customer_count=len(ids))
    run._history_user = actor  # a worker has no request: the history names who started it, like started_by
    run.save()
    return run, ids


def billing_run_finish_if_done(*, run: BillingRun) -> BillingRun:
    """Mark the run finished once every customer is done or failed; each per-customer task asks."""
    with transaction.atomic():
        run = lock_billing_run(run)
        if run.finished_at is not None:
            return run
        failed = _failed_customers(run)
        if failed:  # a failure a later delivery made good counts once, as done
            made_good = run.customers.filter(routed=True, customer_id__in=failed).values_list("customer_id", flat=True)
            failed -= set(made_good)
        if run.customers_done + len(failed) >= run.customer_count:
            run.finished_at = timezone.now()
            run.status = BillingRun.Status.FAILED if run.failures else BillingRun.Status.COMPLETED
            run.save(update_fields=["finished_at", "status"])
    return run


def _failed_customers(run: BillingRun) -> set[int]:
    return {
        customer_id for failure in run.failures if failure["stage"] == "bill" for customer_id in failure["customers"]
    }


def month_end_bill_and_issue(*, run: BillingRun, customer_ids: list[int], actor: User | None) -> None:
    """One chunk of customers: bill, then route the new drafts. A chunk that fails rolled back whole and is
    billed again customer by customer, so that the failure is noted on the run for the customer at fault
    only and the others are billed."""
    try:
        outcome = month_end_bill(run=run, customer_ids=customer_ids, actor=actor)
    except Exception as error:
        if len(customer_ids) > 1:
            for customer_id in customer_ids:
                month_end_bill_and_issue(run=run, customer_ids=[customer_id], actor=actor)
        else:
            billing_run_record_failure(run=run, customer_ids=customer_ids, error=error)
        return
    _route(run, outcome.created, actor)
    _route(run, outcome.leftover, actor, recheck=True)
    with transaction.atomic():
        done = BillingRunCustomer.objects.filter(run=run, customer_id__in=outcome.customer_ids, routed=False).update(
            routed=True
        )
        BillingRunCustomer.objects.filter(pk__in=outcome.adopted).update(routed=True)
        BillingRun.objects.filter(pk=run.pk).update(customers_done=F("customers_done") + done)


def month_end_run(
    *,
    actor: User | None,
    period: date,
    customer: Customer | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> BillingRun:
    """Bill every billable customer (or one) for `period` in this process, chunk by chunk."""
    run, ids = billing_run_start(actor=actor, period=period, customer=customer)
    for start in range(0, len(ids), chunk_size):
        month_end_bill_and_issue(run=run, customer_ids=ids[start : start + chunk_size], actor=actor)
        if progress is not None:
            progress(min(start + chunk_size, len(ids)), len(ids))
    return billing_run_finish_if_done(run=run)


class RunNotStalled(Conflict):
    code = "run_not_stalled"


@transaction.atomic
def billing_run_mark_failed(*, actor: User, run: BillingRun, reason: str) -> BillingRun:
    """Close a stalled run (running, no progress for BILLING_RUN_STALLED_AFTER_MINUTES) as failed, noting who
    and why among its failures and in its history. A run still moving is refused: it finishes by itself.

    What the run billed stays; month-end run again bills the customers it did not reach and routes the drafts
    this run made but did not route. A worker that was only slow finds the run finished and leaves it so.
    """
    reason = reason.strip()
    if not reason:
        raise DomainError("Say why the run is marked as failed.", fields={"reason": ["This field is required."]})
    lock_billing_run(run)
    run = billing_run_list().get(pk=run.pk)
    if run.status != BillingRun.Status.RUNNING:
        raise RunNotStalled(f"{run} is not running: it ended as {run.get_status_display().lower()}.")
    now = timezone.now()
    if not billing_run_is_stalled(run, now=now):
        minutes = settings.BILLING_RUN_STALLED_AFTER_MINUTES
        raise RunNotStalled(
            f"{run} moved at {timezone.localtime(run.last_progress_at):%Y-%m-%d %H:%M}: it counts as stalled only "
            f"after {minutes} minutes without progress."
        )
    by = actor.get_username()
    run.failures.append(
        {
            "stage": "stalled",
            "customers": [],
            "error": f"Marked as failed by {by}: {reason}"[:500],
            "by": by,
            "by_id": actor.pk,
            "at": now.isoformat(),
        }
    )
    run.status = BillingRun.Status.FAILED
    run.finished_at = now
    run._history_user = actor
    run._change_reason = reason[:CHANGE_REASON_MAX_LENGTH]
    run.save(update_fields=["failures", "status", "finished_at"])
    return run
