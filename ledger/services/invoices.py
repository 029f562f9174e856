"""Invoices: drafts from rated usage, manual lines, issue, cancel, credit notes (DESIGN.md, "Invoices")."""

import calendar
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from accounts.models import User
from billing_project import formatting, money
from billing_project.billing_time import billing_today, check_booking_day
from billing_project.bulk import history_record_changed, update_rows
from billing_project.errors import Conflict, DomainError
from billing_project.money import check_bound, round_amount
from catalog.models import Customer, EinvoiceDelivery, Service
from ledger.approval import invoice_approval_rule
from ledger.credit_shares import credit_shares, reconcile
from ledger.einvoice.cii import cii_problems, cii_xml, facturx_pdf
from ledger.einvoice.terms import Document, credit_note_terms, invoice_terms, service_unit_codes
from ledger.einvoice.ubl import ubl_problems, ubl_xml
from ledger.locks import lock_customer, lock_invoice, lock_invoices
from ledger.models import BillingConfig, CreditNote, Invoice, InvoiceItem, Transaction
from ledger.pdf import render_credit_note_pdf, render_invoice_pdf
from ledger.services.billing import (
    CREDIT_NOTE_SERIES,
    INVOICE_SERIES,
    billing_config_for,
    billing_configs_for,
    next_document_number,
    next_document_numbers,
    provisional_document_number,
)
from ledger.services.credit import apply_customer_credit, customers_with_credit
from ledger.services.journal import Chart, Entry, Posting, receivable_account, transaction_post, transactions_post
from ledger.services.monthly_totals import monthly_totals_on_credit_note, monthly_totals_on_issue
from ledger.services.revenue_totals import revenue_totals_on_credit_note, revenue_totals_on_issue
from ledger.vat import VatTreatment, vat_treatment
from usage.rating import RatedLine
from usage.report_selectors import COMMITMENT_TOP_UP, UsageReportRow, usage_month_report

ZERO = Decimal("0.00")
logger = logging.getLogger(__name__)


class InvoiceNotEditable(Conflict):
    code = "invoice_not_editable"


class NothingToBill(Conflict):
    """A usage invoice of 0.00 would take a number and send an email for nothing (BillingConfig.send_zero_invoices)."""

    code = "nothing_to_bill"


SEND_ZERO_INVOICES = BillingConfig._meta.get_field("send_zero_invoices").verbose_name


def nothing_to_bill(invoice: Invoice, config: BillingConfig) -> str | None:
    """Why a usage invoice of 0.00 goes no further (not made, submitted or issued), and what to do instead; None
    when it may: it bills something, it is not a usage invoice, or the customer's configuration asks for one."""
    if invoice.kind != Invoice.Kind.USAGE or invoice.total != 0 or config.send_zero_invoices:
        return None
    outcome = "no invoice is made" if invoice.pk is None else f"cancel draft #{invoice.pk}"
    return (
        f"{invoice.customer.client_id} has nothing to bill for {invoice.period:%Y-%m} (no fee, and no usage beyond "
        f"its allowance): {outcome}. To send a 0.00 invoice, tick “{SEND_ZERO_INVOICES}” in its billing "
        "configuration."
    )


def refuse_nothing_to_bill(invoice: Invoice, config: BillingConfig) -> None:
    reason = nothing_to_bill(invoice, config)
    if reason:
        raise NothingToBill(reason, fields={"period": ["Nothing to bill for this month."]})


def period_start(value: date) -> date:
    return value.replace(day=1)


def period_label(period: date) -> str:
    last = calendar.monthrange(period.year, period.month)[1]
    return f"{formatting.day(period)} – {formatting.day(period.replace(day=last))}"


@dataclass(frozen=True, slots=True)
class LineDraft:
    source: str
    description: str
    service_id: int | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


_SOURCE_OF_KIND = {
    RatedLine.FEE: InvoiceItem.Source.FEE,
    RatedLine.INCLUDED: InvoiceItem.Source.INCLUDED,
    RatedLine.USAGE: InvoiceItem.Source.USAGE,
    RatedLine.TIER: InvoiceItem.Source.USAGE,
    RatedLine.VOLUME: InvoiceItem.Source.USAGE,
    RatedLine.TIER_FEE: InvoiceItem.Source.USAGE,
    RatedLine.PACKAGE: InvoiceItem.Source.USAGE,
    RatedLine.COMMITMENT: InvoiceItem.Source.COMMITMENT,
}


