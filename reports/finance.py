"""The finance reports (DESIGN.md, "Reports and KPIs"): aged receivables, invoice register, payments register,
revenue by month and service, tax report. Each is a `ReportTable`: its columns, its rows (read lazily when they
grow with the data, so a page reads one page and an export streams) and its totals, one row per currency: money
is never converted.

Every report counts only the customers the user may see (ledger.selectors, catalog.selectors.customer_list_for):
a CSM their own customers, Finance and Sales all of them. Days are in BILLING_TIME_ZONE, both ends inclusive.

Sums: the database groups and sums where the rows are many (the registers' totals, revenue and tax by line);
SQLite hands sums back as floating point, and round_amount restores the cents (amounts have two places, so this
is exact as long as a sum stays under about 10^13). Figures that need a rule per row (what is still open on an
invoice, a credit note's shares of its invoice's lines) are worked out in Python from the rows.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import (
    CharField,
    Count,
    DateField,
    DecimalField,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)

from accounts.models import User
from billing_project.billing_time import billing_today, billing_zone, day_start
from billing_project.formatting import day
from billing_project.money import round_amount
from catalog.models import Customer, Service
from catalog.selectors import customer_list_for, sees_every_customer
from ledger.models import Invoice, InvoiceItem, Payment, Refund, ServiceRevenue
from ledger.selectors import credit_note_list_for, credit_note_shares, invoice_list_for, payment_list_for
from ledger.services.revenue_totals import line_key, revenue_by_line

ZERO = Decimal("0.00")

# Column kinds: how a value is shown, exported and typed in the API.
TEXT, MONEY, COUNT, DAY, MONTH, RATE = "text", "money", "count", "day", "month", "rate"

PERMISSIONS = {
    "aged-receivables": "reports.view_aged_receivables",
    "invoice-register": "reports.view_invoice_register",
    "payments-register": "reports.view_payments_register",
    "revenue": "reports.view_revenue_by_service",
    "tax": "reports.view_tax_report",
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = TEXT
    nullable: bool = False  # in the API: a row may have no value here

    @property
    def is_number(self) -> bool:
        return self.kind in (MONEY, COUNT, RATE)


@dataclass
class ReportTable:
    """A report ready to show or export. `rows` is a sequence of dicts keyed by column key (a LazyRows for the
    registers); each dict of `totals` is one currency's totals, its first text column saying "Total <currency>"."""

    name: str
    title: str
    filters: list[tuple[str, str]]
    columns: list[Column]
    rows: Sequence[dict]
    totals: list[dict] = field(default_factory=list)
    empty_message: str = "Nothing matches these filters."

    @property
    def is_wide(self) -> bool:
        return len(self.columns) > 7


class LazyRows:
    """Rows of a queryset turned into dicts when read: a slice is one query (a page), iterating streams the
    rows in chunks (an export), the count is one COUNT."""

    def __init__(self, queryset: QuerySet, convert: Callable[[dict], dict]):
        self.queryset = queryset
        self.convert = convert
        self._count: int | None = None

    def count(self) -> int:
        if self._count is None:
            self._count = self.queryset.count()
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[dict]:
        if not isinstance(key, slice):
            return self[key : key + 1][0]
        return [self.convert(row) for row in self.queryset[key]]

    def __iter__(self) -> Iterator[dict]:
        return (self.convert(row) for row in self.queryset.iterator(chunk_size=2000))


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def after(self) -> datetime:
        return day_start(self.start)

    @property
    def before(self) -> datetime:
        """The first moment after the period."""
        return day_start(self.end + timedelta(days=1))

    def label(self) -> str:
        return f"{day(self.start)} to {day(self.end)}"


def _amount(value) -> Decimal:
    return ZERO if value is None else round_amount(Decimal(value))


def _local_day(moment: datetime) -> date:
    return moment.astimezone(billing_zone()).date()


