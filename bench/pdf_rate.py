"""Time invoice PDFs (issue 4, "Speed"): ledger.pdf.render_invoice_pdf alone, and the whole invoice_issue.

Usage: .venv/bin/python bench/pdf_rate.py [--invoices 200] [--customers 20] [--min-lines 3] [--max-lines 10]
                                          [--seed 42] [--sqlite] [--timeout 600] [--prefix bench_usage_]

On a fresh PostgreSQL database bench_usage_<pid> (or, with --sqlite, a SQLite file under /tmp), migrated
only and dropped at the end, with MEDIA_ROOT in a temporary directory, it
1. creates 6 services and --customers customers through the catalog services (so the ledger opens their
   books), 70 % in EUR with 20 % tax and 30 % in USD exempt from tax, and --invoices draft usage invoices
   (one per customer and month of 2026) with --min-lines to --max-lines lines each, made as month-end makes
   them: a monthly fee, the included units at zero, usage at one or two snapshot prices, tax per line;
2. renders each invoice's PDF with ledger.pdf.render_invoice_pdf(invoice, items, config) in this process,
   with the number, issue and due dates it will have (one warm-up render first, not counted);
3. issues each invoice with ledger.services.invoices.invoice_issue(send=False): lock, gapless number,
   charge posted to the journal, PDF rendered and stored under MEDIA_ROOT, invoice saved (the email is
   left out), counting the statements each issue sends;
4. checks that the numbers are gapless, every PDF is stored and the ledger reconciles.
"""

import argparse
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from common import QueryCounter, fresh_database, load_average, percentile, setup_django, time_limit

SERVICES = [
    ("kyc_basic", "KYC basic check", "kyc", "0.90", "100"),
    ("kyc_enhanced", "KYC enhanced check", "kyc", "2.40", "0"),
    ("aml_screening", "AML screening", "aml", "0.35", "500"),
    ("aml_monitoring", "AML ongoing monitoring", "aml", "0.015", "10000"),
    ("api_call", "API call", "api", "0.002", "100000"),
    ("doc_verification", "Document verification", "documents", "1.10", "0"),
]
ZERO = Decimal("0.00")