def rated_line_description(service_name: str, rated: RatedLine) -> str:
    """How a rated line reads on the invoice ("API call — 10,001 to 100,000 at 0.008")."""
    units, at = formatting.quantity, formatting.price
    if rated.kind == RatedLine.COMMITMENT:
        return COMMITMENT_TOP_UP
    if rated.kind == RatedLine.FEE:
        return f"{service_name} — monthly fee"
    if rated.kind == RatedLine.INCLUDED:
        return f"{service_name} — included units"
    if rated.kind == RatedLine.TIER:
        return f"{service_name} — {units(rated.first_unit)} to {units(rated.last_unit)} at {at(rated.unit_price)}"
    if rated.kind == RatedLine.VOLUME:
        return f"{service_name} — {units(rated.quantity)} at {at(rated.unit_price)} (volume tier {rated.tier})"
    if rated.kind == RatedLine.TIER_FEE:
        return f"{service_name} — tier {rated.tier} flat fee"
    if rated.kind == RatedLine.PACKAGE:
        packages = "1 package" if rated.quantity == 1 else f"{units(rated.quantity)} packages"
        return f"{service_name} — {packages} of {units(rated.package_size)} at {at(rated.unit_price)}"
    return f"{service_name} — usage at {rated.unit_price.normalize():f}"


def usage_lines(rows: Iterable[UsageReportRow]) -> list[LineDraft]:
    """DESIGN.md's lines, per service: the fee, the included units at zero, then the usage by the agreement's
    pricing model (one per snapshot price, per tier reached, the volume tier, or the packages); last, the
    minimum commitment's top-up when there is one."""
    lines = []
    for row in sorted(rows, key=lambda row: (row.is_commitment_top_up, row.service_code)):
        for rated in row.rating.lines:
            description = rated_line_description(row.service_name, rated)
            lines.append(
                LineDraft(
                    source=_SOURCE_OF_KIND[rated.kind],
                    description=description,
                    service_id=row.service_id,
                    quantity=rated.quantity,
                    unit_price=rated.unit_price,
                    amount=rated.amount,
                )
            )
    return lines


def customer_usage_lines(customer_id: int, period: date) -> list[LineDraft]:
    """One customer's usage invoice lines for the billing month of `period`."""
    return usage_lines(usage_month_report(year=period.year, month=period.month, customer_ids=[customer_id]))


def items_for(invoice: Invoice, lines: Iterable[LineDraft], vat: VatTreatment, start: int = 0) -> list[InvoiceItem]:
    """The lines as items taxed under `vat`, the customer's treatment (ledger/vat.py); disbursements are never
    taxed and carry the disbursement's category."""
    items = []
    for position, line in enumerate(lines):
        treatment = vat.for_disbursement() if line.source in InvoiceItem.UNTAXED_SOURCES else vat
        items.append(
            InvoiceItem(
                invoice=invoice,
                position=start + position,
                source=line.source,
                description=line.description,
                service_id=line.service_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                amount=line.amount,
                tax_rate=treatment.rate,
                tax_amount=line_tax(line.amount, treatment.rate),
                vat_category=treatment.category,
                vat_exemption_reason=treatment.exemption_reason,
                vat_exemption_code=treatment.exemption_code,
            )
        )
    return items


def set_vat(item: InvoiceItem, vat: VatTreatment) -> None:
    """Tax a kept line again under the customer's treatment as it is now (a regenerated draft)."""
    treatment = vat.for_disbursement() if item.source in InvoiceItem.UNTAXED_SOURCES else vat
    item.tax_rate = treatment.rate
    item.tax_amount = line_tax(item.amount, treatment.rate)
    item.vat_category = treatment.category
    item.vat_exemption_reason = treatment.exemption_reason
    item.vat_exemption_code = treatment.exemption_code


def customer_vat(customer: Customer, config: BillingConfig | None = None) -> VatTreatment:
    return vat_treatment(config or billing_config_for(customer), customer)


def line_tax(amount: Decimal, tax_rate: Decimal) -> Decimal:
    """Tax is computed and rounded per line (DESIGN.md); an invoice's tax is the sum of its lines'."""
    return round_amount(amount * tax_rate)


class InvoiceBeyondBounds(DomainError):
    code = "out_of_range"