def _count_label(count: int, one: str, many: str = "") -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _filter_labels(
    period: str | None = None, *, customer: Customer | None, currency: str | None, **more: str | None
) -> list[tuple[str, str]]:
    labels = [("Period", period)] if period else []
    labels += [(label.replace("_", " ").capitalize(), value) for label, value in more.items() if value]
    labels.append(("Customer", customer.name if customer else "Every customer"))
    labels.append(("Currency", currency or "Every currency"))
    return labels


def _narrow(queryset: QuerySet, *, customer: Customer | None, currency: str | None, prefix: str = "") -> QuerySet:
    if customer is not None:
        queryset = queryset.filter(**{f"{prefix}customer": customer})
    if currency:
        queryset = queryset.filter(**{f"{prefix}currency": currency})
    return queryset


def _totals(rows: Sequence[dict], *, label_key: str, sums: Sequence[str], counts: Sequence[str] = ()) -> list[dict]:
    """One totals row per currency, currencies in alphabetical order, summed here (exact)."""
    totals: dict[str, dict] = {}
    for row in rows:
        total = totals.setdefault(
            row["currency"],
            {label_key: f"Total {row['currency']}", "currency": row["currency"]}
            | dict.fromkeys(sums, ZERO)
            | dict.fromkeys(counts, 0),
        )
        for key in (*sums, *counts):
            total[key] += row[key]
    return [totals[currency] for currency in sorted(totals)]


# --- Aged receivables -------------------------------------------------------------------------------------------

BUCKETS = [("current", "Current"), ("days_1_30", "1–30 days"), ("days_31_60", "31–60 days"),
           ("days_61_90", "61–90 days"), ("days_over_90", "Over 90 days")]  # fmt: skip
AGING_COLUMNS = [
    Column("customer", "Customer"),
    Column("currency", "Currency"),
    Column("invoices", "Open invoices", COUNT),
    *(Column(key, label, MONEY) for key, label in BUCKETS),
    Column("total", "Total open", MONEY),
]


