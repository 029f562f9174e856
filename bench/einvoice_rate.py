"""Time e-invoices (issue 15, "Speed"): UBL and Factur-X made per second, beside the invoice PDF's rate, and the
whole invoice_issue with e-invoices on.

Usage: .venv/bin/python bench/einvoice_rate.py [--invoices 200] [--customers 20] [--min-lines 3] [--max-lines 10]
                                               [--seed 42] [--sqlite] [--timeout 600] [--prefix ch_einv_]

On a fresh PostgreSQL database <prefix><pid> (or, with --sqlite, a SQLite file under /tmp), migrated only and
dropped at the end, with MEDIA_ROOT in a temporary directory, it
1. builds the same customers and draft usage invoices as bench/pdf_rate.py (70 % EUR at 20 % tax, S; 30 % USD
   exempt, E), every customer set to receive e-invoices (Factur-X), so each issue makes both syntaxes;
2. issues each invoice with ledger.services.invoices.invoice_issue(send=False): number, charge, PDF rendered,
   UBL and CII made and checked, Factur-X PDF written, the three files stored; the render and the e-invoice
   part are timed inside it;
3. on the issued invoices, times each step on its own, in this process: render_invoice_pdf; the business terms
   (invoice_terms, with the PDF to embed); UBL = ubl_xml + ubl_problems (XSD and rules); Factur-X = cii_xml +
   cii_problems + facturx_pdf (the embedding, which checks the XSD again); one warm-up of each first;
4. checks that every invoice has its UBL and Factur-X stored and that the ledger reconciles.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import QueryCounter, fresh_database, load_average, setup_django, time_limit
from pdf_rate import build, line


def time_issues(invoice_ids: list[int]) -> dict:
    from django.db import connection

    from ledger.models import Invoice
    from ledger.services import invoices as invoices_module

    parts = {"render": [], "einvoices": []}
    originals = {"render": invoices_module.render_invoice_pdf, "einvoices": invoices_module._einvoices}

    def timed(part):
        def call(*args, **kwargs):
            started = time.perf_counter()
            try:
                return originals[part](*args, **kwargs)
            finally:
                parts[part].append((time.perf_counter() - started) * 1000)

        return call

    timings, queries = [], []
    invoices_module.render_invoice_pdf = timed("render")  # instrumentation: each part's share of an issue
    invoices_module._einvoices = timed("einvoices")
    try:
        for invoice_id in invoice_ids:
            invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
            with QueryCounter(connection) as counter:
                started = time.perf_counter()
                invoices_module.invoice_issue(actor=None, invoice=invoice, send=False)
                timings.append((time.perf_counter() - started) * 1000)
            queries.append(counter.total)
    finally:
        invoices_module.render_invoice_pdf = originals["render"]
        invoices_module._einvoices = originals["einvoices"]
    return {"timings": timings, "queries": queries, **parts}


def time_steps(invoice_ids: list[int]) -> dict:
    """Each step on its own, on the issued invoices (their stored PDF embedded, as at issue)."""
    from ledger.einvoice.cii import cii_problems, cii_xml, facturx_pdf
    from ledger.einvoice.terms import invoice_terms
    from ledger.einvoice.ubl import ubl_problems, ubl_xml
    from ledger.models import Invoice
    from ledger.pdf import render_invoice_pdf
    from ledger.services.billing import billing_config_for

    loaded = []
    for invoice in Invoice.objects.filter(pk__in=invoice_ids).select_related("customer").order_by("pk"):
        items = list(invoice.items.all())
        with invoice.pdf.open("rb") as stored:
            loaded.append((invoice, items, billing_config_for(invoice.customer), stored.read()))

    def ubl(document) -> bytes:
        xml = ubl_xml(document)
        assert not ubl_problems(xml)
        return xml

    def facturx(document, pdf) -> bytes:
        xml = cii_xml(document)
        assert not cii_problems(xml)
        return facturx_pdf(pdf, xml)

    first = loaded[0]
    warm_document = invoice_terms(first[0], pdf=first[3])
    render_invoice_pdf(first[0], first[1], first[2]), ubl(warm_document), facturx(warm_document, first[3])  # warm-up
    steps = {"render": [], "terms": [], "ubl": [], "facturx": [], "ubl_size": [], "facturx_size": []}
    for invoice, items, config, pdf in loaded:
        started = time.perf_counter()
        render_invoice_pdf(invoice, items, config)
        steps["render"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        document = invoice_terms(invoice, pdf=pdf)
        steps["terms"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        steps["ubl_size"].append(len(ubl(document)))
        steps["ubl"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        steps["facturx_size"].append(len(facturx(document, pdf)))
        steps["facturx"].append((time.perf_counter() - started) * 1000)
    return steps


def check(invoice_ids: list[int], media_root: Path) -> dict:
    from ledger.models import Invoice
    from ledger.services.reconciliation import ledger_differences

    issued = list(Invoice.objects.filter(pk__in=invoice_ids))
    stored = [
        invoice
        for invoice in issued
        if all(
            field and (media_root / field.name).is_file() for field in (invoice.pdf, invoice.einvoice, invoice.facturx)
        )
    ]
    differences, accounts, transactions = ledger_differences()
    return {
        "issued": sum(invoice.status == Invoice.Status.ISSUED for invoice in issued),
        "stored": len(stored),
        "differences": differences,
        "accounts": accounts,
        "transactions": transactions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--min-lines", type=int, default=3)
    parser.add_argument("--max-lines", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed to each step")
    parser.add_argument("--prefix", default="bench_einvoice_", help="the database name's prefix")
    args = parser.parse_args()
    if args.invoices > args.customers * 12:
        parser.error("at most 12 invoices per customer (one per month of 2026)")

    whole, load_before = time.perf_counter(), load_average()
    kind = "sqlite" if args.sqlite else "postgres"
    with (
        tempfile.TemporaryDirectory(prefix="bench_einvoice_") as media,
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
        from catalog.models import Customer, EinvoiceDelivery
        from ledger.models import InvoiceItem

        Customer.objects.update(einvoice_delivery=EinvoiceDelivery.FACTURX)  # bench set-up: every one receives them
        lines = InvoiceItem.objects.filter(invoice_id__in=invoice_ids).count()
        print(f"{len(invoice_ids)} draft invoices, {lines:,} lines ({lines / len(invoice_ids):.1f} per invoice)")
        with time_limit(args.timeout, "issuing"):
            issues = time_issues(invoice_ids)
        with time_limit(args.timeout, "timing each step"):
            steps = time_steps(invoice_ids)
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
    print(line("render_invoice_pdf", steps["render"]))
    print(line("invoice_terms (the business terms)", steps["terms"]))
    print(line("UBL: ubl_xml + ubl_problems", steps["ubl"], f"{statistics.mean(steps['ubl_size']) / 1024:.1f} KiB"))
    print(
        line(
            "Factur-X: cii_xml + cii_problems + embed",
            steps["facturx"],
            f"{statistics.mean(steps['facturx_size']) / 1024:.1f} KiB",
        )
    )
    ubl_total = [t + u for t, u in zip(steps["terms"], steps["ubl"], strict=True)]
    facturx_total = [t + f for t, f in zip(steps["terms"], steps["facturx"], strict=True)]
    print(line("UBL with its terms", ubl_total))
    print(line("Factur-X with its terms", facturx_total))
    print(
        line(
            "invoice_issue with e-invoices (both)",
            issues["timings"],
            f"{statistics.median(issues['queries']):.0f} statements per issue "
            f"(min {min(issues['queries'])}, max {max(issues['queries'])})",
        )
    )
    print(line("  of which the PDF render", issues["render"], rate=False))
    print(line("  of which the e-invoices (terms, both, checks)", issues["einvoices"], rate=False))
    print(
        f"checks: {checked['issued']} issued, {checked['stored']} with PDF, UBL and Factur-X stored, "
        f"ledger differences: {len(checked['differences'])} ({checked['accounts']} accounts, "
        f"{checked['transactions']} transactions checked)"
    )
    per_issue = statistics.median(issues["timings"]) / 1000
    print(f"at the median issue, 10,000 auto-issued invoices take {10_000 * per_issue:.0f} s on one process")


if __name__ == "__main__":
    main()