def invoice_bounds_problem(
    lines: Iterable[LineDraft | InvoiceItem], *, subtotal: Decimal, tax: Decimal, total: Decimal, currency: str
) -> str | None:
    """Why lines and totals cannot be an invoice (a figure beyond MAX_AMOUNT or MAX_QUANTITY), or None.

    Lines are derived (a month's units at a price) or typed: either way each figure lands in a column, and
    one beyond the bounds is refused here rather than overflowing it."""
    for line in lines:
        if money.beyond_bound(line.quantity, "quantity"):
            return (
                f"the line “{line.description}” has {line.quantity.normalize():,f} units, beyond the largest "
                f"quantity accepted, {money.max_quantity():,f} (MAX_QUANTITY)"
            )
        for figure, kind, verb, shown in (
            (line.unit_price, "unit_price", "has a unit price of", formatting.price),
            (line.amount, "amount", "comes to", formatting.money),
        ):
            if money.beyond_bound(figure, kind):
                return (
                    f"the line “{line.description}” {verb} {shown(figure, currency)}, beyond the largest amount "
                    f"accepted, {money.bound_of(kind):,f} (MAX_AMOUNT)"
                )
    for name, figure in (("subtotal", subtotal), ("tax", tax), ("total", total)):
        if money.beyond_bound(figure, "amount"):
            return (
                f"its {name} would be {formatting.money(figure, currency)}, beyond the largest amount accepted, "
                f"{money.max_amount():,f} (MAX_AMOUNT)"
            )
    return None


def check_invoice_bounds(invoice: Invoice, items: Iterable[InvoiceItem]) -> None:
    """Refuse an invoice whose lines or totals (set_totals) are beyond the bounds, saying which and why."""
    problem = invoice_bounds_problem(
        items, subtotal=invoice.subtotal, tax=invoice.tax, total=invoice.total, currency=invoice.currency
    )
    if problem:
        raise InvoiceBeyondBounds(
            f"The invoice of {invoice.customer.client_id} for {invoice.period:%Y-%m} cannot be made: {problem}. "
            "Check the usage and prices, or bill the charges on separate invoices."
        )


def set_totals(invoice: Invoice, items: Iterable[InvoiceItem]) -> None:
    """Amounts were rounded at the line; the totals only add them up."""
    items = list(items)
    invoice.subtotal = sum((item.amount for item in items), ZERO)
    invoice.tax = sum((item.tax_amount for item in items), ZERO)
    invoice.total = invoice.subtotal + invoice.tax


def _save(instance, actor: User | None) -> None:
    instance._history_user = actor
    instance.save()


@transaction.atomic
def invoice_create_draft(*, actor: User | None, customer: Customer, period: date) -> Invoice:
    """The usage invoice of a customer and month, as a draft rated from its usage so far. With nothing to bill
    (0.00) none is made, unless the customer's configuration asks for a 0.00 invoice."""
    check_booking_day(period, field="period", label="month")
    period = period_start(period)
    lock_customer(customer)
    existing = Invoice.objects.filter(customer=customer, period=period, kind=Invoice.Kind.USAGE).first()
    if existing is not None:
        raise Conflict(
            f"{customer.client_id} already has a usage invoice for {period:%Y-%m} ({existing}).",
            code="invoice_exists",
            fields={"period": [f"Invoice {existing.pk} already bills this month."]},
        )
    config = billing_config_for(customer)
    invoice = Invoice(
        customer=customer, kind=Invoice.Kind.USAGE, period=period, currency=customer.currency, created_by=actor
    )
    items = items_for(invoice, customer_usage_lines(customer.pk, period), customer_vat(customer, config))
    set_totals(invoice, items)
    check_invoice_bounds(invoice, items)
    refuse_nothing_to_bill(invoice, config)
    try:
        with transaction.atomic():
            _save(invoice, actor)
    except IntegrityError as error:
        raise Conflict(
            f"{customer.client_id} already has a usage invoice for {period:%Y-%m}.",
            code="invoice_exists",
            fields={"period": ["Another invoice already bills this month."]},
        ) from error
    bulk_create_with_history(items, InvoiceItem, default_user=actor)
    return invoice


@transaction.atomic
def invoice_create_manual(
    *, actor: User | None, customer: Customer, period: date | None = None, lines: Iterable[dict] = ()
) -> Invoice:
    """A manual invoice (one-off charges), as a draft; lines are dicts of description, quantity, unit_price."""
    if period is not None:
        check_booking_day(period, field="period", label="month")
    invoice = Invoice(
        customer=customer,
        kind=Invoice.Kind.MANUAL,
        period=period_start(period or billing_today()),
        currency=customer.currency,
        created_by=actor,
    )
    _save(invoice, actor)
    for line in lines:
        invoice_add_line(actor=actor, invoice=invoice, **line)
    invoice.refresh_from_db()
    return invoice