def aging_bucket(days_past_due: int) -> str:
    """Current: not yet due (due today or later); then 1–30, 31–60, 61–90 and over 90 days past due."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days_1_30"
    if days_past_due <= 60:
        return "days_31_60"
    if days_past_due <= 90:
        return "days_61_90"
    return "days_over_90"


def _open_invoices(user: User, as_of: date) -> QuerySet:
    """Issued invoices with the status and the amounts they had at the end of `as_of`: today's row for today
    (or later), the last version in their history before the day ended for a past day."""
    invoices = invoice_list_for(user).filter(number__isnull=False, issued_at__lt=day_start(as_of + timedelta(days=1)))
    if as_of >= billing_today():
        return invoices.annotate(
            at_status=F("status"), at_total=F("total"), at_paid=F("amount_paid"), at_credited=F("amount_credited")
        ).filter(status__in=Invoice.OPEN)
    versions = Invoice.history.model.objects.filter(
        id=OuterRef("pk"), history_date__lt=day_start(as_of + timedelta(days=1))
    ).order_by("-history_date", "-history_id")
    return invoices.annotate(
        at_status=Subquery(versions.values("status")[:1]),
        at_total=Subquery(versions.values("total")[:1]),
        at_paid=Subquery(versions.values("amount_paid")[:1]),
        at_credited=Subquery(versions.values("amount_credited")[:1]),
    ).filter(at_status__in=sorted(Invoice.OPEN))


def aged_receivables(
    user: User, *, as_of: date, customer: Customer | None = None, currency: str | None = None
) -> ReportTable:
    """Per customer and currency, what is still open on its invoices at the end of `as_of` (total − credited −
    paid), by days past the due date. Customers by name."""
    invoices = _narrow(_open_invoices(user, as_of), customer=customer, currency=currency)
    rows: dict[tuple[int, str], dict] = {}
    for pk, name, row_currency, due, total, paid, credited in invoices.order_by().values_list(
        "customer_id", "customer__name", "currency", "due_date", "at_total", "at_paid", "at_credited"
    ):
        still_open = _amount(total) - _amount(paid) - _amount(credited)
        if still_open <= 0:
            continue
        row = rows.setdefault(
            (pk, row_currency),
            {"customer": name, "currency": row_currency, "invoices": 0, "total": ZERO}
            | dict.fromkeys(dict(BUCKETS), ZERO),
        )
        bucket = aging_bucket((as_of - due).days if due else 0)
        row[bucket] += still_open
        row["total"] += still_open
        row["invoices"] += 1
    ordered = sorted(rows.values(), key=lambda r: (r["currency"], r["customer"].casefold()))
    return ReportTable(
        name="aged-receivables",
        title="Aged receivables",
        filters=[("As of", day(as_of)), *_filter_labels(customer=customer, currency=currency)],
        columns=AGING_COLUMNS,
        rows=ordered,
        totals=_totals(ordered, label_key="customer", sums=[*dict(BUCKETS), "total"], counts=["invoices"]),
        empty_message="No invoice was open at the end of this day for these filters.",
    )


# --- Invoice register -------------------------------------------------------------------------------------------

CREDIT_NOTE = "credit_note"
REGISTER_STATUSES = [
    ("", "Invoices and credit notes"),
    *((status, f"Invoices: {label.lower()}") for status, label in Invoice.Status.choices if status in {
        Invoice.Status.ISSUED, Invoice.Status.OVERDUE, Invoice.Status.PAID, Invoice.Status.VOID}),
    (CREDIT_NOTE, "Credit notes only"),
]  # fmt: skip
STATUS_LABELS = dict(Invoice.Status.choices) | {CREDIT_NOTE: "Issued"}
INVOICE_REGISTER_COLUMNS = [
    Column("issued", "Issued", DAY),
    Column("number", "Number"),
    Column("document", "Document"),
    Column("customer", "Customer"),
    Column("month", "Billing month", MONTH),
    Column("due_date", "Due", DAY, nullable=True),
    Column("status", "Status"),
    Column("currency", "Currency"),
    Column("net", "Net", MONEY),
    Column("tax", "Tax", MONEY),
    Column("total", "Total", MONEY),
]
_REGISTER_FIELDS = ("r_issued", "r_number", "r_document", "r_customer", "r_month", "r_due", "r_status", "r_currency",
                    "r_net", "r_tax", "r_total", "r_id")  # fmt: skip


def _register_row(row: dict) -> dict:
    sign = -1 if row["r_document"] == CREDIT_NOTE else 1
    issued = row["r_issued"]
    return {
        "issued": _local_day(issued) if isinstance(issued, datetime) else issued,
        "number": row["r_number"],
        "document": "Credit note" if sign < 0 else "Invoice",
        "customer": row["r_customer"],
        "month": row["r_month"],
        "due_date": row["r_due"],
        "status": STATUS_LABELS.get(row["r_status"], row["r_status"]),
        "currency": row["r_currency"],
        "net": sign * _amount(row["r_net"]),
        "tax": sign * _amount(row["r_tax"]),
        "total": sign * _amount(row["r_total"]),
    }


def invoice_register(
    user: User,
    *,
    start: date,
    end: date,
    customer: Customer | None = None,
    currency: str | None = None,
    status: str | None = None,
) -> ReportTable:
    """Invoices and credit notes issued in the period, by issue time; a credit note's amounts count negative.
    Totals per currency: what was invoiced (DESIGN.md: invoices issued minus credit notes issued)."""
    period = Period(start, end)
    invoices = _narrow(
        invoice_list_for(user).filter(number__isnull=False, issued_at__gte=period.after, issued_at__lt=period.before),
        customer=customer,
        currency=currency,
    )
    notes = _narrow(
        credit_note_list_for(user).filter(issued_at__gte=period.after, issued_at__lt=period.before),
        customer=customer,
        currency=currency,
    )
    if status == CREDIT_NOTE:
        invoices = invoices.none()
    elif status:
        invoices, notes = invoices.filter(status=status), notes.none()
    invoice_rows = invoices.order_by().annotate(
        r_issued=F("issued_at"), r_number=F("number"), r_document=Value("invoice", CharField()),
        r_customer=F("customer__name"), r_month=F("period"), r_due=F("due_date"), r_status=F("status"),
        r_currency=F("currency"), r_net=F("subtotal"), r_tax=F("tax"), r_total=F("total"), r_id=F("pk"),
    ).values(*_REGISTER_FIELDS)  # fmt: skip
    note_rows = notes.order_by().annotate(
        r_issued=F("issued_at"), r_number=F("number"), r_document=Value(CREDIT_NOTE, CharField()),
        r_customer=F("customer__name"), r_month=F("invoice__period"), r_due=Value(None, DateField()),
        r_status=Value(CREDIT_NOTE, CharField()), r_currency=F("currency"), r_net=F("subtotal"), r_tax=F("tax"),
        r_total=F("total"), r_id=F("pk"),
    ).values(*_REGISTER_FIELDS)  # fmt: skip
    both = invoice_rows.union(note_rows, all=True).order_by("r_issued", "r_number")

    totals: dict[str, dict] = {}
    for queryset, sign in ((invoices, 1), (notes, -1)):
        for figures in (
            queryset.order_by()
            .values("currency")
            .annotate(n=Count("pk"), net=Sum("subtotal"), tax=Sum("tax"), total=Sum("total"))
        ):
            row = totals.setdefault(
                figures["currency"],
                {"number": f"Total {figures['currency']}", "currency": figures["currency"], "documents": 0}
                | dict.fromkeys(("net", "tax", "total"), ZERO),
            )
            row["documents"] += figures["n"]
            for key in ("net", "tax", "total"):
                row[key] += sign * _amount(figures[key])
    for row in totals.values():
        row["document"] = _count_label(row["documents"], "document")
    return ReportTable(
        name="invoice-register",
        title="Invoice register",
        filters=_filter_labels(
            period.label(),
            customer=customer,
            currency=currency,
            status=dict(REGISTER_STATUSES)[status] if status else None,
        ),  # fmt: skip
        columns=INVOICE_REGISTER_COLUMNS,
        rows=LazyRows(both, _register_row),
        totals=[totals[key] for key in sorted(totals)],
        empty_message="No invoice or credit note was issued in this period for these filters.",
    )


# --- Payments register ------------------------------------------------------------------------------------------

PAYMENT = "payment"
REFUND = "refund"
PAYMENT_KINDS = [("", "Payments and refunds"), (PAYMENT, "Payments only"), (REFUND, "Refunds only")]
METHOD_LABELS = dict(Payment.Method.choices)
PAYMENTS_REGISTER_COLUMNS = [
    Column("date", "Date", DAY),
    Column("kind", "Kind"),
    Column("customer", "Customer"),
    Column("method", "Method"),
    Column("reference", "Reference"),
    Column("currency", "Currency"),
    Column("amount", "Amount", MONEY),
    Column("unallocated", "Unallocated", MONEY, nullable=True),
]
_PAYMENT_FIELDS = ("r_date", "r_kind", "r_customer", "r_method", "r_reference", "r_currency", "r_amount",
                   "r_unallocated", "r_id")  # fmt: skip


def _payment_row(row: dict) -> dict:
    sign = -1 if row["r_kind"] == REFUND else 1
    return {
        "date": _local_day(row["r_date"]) if isinstance(row["r_date"], datetime) else row["r_date"],
        "kind": "Refund" if sign < 0 else "Payment",
        "customer": row["r_customer"],
        "method": METHOD_LABELS.get(row["r_method"], row["r_method"]),
        "reference": row["r_reference"],
        "currency": row["r_currency"],
        "amount": sign * _amount(row["r_amount"]),
        "unallocated": None if sign < 0 else _amount(row["r_unallocated"]),
    }


def payments_register(
    user: User,
    *,
    start: date,
    end: date,
    customer: Customer | None = None,
    currency: str | None = None,
    kind: str | None = None,
) -> ReportTable:
    """Payments received and refunds paid in the period, by date; a refund counts negative, so each currency's
    total is what was collected (DESIGN.md). A payment's unallocated part is what is not set against an invoice
    now."""
    period = Period(start, end)
    payments = _narrow(
        payment_list_for(user).filter(received_at__gte=period.after, received_at__lt=period.before),
        customer=customer,
        currency=currency,
    )
    refunds = _narrow(
        Refund.objects.filter(
            customer__in=customer_list_for(user), created_at__gte=period.after, created_at__lt=period.before
        ),
        customer=customer,
        currency=currency,
    )
    if kind == PAYMENT:
        refunds = refunds.none()
    elif kind == REFUND:
        payments = payments.none()
    payment_rows = payments.order_by().annotate(
        r_date=F("received_at"), r_kind=Value(PAYMENT, CharField()), r_customer=F("customer__name"),
        r_method=F("method"), r_reference=F("bank_reference"), r_currency=F("currency"), r_amount=F("amount"),
        r_unallocated=F("unallocated"), r_id=F("pk"),
    ).values(*_PAYMENT_FIELDS)  # fmt: skip
    refund_rows = refunds.order_by().annotate(
        r_date=F("created_at"), r_kind=Value(REFUND, CharField()), r_customer=F("customer__name"),
        r_method=F("method"), r_reference=F("reference"), r_currency=F("currency"), r_amount=F("amount"),
        r_unallocated=Value(None, DecimalField(max_digits=18, decimal_places=2)), r_id=F("pk"),
    ).values(*_PAYMENT_FIELDS)  # fmt: skip
    both = payment_rows.union(refund_rows, all=True).order_by("r_date", "r_kind", "r_id")

    totals: dict[str, dict] = {}
    for queryset, sign, unallocated in ((payments, 1, "unallocated"), (refunds, -1, None)):
        sums = {"amount": Sum("amount")} | ({"unallocated": Sum(unallocated)} if unallocated else {})
        for figures in queryset.order_by().values("currency").annotate(n=Count("pk"), **sums):
            row = totals.setdefault(
                figures["currency"],
                {"customer": f"Total {figures['currency']}", "currency": figures["currency"], "n": 0}
                | dict.fromkeys(("amount", "unallocated"), ZERO),
            )
            row["n"] += figures["n"]
            row["amount"] += sign * _amount(figures["amount"])
            if unallocated:
                row["unallocated"] += _amount(figures["unallocated"])
    for row in totals.values():
        row["kind"] = _count_label(row.pop("n"), "entry", "entries")
    return ReportTable(
        name="payments-register",
        title="Payments register",
        filters=_filter_labels(
            period.label(), customer=customer, currency=currency, kind=dict(PAYMENT_KINDS)[kind] if kind else None
        ),  # fmt: skip
        columns=PAYMENTS_REGISTER_COLUMNS,
        rows=LazyRows(both, _payment_row),
        totals=[totals[key] for key in sorted(totals)],
        empty_message="No payment was received and no refund paid in this period for these filters.",
    )


# --- Revenue by month and service -------------------------------------------------------------------------------

BY_SERVICE, BY_CATEGORY = "service", "category"
REVENUE_GROUPS = [(BY_SERVICE, "Month, category and service"), (BY_CATEGORY, "Month and category")]
CATEGORY_LABELS = dict(Service.Category.choices)
SOURCE_LABELS = dict(InvoiceItem.Source.choices)
REVENUE_COLUMNS = [
    Column("month", "Month", MONTH),
    Column("category", "Category"),
    Column("service", "Service"),
    Column("currency", "Currency"),
    Column("invoiced", "Invoiced (net)", MONEY),
    Column("credited", "Credited (net)", MONEY),
    Column("revenue", "Revenue", MONEY),
]


def _line_service(service_id, service_name, category, source) -> tuple[str, str]:
    if service_id is None:
        return CATEGORY_LABELS[Service.Category.OTHER], SOURCE_LABELS.get(source, source)
    return CATEGORY_LABELS.get(category, category), service_name


def revenue_by_service(
    user: User,
    *,
    start: date,
    end: date,
    customer: Customer | None = None,
    currency: str | None = None,
    group: str = BY_SERVICE,
) -> ReportTable:
    """Revenue (without tax) of the months from `start`'s to `end`'s: the lines of the issued invoices that bill
    those months (order invoices: issued in them), by month, service category and service (lines without a
    service: by their kind), minus the credit notes on those invoices by their shares of its lines, as the ledger
    posts them (ledger.credit_shares). Every customer's revenue is read from the revenue kept by month and service
    (ledger.models.ServiceRevenue); one customer's, or a scoped user's, from the lines."""
    first, last = start.replace(day=1), end.replace(day=1)
    if customer is None and sees_every_customer(user):
        # Every customer: the revenue kept by month and service (ledger.services.revenue_totals), not every line.
        kept = ServiceRevenue.objects.filter(month__gte=first, month__lte=last)
        if currency:
            kept = kept.filter(currency=currency)
        figures = {
            line_key(month, row_currency, service_id, source): {"invoiced": invoiced, "credited": credited}
            for month, row_currency, service_id, source, invoiced, credited in kept.values_list(
                "month", "currency", "service_id", "source", "invoiced", "credited"
            )
        }
    else:
        invoices = _narrow(invoice_list_for(user).filter(number__isnull=False), customer=customer, currency=currency)
        after_last = (last + timedelta(days=32)).replace(day=1)
        figures = revenue_by_line(
            invoices.filter(
                (~Q(kind=Invoice.Kind.ORDER) & Q(period__gte=first, period__lte=last))
                | Q(kind=Invoice.Kind.ORDER, issued_at__gte=day_start(first), issued_at__lt=day_start(after_last))
            )
        )
    services = {
        pk: (name, category)
        for pk, name, category in Service.objects.filter(pk__in={key[2] for key in figures}).values_list(
            "pk", "name", "category"
        )
    }
    rows: dict[tuple, dict] = {}
    for (month, row_currency, service_id, source), amounts in figures.items():
        name, category = services.get(service_id, ("", ""))
        category_label, service_label = _line_service(service_id, name, category, source)
        key = (row_currency, month, category_label, service_label if group == BY_SERVICE else "")
        if key not in rows:
            rows[key] = {"month": month, "category": category_label, "service": key[3], "currency": row_currency,
                         "invoiced": ZERO, "credited": ZERO}  # fmt: skip
        rows[key]["invoiced"] += _amount(amounts["invoiced"])
        rows[key]["credited"] += _amount(amounts["credited"])

    for each in rows.values():
        each["revenue"] = each["invoiced"] - each["credited"]
    ordered = sorted(rows.values(), key=lambda r: (r["currency"], r["month"], r["category"], r["service"]))
    columns = REVENUE_COLUMNS if group == BY_SERVICE else [c for c in REVENUE_COLUMNS if c.key != "service"]
    return ReportTable(
        name="revenue",
        title="Revenue by month and service",
        filters=_filter_labels(
            f"{first:%b %Y} to {last:%b %Y}", customer=customer, currency=currency, by=dict(REVENUE_GROUPS)[group]
        ),  # fmt: skip
        columns=columns,
        rows=ordered,
        totals=_totals(ordered, label_key="category", sums=["invoiced", "credited", "revenue"]),
        empty_message=f"No issued invoice bills these months for these filters (from {day(first)}).",
    )


# --- Tax report -------------------------------------------------------------------------------------------------

TAX_COLUMNS = [
    Column("currency", "Currency"),
    Column("rate", "Tax rate", RATE),
    Column("exemption", "Exemption"),
    Column("invoiced_base", "Invoiced base", MONEY),
    Column("invoiced_tax", "Invoiced tax", MONEY),
    Column("credited_base", "Credited base", MONEY),
    Column("credited_tax", "Credited tax", MONEY),
    Column("base", "Taxable base", MONEY),
    Column("tax", "Tax", MONEY),
]
DISBURSEMENT_LABEL = "Disbursement (outside the scope of tax)"


def _exemption(rate: Decimal, source: str, exempt: bool | None, reason: str | None) -> str:
    """Why a line carries no tax: a disbursement (a cost passed through), or the customer's exemption."""
    if rate:
        return ""
    if source == InvoiceItem.Source.DISBURSEMENT:
        return DISBURSEMENT_LABEL
    if exempt:
        return f"Exempt: {reason}" if reason else "Exempt"
    return "Zero rate"