def build(*, customers: int, invoices: int, min_lines: int, max_lines: int, seed: int) -> list[int]:
    """Customers through the services, then draft usage invoices in bulk; returns the invoice ids."""
    from simple_history.utils import bulk_create_with_history

    from billing_project.money import round_amount
    from catalog import services as catalog
    from ledger.models import Invoice, InvoiceItem
    from ledger.services.billing import billing_config_update
    from ledger.services.invoices import LineDraft, items_for, set_totals
    from ledger.vat import vat_treatment

    rnd = random.Random(seed)
    services = [
        catalog.service_create(actor=None, code=code, name=name, category=category, unit_label="unit")
        for code, name, category, *_ in SERVICES
    ]
    people = []
    for number in range(1, customers + 1):
        currency = "EUR" if rnd.random() < 0.7 else "USD"
        customer = catalog.customer_create(
            actor=None,
            client_id=f"PDF-{number:03d}",
            name=f"Customer {number:03d} & Sons",
            legal_name=f"Customer {number:03d} & Sons Trading Ltd",
            street_line1=f"{number} Long Street Name",
            street_line2=f"Building {number % 7}, Floor {number % 12}",
            postal_code=f"{10000 + number}",
            city="Exampletown",
            country="NL",
            billing_email=f"ap@customer{number:03d}.example",
            currency=currency,
            start_date=date(2026, 1, 1),
        )
        exempt = currency != "EUR"
        billing_config_update(
            actor=None,
            customer=customer,
            tax_rate=Decimal(0) if exempt else Decimal("0.2"),
            tax_exempt=exempt,
            tax_exempt_reason="Customer outside the EU VAT area (reverse charge)" if exempt else "",
            tax_id="" if exempt else f"NL{rnd.randrange(10**9):09d}B01",
            payment_terms_days=rnd.choice((14, 30)),
        )
        people.append(customer)

    drafts, all_items = [], []
    for index in range(invoices):
        customer = people[index % customers]
        period = date(2026, 1 + (index // customers) % 12, 1)
        wanted = rnd.randint(min_lines, max_lines)
        lines: list[LineDraft] = []
        for position in rnd.sample(range(len(SERVICES)), len(SERVICES)):
            if len(lines) >= wanted:
                break
            service, (_, name, _, price, allowance) = services[position], SERVICES[position]
            if rnd.random() < 0.5:
                fee = Decimal(rnd.choice(("49.00", "99.00", "199.00")))
                lines.append(LineDraft("fee", f"{name} — monthly fee", service.pk, Decimal(1), fee, fee))
            if Decimal(allowance) and len(lines) < wanted:
                lines.append(
                    LineDraft("included", f"{name} — included units", service.pk, Decimal(allowance), ZERO, ZERO)
                )
            for step in range(rnd.choice((1, 2))):
                if len(lines) >= wanted:
                    break
                at = (Decimal(price) * Decimal("0.95") ** step).quantize(Decimal("0.000001"))
                quantity = Decimal(rnd.randint(1, 250_000))
                lines.append(
                    LineDraft(
                        "usage",
                        f"{name} — usage at {at.normalize():f}",
                        service.pk,
                        quantity,
                        at,
                        round_amount(quantity * at),
                    )
                )
        config = customer.billing_config
        invoice = Invoice(customer=customer, kind=Invoice.Kind.USAGE, period=period, currency=customer.currency)
        items = items_for(invoice, lines, vat_treatment(config, customer))
        set_totals(invoice, items)
        drafts.append(invoice)
        all_items.append(items)
    drafts = bulk_create_with_history(drafts, Invoice)
    for invoice, items in zip(drafts, all_items, strict=True):
        for item in items:
            item.invoice = invoice
    bulk_create_with_history([item for items in all_items for item in items], InvoiceItem)
    return [invoice.pk for invoice in drafts]


def load(invoice_id: int):
    from ledger.models import Invoice
    from ledger.services.billing import billing_config_for

    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    return invoice, list(invoice.items.all()), billing_config_for(invoice.customer)


def time_renders(invoice_ids: list[int]) -> tuple[list[float], list[int], float]:
    """Render each PDF as it will look when issued; only the render call is timed."""
    from django.utils import timezone

    from ledger.pdf import render_invoice_pdf

    loaded = []
    for number, invoice_id in enumerate(invoice_ids, start=1):
        invoice, items, config = load(invoice_id)
        invoice.number = f"INV-2026-{number:06d}"
        invoice.issued_at = timezone.now()
        invoice.due_date = invoice.issued_at.date() + timedelta(days=config.payment_terms_days)
        loaded.append((invoice, items, config))
    started = time.perf_counter()
    render_invoice_pdf(*loaded[0])  # warm-up: fonts, styles, reportlab's caches
    warm_up = (time.perf_counter() - started) * 1000
    timings, sizes = [], []
    for invoice, items, config in loaded:
        started = time.perf_counter()
        pdf = render_invoice_pdf(invoice, items, config)
        timings.append((time.perf_counter() - started) * 1000)
        sizes.append(len(pdf))
    return timings, sizes, warm_up


def time_issues(invoice_ids: list[int]) -> dict:
    from django.db import connection

    from ledger.models import Invoice
    from ledger.services import invoices as invoices_module

    rendering = []
    render = invoices_module.render_invoice_pdf

    def timed_render(*args, **kwargs):
        started = time.perf_counter()
        try:
            return render(*args, **kwargs)
        finally:
            rendering.append((time.perf_counter() - started) * 1000)

    timings, queries, in_sql = [], [], []
    invoices_module.render_invoice_pdf = timed_render  # instrumentation: the render's share of an issue
    try:
        for invoice_id in invoice_ids:
            invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
            with QueryCounter(connection) as counter:
                started = time.perf_counter()
                invoices_module.invoice_issue(actor=None, invoice=invoice, send=False)
                timings.append((time.perf_counter() - started) * 1000)
            queries.append(counter.total)
            in_sql.append(counter.seconds * 1000)
    finally:
        invoices_module.render_invoice_pdf = render
    return {"timings": timings, "rendering": rendering, "queries": queries, "in_sql": in_sql}


def check(invoice_ids: list[int], media_root: Path) -> dict:
    from ledger.models import Invoice
    from ledger.services.reconciliation import ledger_differences

    issued = list(Invoice.objects.filter(pk__in=invoice_ids).order_by("number"))
    numbers = [int(invoice.number.rsplit("-", 1)[1]) for invoice in issued if invoice.number]
    stored = [invoice for invoice in issued if invoice.pdf and (media_root / invoice.pdf.name).is_file()]
    differences, accounts, transactions = ledger_differences()
    return {
        "issued": sum(invoice.status == Invoice.Status.ISSUED for invoice in issued),
        "gapless": numbers == list(range(1, len(invoice_ids) + 1)),
        "stored": len(stored),
        "differences": differences,
        "accounts": accounts,
        "transactions": transactions,
    }


def line(what: str, timings: list[float], extra: str = "", *, rate: bool = True) -> str:
    total = sum(timings) / 1000
    per_second = f"{len(timings) / total:8.1f}" if rate else " " * 8
    return (
        f"{what:<44}| {len(timings):>5} | {total:7.2f} | {per_second} | "
        f"{statistics.median(timings):7.1f} | {percentile(timings, 0.95):7.1f} | {max(timings):7.1f} | {extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--min-lines", type=int, default=3)
    parser.add_argument("--max-lines", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed to each step")
    parser.add_argument("--prefix", default="", help="the database name's prefix (default bench_usage_)")
    args = parser.parse_args()
    if args.invoices > args.customers * 12:
        parser.error("at most 12 invoices per customer (one per month of 2026)")

    whole, load_before = time.perf_counter(), load_average()
    kind = "sqlite" if args.sqlite else "postgres"
    with (
        tempfile.TemporaryDirectory(prefix="bench_pdf_") as media,
        fresh_database(kind, timeout=args.timeout, seed=False, prefix=args.prefix) as url,
    ):
        setup_django(url, media_root=media)
        with time_limit(args.timeout, "building the invoices"):
            invoice_ids = build(
                customers=args.customers,
                invoices=args.invoices,
                min_lines=args.min_lines,
                max_lines=args.max_lines,
                seed=args.seed,
            )
        from ledger.models import InvoiceItem

        lines = InvoiceItem.objects.filter(invoice_id__in=invoice_ids).count()
        print(f"{len(invoice_ids)} draft invoices, {lines:,} lines ({lines / len(invoice_ids):.1f} per invoice)")
        with time_limit(args.timeout, "rendering"):
            renders, sizes, warm_up = time_renders(invoice_ids)
        with time_limit(args.timeout, "issuing"):
            issues = time_issues(invoice_ids)
        checked = check(invoice_ids, Path(media))
        from django.db import connections

        connections.close_all()

    database = "SQLite" if args.sqlite else "PostgreSQL"
    print(
        f"\nmachine: 2 cores; {database}; whole run {time.perf_counter() - whole:.0f} s; seed {args.seed}; "
        f"load average {load_before} at the start, {load_average()} at the end"
    )
    header = (
        f"{'what':<44}| {'count':>5} | {'total s':>7} | {'per s':>8} | {'median':>7} | {'p95':>7} | {'max':>7} | "
        "(ms per invoice)"
    )
    print(header)
    print("-" * len(header))
    print(line("render_invoice_pdf", renders, f"{statistics.mean(sizes) / 1024:.1f} KiB per PDF"))
    print(
        line(
            "invoice_issue (number, charge, PDF, storage)",
            issues["timings"],
            f"{statistics.median(issues['queries']):.0f} statements per issue "
            f"(min {min(issues['queries'])}, max {max(issues['queries'])})",
        )
    )
    print(line("  of which the render inside invoice_issue", issues["rendering"], rate=False))
    print(line("  of which inside execute() (the statements)", issues["in_sql"], rate=False))
    print(f"(warm-up render, not counted: {warm_up:.1f} ms)")
    print(
        f"checks: {checked['issued']} issued, numbers gapless: {checked['gapless']}, {checked['stored']} PDFs stored, "
        f"ledger differences: {len(checked['differences'])} ({checked['accounts']} accounts, "
        f"{checked['transactions']} transactions checked)"
    )


if __name__ == "__main__":
    main()