@transaction.atomic
def invoice_add_line(
    *,
    actor: User | None,
    invoice: Invoice,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    service: Service | None = None,
) -> InvoiceItem:
    """A one-off line on a draft; its amount is rounded half up once, and tax follows the customer's rate."""
    invoice = lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceNotEditable(f"Invoice {invoice} is {invoice.get_status_display().lower()}; only drafts change.")
    if not description.strip():
        raise DomainError("A line needs a description.", fields={"description": ["This field is required."]})
    if quantity <= 0:
        raise DomainError("The quantity must be positive.", fields={"quantity": ["Must be greater than zero."]})
    check_bound(quantity, kind="quantity", field="quantity", label="quantity")
    check_bound(unit_price, kind="unit_price", field="unit_price", label="unit price")
    amount = money.line_amount(quantity, unit_price)
    if money.beyond_bound(amount, "amount"):
        raise InvoiceBeyondBounds(
            f"The line comes to {formatting.money(amount, invoice.currency)}, beyond the largest amount accepted, "
            f"{money.max_amount():,f} (MAX_AMOUNT).",
            fields={"unit_price": [f"Quantity × unit price: {money.bound_message('amount')}"]},
        )
    config = billing_config_for(invoice.customer)
    position = invoice.items.count()
    (item,) = items_for(
        invoice,
        [
            LineDraft(
                source=InvoiceItem.Source.MANUAL,
                description=description.strip(),
                service_id=service.pk if service else None,
                quantity=quantity,
                unit_price=unit_price,
                amount=amount,
            )
        ],
        customer_vat(invoice.customer, config),
        start=position,
    )
    items = [*invoice.items.all(), item]
    set_totals(invoice, items)
    check_invoice_bounds(invoice, items)
    _save(item, actor)
    _save(invoice, actor)
    return item


@transaction.atomic
def invoice_regenerate(*, actor: User | None, invoice: Invoice) -> Invoice:
    """Rate a draft usage invoice again from the usage and prices as they are now; other lines (manual, an
    order's) stay, taxed at the customer's rate as it is now, but for disbursements, which are never taxed."""
    invoice = lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceNotEditable(f"Invoice {invoice} is {invoice.get_status_display().lower()}; only drafts change.")
    config = billing_config_for(invoice.customer)
    manual = [item for item in invoice.items.all() if item.source not in InvoiceItem.USAGE_SOURCES]
    invoice.items.filter(source__in=InvoiceItem.USAGE_SOURCES).delete()
    lines = customer_usage_lines(invoice.customer_id, invoice.period) if invoice.kind == Invoice.Kind.USAGE else []
    vat = customer_vat(invoice.customer, config)
    items = items_for(invoice, lines, vat)
    for position, item in enumerate(manual, start=len(items)):
        item.position = position
        set_vat(item, vat)
        _save(item, actor)
    set_totals(invoice, [*items, *manual])
    check_invoice_bounds(invoice, [*items, *manual])
    bulk_create_with_history(items, InvoiceItem, default_user=actor)
    _save(invoice, actor)
    return invoice


@transaction.atomic
def invoice_cancel(*, actor: User | None, invoice: Invoice) -> Invoice:
    invoice = lock_invoice(invoice)
    if not invoice.is_editable:
        raise InvoiceNotEditable(
            f"Invoice {invoice} is {invoice.get_status_display().lower()}; only a draft or rejected invoice is "
            "cancelled. An issued invoice is voided by a full credit note."
        )
    invoice.status = Invoice.Status.CANCELLED
    _save(invoice, actor)
    return invoice


class EinvoiceInvalid(Conflict):
    code = "einvoice_invalid"


@dataclass(frozen=True, slots=True)
class Einvoices:
    ubl: bytes  # UBL 2.1, the PDF embedded
    facturx: bytes  # the PDF with the CII XML embedded


ISSUABLE = {Invoice.Status.DRAFT, Invoice.Status.APPROVED}


def _revenue_entries(
    invoice: Invoice, items: Iterable[InvoiceItem], *, reverse: bool, chart: Chart | None = None
) -> list[Entry]:
    """Revenue per service category and the tax, on the side a charge (or, reversed, a credit) puts them."""
    chart = chart or Chart()
    by_category: dict[str, Decimal] = defaultdict(Decimal)
    tax = ZERO
    for item in items:
        by_category[chart.category_of(item.service_id)] += item.amount
        tax += item.tax_amount
    entries = []
    for category, amount in sorted(by_category.items()):
        if amount == 0:
            continue
        credit_revenue = (amount > 0) != reverse
        account = chart.revenue(category, invoice.currency)
        entries.append(Entry(account, credit=abs(amount)) if credit_revenue else Entry(account, debit=abs(amount)))
    if tax:
        account = chart.tax(invoice.currency)
        entries.append(Entry(account, debit=tax) if reverse else Entry(account, credit=tax))
    return entries