def tax_report(
    user: User, *, start: date, end: date, customer: Customer | None = None, currency: str | None = None
) -> ReportTable:
    """Per currency, tax rate and exemption: the taxable base and the tax of the lines of invoices issued in the
    period, minus those of credit notes issued in it, by each note's shares of its invoice's lines, net and tax, as
    the ledger posts them (ledger.credit_shares: a partial note comes off the highest rate first)."""
    period = Period(start, end)
    rows: dict[tuple, dict] = {}

    def row(row_currency: str, rate: Decimal, exemption: str) -> dict:
        key = (row_currency, rate, exemption)
        if key not in rows:
            rows[key] = {"currency": row_currency, "rate": rate, "exemption": exemption} | dict.fromkeys(
                ("invoiced_base", "invoiced_tax", "credited_base", "credited_tax"), ZERO
            )
        return rows[key]

    config = "invoice__customer__billing_config__"
    invoices = _narrow(
        invoice_list_for(user).filter(number__isnull=False, issued_at__gte=period.after, issued_at__lt=period.before),
        customer=customer,
        currency=currency,
    )
    for row_currency, rate, source, exempt, reason, base, tax in (
        InvoiceItem.objects.filter(invoice__in=invoices.values("pk"))
        .order_by()
        .values_list("invoice__currency", "tax_rate", "source", f"{config}tax_exempt", f"{config}tax_exempt_reason")
        .annotate(base=Sum("amount"), tax=Sum("tax_amount"))
    ):
        each = row(row_currency, Decimal(rate), _exemption(rate, source, exempt, reason))
        each["invoiced_base"] += _amount(base)
        each["invoiced_tax"] += _amount(tax)

    notes = _narrow(
        credit_note_list_for(user).filter(issued_at__gte=period.after, issued_at__lt=period.before),
        customer=customer,
        currency=currency,
    )
    of_note, exemptions = {}, {}
    for pk, note_currency, invoice_id, exempt, reason in notes.order_by().values_list(
        "pk", "currency", "invoice_id", f"{config}tax_exempt", f"{config}tax_exempt_reason"
    ):
        of_note[pk] = note_currency
        exemptions[invoice_id] = (exempt, reason)
    for note_id, shares in credit_note_shares(exemptions).items():
        if note_id not in of_note:  # an earlier or later note of the same invoice, replayed for its shares
            continue
        for share in shares:
            item = share.item
            exempt, reason = exemptions[item.invoice_id]
            each = row(of_note[note_id], Decimal(item.tax_rate), _exemption(item.tax_rate, item.source, exempt, reason))
            each["credited_base"] += share.amount
            each["credited_tax"] += share.tax_amount

    for each in rows.values():
        each["base"] = each["invoiced_base"] - each["credited_base"]
        each["tax"] = each["invoiced_tax"] - each["credited_tax"]
    ordered = sorted(rows.values(), key=lambda r: (r["currency"], -r["rate"], r["exemption"]))
    sums = ["invoiced_base", "invoiced_tax", "credited_base", "credited_tax", "base", "tax"]
    totals = _totals(ordered, label_key="exemption", sums=sums)
    return ReportTable(
        name="tax",
        title="Tax report",
        filters=_filter_labels(period.label(), customer=customer, currency=currency),
        columns=TAX_COLUMNS,
        rows=ordered,
        totals=totals,
        empty_message="No invoice or credit note was issued in this period for these filters.",
    )