def _refuse_unissuable(invoice: Invoice, config: BillingConfig) -> None:
    """Refuse an invoice that cannot be issued as it stands: a negative total, approval still needed, or nothing
    to bill."""
    if invoice.total < 0:
        raise DomainError("An invoice's total cannot be negative; credit the customer with a credit note instead.")
    if invoice.status == Invoice.Status.DRAFT and (rule := invoice_approval_rule(invoice, config)).steps:
        raise InvoiceNotEditable(
            f"Invoice {invoice} needs approval ({rule.label}) before it is issued; submit it for approval.",
            code="approval_required",
        )
    refuse_nothing_to_bill(invoice, config)


def _mark_issued(invoice: Invoice, *, number: str, issued_at, config: BillingConfig) -> None:
    invoice.number = number
    invoice.issued_at = issued_at
    invoice.due_date = billing_today() + timedelta(days=config.payment_terms_days)
    invoice.status = Invoice.Status.ISSUED
    if invoice.total <= 0:  # nothing owed: paid as it is issued
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = issued_at


def _charge(invoice: Invoice, items: list[InvoiceItem], chart: Chart) -> Posting | None:
    """The issued invoice's charge to post: what the customer owes against revenue and tax; None for 0.00."""
    if invoice.total <= 0:
        return None
    return Posting(
        kind=Transaction.Kind.CHARGE,
        entries=[
            Entry(chart.receivable(invoice.customer), debit=invoice.total),
            *_revenue_entries(invoice, items, reverse=False, chart=chart),
        ],
        description=f"Invoice {invoice.number}, {period_label(invoice.period)}",
        reference=invoice.number,
        customer=invoice.customer,
        source=invoice,
        idempotency_key=f"invoice-issue:{invoice.pk}",
    )


@transaction.atomic
def invoice_issue(*, actor: User | None, invoice: Invoice, send: bool = True) -> Invoice:
    """Give the next number, post the charge, set any customer credit against it, render the PDF (and the
    e-invoices, for a customer who receives them) once and email it after commit. Issuing an issued invoice again
    changes nothing."""
    invoice = lock_invoice(invoice)
    if invoice.status not in ISSUABLE:
        if invoice.number:
            return invoice
        raise InvoiceNotEditable(
            f"Invoice {invoice} is {invoice.get_status_display().lower()}; "
            "only a draft or an approved invoice is issued."
        )
    items = list(invoice.items.all())
    config = billing_config_for(invoice.customer)
    _refuse_unissuable(invoice, config)
    draft_name = str(invoice)  # a refusal names the draft: its number is not taken
    _mark_issued(invoice, number=next_document_number(INVOICE_SERIES), issued_at=timezone.now(), config=config)
    chart = Chart()
    if charge := _charge(invoice, items, chart):
        transactions_post([charge], actor=actor)
    _attach_documents(invoice, *_invoice_documents(invoice, items, config, what=draft_name))  # checked first
    _save(invoice, actor)
    monthly_totals_on_issue([invoice])
    revenue_totals_on_issue([(invoice, items)])
    apply_customer_credit(customer=invoice.customer, actor=actor)
    if send:
        # robust: a mail server failure must not turn an issued invoice into an error page; it can be sent again.
        transaction.on_commit(lambda: send_invoice_email(invoice_id=invoice.pk), robust=True)
    invoice.refresh_from_db()
    return invoice


_ISSUED_FIELDS = ["number", "issued_at", "due_date", "status", "paid_at", "updated_at"]


@transaction.atomic
def invoices_issue(*, actor: User | None, invoices: Iterable[Invoice], send: bool = True) -> list[Invoice]:
    """Issue many invoices at once (month-end's auto-issue), as `invoice_issue` issues one, with a fixed number
    of statements: the numbers taken together, the charges posted together, each running total added to once.

    The PDFs and e-invoices are made after commit by a task, a batch at a time, and each invoice is emailed once
    its files are stored (`invoice_documents_store`). The e-invoices are made and checked here first, without the
    PDF they will embed and with a provisional number: one that breaks a rule refuses the whole batch, before
    anything is written, naming the invoice and the rule (month-end then issues that batch one by one, so that only
    the invoice at fault stays a draft). Invoices no longer a draft or approved (issued meanwhile) are left as they
    are."""
    locked = [invoice for invoice in lock_invoices(invoices) if invoice.status in ISSUABLE]
    if not locked:
        return []
    configs = billing_configs_for([invoice.customer for invoice in locked])
    items = defaultdict(list)
    for item in InvoiceItem.objects.filter(invoice__in=locked).order_by("invoice_id", "position"):
        items[item.invoice_id].append(item)
    names = {}
    for invoice in locked:
        _refuse_unissuable(invoice, configs[invoice.customer_id])
        names[invoice.pk] = str(invoice)
    issued_at = timezone.now()
    provisional = provisional_document_number(INVOICE_SERIES)
    for invoice in locked:
        _mark_issued(invoice, number=provisional, issued_at=issued_at, config=configs[invoice.customer_id])
        invoice.updated_at = issued_at
    # Checked before any row shared between customers is locked (the numbers, the accounts, the running totals):
    # they take most of a batch's time, and other batches wait for those rows. The number changes no rule.
    unit_codes = service_unit_codes()
    for invoice in locked:
        if invoice.customer.einvoice_delivery != EinvoiceDelivery.PDF:
            document = invoice_terms(invoice, items=items[invoice.pk], unit_codes=unit_codes)
            checked_einvoice_xml(document, what=names[invoice.pk])
    for invoice, number in zip(locked, next_document_numbers(INVOICE_SERIES, len(locked)), strict=True):
        invoice.number = number
    update_rows(Invoice, _ISSUED_FIELDS, [(i.pk, *(getattr(i, field) for field in _ISSUED_FIELDS)) for i in locked])
    ids = [invoice.pk for invoice in locked]
    history_record_changed(
        Invoice, where=f"id IN ({', '.join(['%s'] * len(ids))})", params=ids, user=actor, when=issued_at
    )
    chart = Chart(customers=[invoice.customer for invoice in locked])
    transactions_post(
        [charge for invoice in locked if (charge := _charge(invoice, items[invoice.pk], chart))], actor=actor
    )
    monthly_totals_on_issue(locked)
    revenue_totals_on_issue([(invoice, items[invoice.pk]) for invoice in locked])
    customers = {invoice.customer_id: invoice.customer for invoice in locked}
    for customer_id in sorted(customers_with_credit(customers)):
        apply_customer_credit(customer=customers[customer_id], actor=actor)
    from ledger.tasks import invoice_documents_task  # the task module calls this one

    actor_id = actor.pk if actor is not None else None
    transaction.on_commit(lambda: invoice_documents_task.delay(ids, send, actor_id), robust=True)
    return locked


def _invoice_documents(
    invoice: Invoice, items: list[InvoiceItem], config: BillingConfig, *, what: str
) -> tuple[bytes, Einvoices | None]:
    """The issued invoice's PDF and, for a customer who receives them, its e-invoices, checked (`_einvoices`)."""
    pdf = render_invoice_pdf(invoice, items, config)
    terms = lambda: invoice_terms(invoice, items=items, pdf=pdf)  # noqa: E731
    return pdf, _einvoices(invoice.customer, terms, pdf, what=what)


def _attach_documents(document: Invoice | CreditNote, pdf: bytes, einvoices: Einvoices | None) -> None:
    """Put the files on an issued invoice or credit note, stored under its number; the caller saves it."""
    document.pdf.save(f"{document.number}.pdf", ContentFile(pdf), save=False)
    if einvoices is not None:
        document.einvoice.save(f"{document.number}.xml", ContentFile(einvoices.ubl), save=False)
        document.facturx.save(f"{document.number}-facturx.pdf", ContentFile(einvoices.facturx), save=False)


def invoice_documents_store(*, invoice_ids: Iterable[int], actor: User | None, send: bool = True) -> int:
    """Make and store the files of issued invoices that have none yet (`invoices_issue` leaves them to this), each
    in its own transaction under its invoice's lock, then email it when `send`. Returns how many were stored; an
    invoice with its PDF already is left alone, so running this twice stores and sends nothing twice.

    The e-invoices were checked at issue. Should one break a rule now (the customer's data changed meanwhile), the
    PDF is stored alone and the rule is logged: a broken e-invoice is never stored or sent."""
    stored = 0
    customers = dict(Invoice.objects.filter(pk__in=list(invoice_ids)).values_list("pk", "customer_id"))
    for invoice_id, customer_id in sorted(customers.items()):
        try:
            stored += _store_documents(invoice_id, customer_id, actor=actor, send=send)
        except Exception:  # one invoice's failure keeps no other from its files; the schedule tries it again
            logger.exception("Invoice %s: its files could not be made", invoice_id)
    return stored


@transaction.atomic
def _store_documents(invoice_id: int, customer_id: int, *, actor: User | None, send: bool) -> bool:
    invoice = lock_invoice(Invoice(pk=invoice_id, customer_id=customer_id))
    if not invoice.number or invoice.pdf:
        return False
    items = list(invoice.items.all())
    config = billing_config_for(invoice.customer)
    try:
        documents = _invoice_documents(invoice, items, config, what=invoice.number)
    except EinvoiceInvalid as error:
        logger.error("Invoice %s: its e-invoice was not stored: %s", invoice.number, error)
        documents = (render_invoice_pdf(invoice, items, config), None)
    _attach_documents(invoice, *documents)
    invoice._history_user = actor
    invoice.save(update_fields=["pdf", "einvoice", "facturx", "updated_at"])
    if send:
        transaction.on_commit(lambda: send_invoice_email(invoice_id=invoice.pk), robust=True)
    return True


DOCUMENTS_LATE_AFTER = timedelta(minutes=10)
DOCUMENTS_LOOK_BACK = timedelta(days=3)


def invoice_documents_store_missing(*, send: bool = True) -> int:
    """Store the files of the invoices month-end issued in the last three days that still have none ten minutes
    after their issue (their task was lost: the broker was down at the moment of issue), and email them."""
    now = timezone.now()
    missing = Invoice.objects.filter(
        billing_run__isnull=False,
        number__isnull=False,
        pdf="",
        issued_at__gte=now - DOCUMENTS_LOOK_BACK,
        issued_at__lt=now - DOCUMENTS_LATE_AFTER,
    )
    return invoice_documents_store(
        invoice_ids=list(missing.order_by("pk").values_list("pk", flat=True)), actor=None, send=send
    )


def _einvoices(customer: Customer, terms: Callable[[], Document], pdf: bytes, *, what: str) -> Einvoices | None:
    """The e-invoices of a document being issued, in both syntaxes, for a customer who receives e-invoices; None
    for one who receives PDFs only. A document that breaks a rule (its XML schema or an EN 16931 check) refuses
    the issue, naming the rule: nothing is stored or sent."""
    if customer.einvoice_delivery == EinvoiceDelivery.PDF:
        return None
    ubl, cii = checked_einvoice_xml(terms(), what=what)
    try:
        return Einvoices(ubl=ubl, facturx=facturx_pdf(pdf, cii))
    except Exception as error:  # factur-x raises a bare Exception when the XML breaks its schema
        raise EinvoiceInvalid(f"{what} cannot be issued: its e-invoice breaks EN 16931: Factur-X: {error}") from error


def checked_einvoice_xml(document: Document, *, what: str) -> tuple[bytes, bytes]:
    """The document as UBL and as CII, each checked against its XML schema and the EN 16931 checks; a rule broken
    refuses the issue of `what`, naming the rule."""
    ubl, cii = ubl_xml(document), cii_xml(document)
    problems = [f"UBL {problem}" for problem in ubl_problems(ubl)] + [f"CII {problem}" for problem in cii_problems(cii)]
    if problems:
        raise EinvoiceInvalid(f"{what} cannot be issued: its e-invoice breaks EN 16931: {'; '.join(problems)}")
    return ubl, cii


def invoice_recipient(invoice: Invoice, config: BillingConfig | None = None) -> str:
    config = config or billing_config_for(invoice.customer)
    return config.invoice_email or invoice.customer.billing_email


def send_invoice_email(*, invoice_id: int) -> bool:
    """Email an issued invoice with its PDF attached; False when the customer has no address to send to."""
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    recipient = invoice_recipient(invoice)
    if not recipient or not invoice.number:
        return False
    message = EmailMessage(
        subject=f"Invoice {invoice.number} from {settings.SELLER['name']}",
        body=(
            f"Dear {invoice.customer.legal_name or invoice.customer.name},\n\n"
            f"please find attached invoice {invoice.number} for {period_label(invoice.period)}: "
            f"{formatting.money(invoice.total, invoice.currency)}, due on {formatting.day(invoice.due_date)}.\n\n"
            f"{settings.SELLER['name']}"
        ),
        to=[recipient],
    )
    delivery = invoice.customer.einvoice_delivery
    # A customer who receives Factur-X gets the one PDF with its XML inside, instead of the plain one.
    pdf_file = invoice.facturx if invoice.facturx and delivery == EinvoiceDelivery.FACTURX else invoice.pdf
    with pdf_file.open("rb") as pdf:
        message.attach(f"{invoice.number}.pdf", pdf.read(), "application/pdf")
    if invoice.einvoice and delivery == EinvoiceDelivery.UBL:
        with invoice.einvoice.open("rb") as einvoice:
            message.attach(f"{invoice.number}.xml", einvoice.read(), "application/xml")
    message.send()
    return True


def invoice_send_again(*, actor: User | None, invoice: Invoice) -> bool:
    if not invoice.number:
        raise InvoiceNotEditable(f"Invoice {invoice} is not issued yet; there is nothing to send.")
    if not invoice.pdf:
        raise Conflict(
            f"Invoice {invoice}'s PDF is being made; it is emailed as soon as it is stored.", code="documents_pending"
        )
    return send_invoice_email(invoice_id=invoice.pk)


@transaction.atomic
def credit_note_issue(
    *, actor: User | None, invoice: Invoice, reason: str, amount: Decimal | None = None
) -> CreditNote:
    """Credit an issued invoice in full (it becomes void) or in part (`amount`, tax included).

    The credit first reduces what is still owed on the invoice; what exceeds it (the invoice was paid)
    stays with the customer as credit for the next invoice or a refund.
    """
    if not reason.strip():
        raise DomainError("Give the reason for the credit note.", fields={"reason": ["This field is required."]})
    if amount is not None:
        check_bound(amount, kind="amount", field="amount", label="amount")
    invoice = lock_invoice(invoice)
    if invoice.status not in {Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID}:
        raise InvoiceNotEditable(
            f"Invoice {invoice} is {invoice.get_status_display().lower()}; only issued invoices are credited."
        )
    items = list(invoice.items.all())
    credited_before = sum((note.total for note in invoice.credit_notes.all()), ZERO)
    creditable = invoice.total - credited_before
    full = amount is None or amount == creditable
    if full:
        amount = creditable
    if amount <= 0 or amount > creditable:
        raise DomainError(
            f"A credit note on {invoice.number} can be at most {formatting.money(creditable, invoice.currency)}.",
            fields={"amount": [f"Between 0.01 and {formatting.money(creditable, invoice.currency)}."]},
        )
    if amount != round_amount(amount):
        raise DomainError("Amounts have two decimal places.", fields={"amount": ["At most two decimal places."]})
    earlier = list(invoice.credit_notes.order_by("issued_at", "id"))
    lines = credit_shares(items, amount=amount, full=full, earlier_totals=[note.total for note in earlier])
    if full:
        # What the earlier notes left, exactly as they were stored.
        subtotal = invoice.subtotal - sum((note.subtotal for note in earlier), ZERO)
        tax = invoice.tax - sum((note.tax for note in earlier), ZERO)
        lines = reconcile(lines, subtotal=subtotal, tax=tax)
    else:
        subtotal = sum((line.amount for line in lines), ZERO)
        tax = amount - subtotal
    applied = min(amount, invoice.outstanding)
    note = CreditNote(
        invoice=invoice,
        customer=invoice.customer,
        number=next_document_number(CREDIT_NOTE_SERIES),
        currency=invoice.currency,
        subtotal=subtotal,
        tax=tax,
        total=amount,
        unallocated=amount - applied,
        reason=reason.strip(),
        full=full,
        issued_at=timezone.now(),
        created_by=actor,
    )
    pdf = render_credit_note_pdf(note, invoice)
    einvoices = _einvoices(  # checked before anything is stored
        invoice.customer, lambda: credit_note_terms(note, pdf=pdf), pdf, what=f"Credit note on {invoice.number}"
    )
    _attach_documents(note, pdf, einvoices)
    _save(note, actor)
    transaction_post(
        kind=Transaction.Kind.CREDIT_NOTE,
        entries=[
            Entry(receivable_account(invoice.customer), credit=amount),
            *_revenue_entries(invoice, lines, reverse=True),
        ],
        description=f"Credit note {note.number} on {invoice.number}: {note.reason}",
        reference=note.number,
        customer=invoice.customer,
        source=note,
        actor=actor,
        idempotency_key=f"credit-note:{note.pk}",
    )
    monthly_totals_on_credit_note(note, invoice)
    revenue_totals_on_credit_note(invoice, lines)
    invoice.amount_credited += applied
    if full:
        invoice.status = Invoice.Status.VOID
    elif invoice.outstanding == 0 and invoice.status != Invoice.Status.PAID:
        invoice.status = Invoice.Status.PAID
        invoice.paid_at = timezone.now()
    _save(invoice, actor)
    apply_customer_credit(customer=invoice.customer, actor=actor)
    return note
