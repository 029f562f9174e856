"""Time the dashboard and the reports at scale (issue 14, "Speed"): 10,000 customers, 120,000 invoices, 500,000
journal transactions, 10 million usage records and 100,000 orders, on PostgreSQL.

Usage: .venv/bin/python bench/reports_scale.py [--database bench_scale_keep] [--keep] [--reuse] [--build-only]
                                               [--runs 5] [--skip-small] [--only TEXT] [--explain]
                                               [--rows-per-month 1000000] [--months 10] [--timeout 1800]

1. The database (`bench_scale_<pid>`, or --database; with --reuse an existing one that already holds the data is
   only migrated, with --keep it is not dropped at the end):
   - migrated and seeded with the demo (`manage.py seed_demo`: its users and roles, its 12 customers);
   - bench/month_end.py's catalog of 10,000 customers (70 % EUR with 20 % tax, 30 % USD exempt, 2 to 6 of 8
     services each, one agreement per pair from 2026-01-01), opened books (receivable accounts, billing
     configurations); the demo's Customer Success user (cs@) is the CSM of every tenth (1,000 customers);
   - usage: one month (2026-11) of 1,000,000 records over those customers written by month_end.write_usage and
     imported with `manage.py import_usage`, copied into the nine months before (bench/month_report.fill, as
     bench/usage_reads.py builds its 10 million rows), then `manage.py rebuild_usage_summaries`;
   - 100,000 orders with documents, tasks and history (bench/orders_pages.fill) over all customers;
   - the ledger, generated here in issue order and written with COPY: a usage invoice per customer and month
     from December 2025 to November 2026 (120,000, 2 to 6 lines each; November's issued on 1–2 December, 5 % of
     them still drafts), each issued one posted as a charge (receivable / revenue by category / tax); payments
     received 3 days to 7 weeks after issue (a third of the invoices paid in two parts, 2 % never paid), each
     with its allocation and its posting (cash / receivable); 3 % of the invoices credited (half in full, which
     voids them, half a tenth of them) with their postings; expenses on the orders (paid from cash, posted to
     the expense accounts) up to 500,000 transactions in all; numbers continue the demo's sequences; every
     row with its history row(s) as django-simple-history writes them (an invoice's at creation, issue and
     each payment or credit note). Each leg carries its account's balance after it, in id order, and each
     account's balance is the sum of its legs. The journal's triggers are off during the COPY only
     (session_replication_role = replica); the balance of every transaction and every account is checked
     afterwards, in SQL, and the build stops if one is off;
   - every rollup the product keeps is rebuilt by its own command (`manage.py rebuild_usage_summaries`,
     `manage.py rebuild_ledger_monthly_totals`), then VACUUM (ANALYZE).
2. The reads, through Django's test client in this process (DEBUG off, static files collected as in production),
   signed in as Finance (finance@) and as the CSM (cs@: 1,000 of the customers plus the demo's): the dashboard
   (/admin/), each finance report's page and API (/admin/reports/<name>/, GET /api/reports/<name>), the partner
   revenue report (page and API), the monthly usage report, the customer statement (page and API) of that CSM's
   busiest customer. Each once to warm up (its time printed as "first": a fresh process, nothing cached), then
   --runs times: the median and max, and the SQL statements.
3. The same reads on the small demo database (migrated and seeded, dropped at the end; --skip-small to skip),
   to show that each page's statement count does not grow with the data.
"""

import argparse
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import psycopg
from common import PG_URL, QueryCounter, _close_django_connections, load_average, setup_django
from import_usage import django_env, prepare, run_child, timed_import

DASHBOARD_LIMIT_MS = 300
REPORT_LIMIT_MS = 500
SLOW_S = 20
CUSTOMERS = 10_000
ORDERS = 100_000
TRANSACTIONS = 500_000
USAGE_MONTH = "2026-11"
FIRST_PERIOD = date(2025, 12, 1)
PERIODS = 12
CSM_EVERY = 10  # the CSM looks after every tenth bench customer
CENT = Decimal("0.01")
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)  # nothing is dated after this
STATE = ("status", "number", "issued_at", "due_date", "amount_paid", "amount_credited", "paid_at")  # what changes


def database_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


# --- COPY -------------------------------------------------------------------------------------------------------


def _text(value) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


def copy_rows(conn, table: str, columns: list[str], rows) -> int:
    count = 0
    quoted = ", ".join(f'"{column}"' for column in columns)
    with conn.cursor().copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
        block = []
        for row in rows:
            block.append("\t".join(map(_text, row)))
            count += 1
            if len(block) >= 20000:
                copy.write("\n".join(block) + "\n")
                block.clear()
        if block:
            copy.write("\n".join(block) + "\n")
    return count


# --- The build --------------------------------------------------------------------------------------------------


def build_catalog_and_usage(url: str, args, workdir: Path) -> None:
    """The 10,000 customers (month_end's catalog), the CSM's share, and 10 months of usage for them."""
    from month_end import build_catalog, write_usage
    from month_report import fill, rebuild_summaries

    from accounts.models import User
    from catalog.models import Customer

    started = time.perf_counter()
    priced = build_catalog(customers=CUSTOMERS, seed=42, price_changes=0)
    cs_user = User.objects.get(email="cs@countinghouse.example")
    bench = Customer.objects.filter(client_id__startswith="CUST-").order_by("pk")
    every_tenth = [pk for index, pk in enumerate(bench.values_list("pk", flat=True)) if index % CSM_EVERY == 0]
    Customer.objects.filter(pk__in=every_tenth).update(csm=cs_user)
    print(f"  catalog in {time.perf_counter() - started:.0f} s; cs@ is the CSM of {len(every_tenth):,}", flush=True)
    _close_django_connections()
    path = workdir / "usage.csv"
    year, month = (int(part) for part in USAGE_MONTH.split("-"))
    write_usage(path, priced=priced, rows=args.rows_per_month, period=date(year, month, 1), seed=42)
    figures = timed_import(path, django_env(url), args.timeout)
    print(f"  imported {figures['rows']:,} usage rows in {figures['import_s']:.1f} s", flush=True)
    path.unlink()
    started = time.perf_counter()
    fill(url, months=args.months, month=USAGE_MONTH)
    print(f"  filled {args.months} months in {time.perf_counter() - started:.0f} s", flush=True)
    rebuild_summaries(url, args.timeout)


def build_orders(url: str) -> None:
    from orders_pages import fill, reference_rows

    started = time.perf_counter()
    fill(url, orders=ORDERS, ids=reference_rows())
    print(f"  orders in {time.perf_counter() - started:.0f} s", flush=True)


class Ledger:
    """The ledger's rows, generated in the order things happened, with ids given here (after the demo's)."""

    def __init__(self, conn, seed: int) -> None:
        self.conn = conn
        self.rnd = random.Random(seed)
        self.next_id = {}
        for table in (
            "ledger_invoice", "ledger_invoiceitem", "ledger_creditnote", "ledger_payment", "ledger_allocation",
            "ledger_transaction", "ledger_leg", "orders_expense",
        ):  # fmt: skip
            self.next_id[table] = conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()[0]
        self.balances = dict(conn.execute("SELECT id, balance FROM ledger_account").fetchall())
        self.sequences = {
            (series, year): number
            for series, year, number in conn.execute(
                "SELECT series, year, last_number FROM ledger_documentsequence"
            ).fetchall()
        }
        self.content_types = dict(
            conn.execute("SELECT model, id FROM django_content_type WHERE app_label IN ('ledger', 'orders')").fetchall()
        )
        self.events = []  # (moment, order, kind, payload)

    def take(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] += 1
        return value

    def number(self, series: str, moment: datetime) -> str:
        key = (series, moment.year)
        self.sequences[key] = self.sequences.get(key, 0) + 1
        return f"{series}-{moment.year}-{self.sequences[key]:06d}"


def build_ledger(url: str, *, seed: int = 42) -> dict:
    """Invoices, payments, credit notes, expenses and their postings (see the module's docstring)."""
    from month_end import SERVICES

    from ledger.services.journal import cash_account, expense_account, revenue_account, tax_account
    from orders.models import Expense

    started = time.perf_counter()
    conn = psycopg.connect(url)
    ledger = Ledger(conn, seed)
    rnd = ledger.rnd
    services = dict(conn.execute("SELECT code, id FROM catalog_service").fetchall())
    categories = dict(conn.execute("SELECT id, category FROM catalog_service").fetchall())
    customers = conn.execute(
        """
        SELECT c.id, c.name, c.currency, b.tax_rate, b.tax_exempt, b.payment_terms_days, a.id,
               array_agg(DISTINCT p.service_id ORDER BY p.service_id)
        FROM catalog_customer c
        JOIN ledger_billingconfig b ON b.customer_id = c.id
        JOIN ledger_account a ON a.customer_id = c.id AND a.kind = 'receivable'
        JOIN catalog_priceagreement p ON p.customer_id = c.id
        WHERE c.client_id LIKE 'CUST-%'
        GROUP BY c.id, c.name, c.currency, b.tax_rate, b.tax_exempt, b.payment_terms_days, a.id
        ORDER BY c.id
        """
    ).fetchall()
    conn.commit()
    # The shared accounts, opened by the product's own helpers (through Django's connection, committed).
    currencies = sorted({row[2] for row in customers})
    accounts = {}
    for currency in currencies:
        accounts["cash", currency] = cash_account(currency).pk
        accounts["tax", currency] = tax_account(currency).pk
        for category in sorted(set(categories.values())):
            accounts["revenue", category, currency] = revenue_account(category, currency).pk
        for category, label in Expense.Category.choices:
            accounts["expense", category, currency] = expense_account(category, currency, label=label).pk
    _close_django_connections()
    for account_id in accounts.values():
        ledger.balances.setdefault(account_id, Decimal("0.00"))
    list_price = {services[code]: Decimal(price) for code, _, _, _, price, *_ in SERVICES}

    invoices, history_invoices = [], []
    events = []  # (moment, tiebreak, kind, data)
    today = NOW.date()
    for customer_id, name, currency, rate, exempt, terms, receivable, service_ids in customers:
        rate = Decimal(0) if exempt else Decimal(rate)
        for month_index in range(PERIODS):
            period = add_months(FIRST_PERIOD, month_index)
            invoice_id = ledger.take("ledger_invoice")
            lines, subtotal, tax = [], Decimal("0.00"), Decimal("0.00")
            for position, service_id in enumerate(service_ids):
                quantity = Decimal(rnd.randint(10, 5000))
                unit_price = list_price.get(service_id, Decimal("0.50"))
                amount = _round(quantity * unit_price)
                line_tax = _round(amount * rate)
                lines.append((ledger.take("ledger_invoiceitem"), position, service_id, quantity, unit_price, amount,
                              line_tax))  # fmt: skip
                subtotal += amount
                tax += line_tax
            created = datetime(period.year, period.month, 1, tzinfo=UTC) + timedelta(days=32)
            created = created.replace(day=1, hour=2, minute=rnd.randint(0, 59))
            issued_at = created + timedelta(hours=rnd.randint(4, 40), seconds=rnd.randint(0, 3599))
            draft = period == add_months(FIRST_PERIOD, PERIODS - 1) and rnd.random() < 0.05
            invoice = {
                "id": invoice_id, "customer": customer_id, "name": name, "currency": currency, "period": period,
                "subtotal": subtotal, "tax": tax, "total": subtotal + tax, "created": created, "lines": lines,
                "receivable": receivable, "rate": rate, "terms": terms,
            }  # fmt: skip
            invoices.append(invoice)
            if draft:
                invoice.update(status="draft", number=None, issued_at=None, due_date=None)
                continue
            invoice.update(status="issued", issued_at=issued_at, due_date=issued_at.date() + timedelta(days=terms))
            events.append((issued_at, invoice_id, "issue", invoice))
            # What happens to it afterwards: a credit note, payments.
            owed = invoice["total"]
            if rnd.random() < 0.03:
                full = rnd.random() < 0.5
                note_subtotal = subtotal if full else _round(subtotal / 10)
                note_tax = tax if full else _round(tax / 10)
                at = issued_at + timedelta(days=1, hours=rnd.randint(0, 23))  # before any payment
                if at < NOW:
                    events.append((at, invoice_id, "credit", (invoice, full, note_subtotal, note_tax)))
                    owed -= note_subtotal + note_tax
                    if full:
                        continue
            if rnd.random() < 0.02:
                continue  # never paid
            received = issued_at + timedelta(days=rnd.randint(3, 50), hours=rnd.randint(0, 23))
            if rnd.random() < 1 / 3:
                first = _round(owed / 2)
                parts = [(issued_at + (received - issued_at) / 2, first), (received, owed - first)]
            else:
                parts = [(received, owed)]
            for at, amount in parts:
                if at < NOW and amount > 0:
                    events.append((at, invoice_id, "payment", (invoice, amount)))
    charges_and_so_on = len(events)
    # Expenses on the orders, up to TRANSACTIONS transactions in all.
    orders = conn.execute(
        "SELECT id, number, currency, start_date FROM orders_order WHERE number LIKE 'ORD-2020-%' ORDER BY id"
    ).fetchall()
    creator = conn.execute("SELECT id FROM accounts_user WHERE email = 'ops@countinghouse.example'").fetchone()
    creator = creator[0] if creator else conn.execute("SELECT min(id) FROM accounts_user").fetchone()[0]
    conn.commit()
    expense_categories = [choice for choice, _ in Expense.Category.choices]
    wanted = max(0, TRANSACTIONS - charges_and_so_on)
    for index in range(wanted):
        order_id, number, currency, start = orders[index % len(orders)]
        day = start + timedelta(days=1 + index // len(orders))
        at = datetime(day.year, day.month, day.day, 10, tzinfo=UTC) + timedelta(minutes=rnd.randint(0, 400))
        if at >= NOW:
            at = NOW - timedelta(days=rnd.randint(1, 300))
            day = at.date()
        amount = Decimal(rnd.randint(500, 30000)) / 100
        category = expense_categories[index % len(expense_categories)]
        events.append((at, order_id, "expense", (order_id, number, currency, day, amount, category)))
    events.sort(key=lambda event: (event[0], event[1]))
    print(f"  {len(invoices):,} invoices and {len(events):,} postings generated in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip

    # Replay the events in order: numbers, amounts on the invoices, postings with running balances.
    transactions, legs, payments, allocations, notes, expenses = [], [], [], [], [], []
    history_items = []
    balances = ledger.balances
    ct_invoice, ct_payment, ct_note = (ledger.content_types[m] for m in ("invoice", "payment", "creditnote"))
    ct_expense = ledger.content_types["expense"]

    def post(kind, at, currency, customer, source_type, source_id, reference, description, entries, key=None):
        transaction_id = ledger.take("ledger_transaction")
        transactions.append((transaction_id, kind, description, reference, currency, source_id, key, at, None,
                             customer, source_type))  # fmt: skip
        for account, debit, credit in entries:
            balances[account] += debit - credit
            legs.append((ledger.take("ledger_leg"), debit, credit, balances[account], account, transaction_id))
        return transaction_id

    def revenue_entries(invoice, amounts, *, reverse: bool, tax: Decimal):
        by_category = defaultdict(Decimal)
        for (_, _, service_id, _, _, _, _), amount in zip(invoice["lines"], amounts, strict=True):
            by_category[categories[service_id]] += amount
        entries = []
        for category, amount in sorted(by_category.items()):
            if amount:
                account = accounts["revenue", category, invoice["currency"]]
                entries.append((account, amount, Decimal(0)) if reverse else (account, Decimal(0), amount))
        if tax:
            account = accounts["tax", invoice["currency"]]
            entries.append((account, tax, Decimal(0)) if reverse else (account, Decimal(0), tax))
        return entries

    def snapshot(invoice, at, kind="~", state=None):
        history_invoices.append((invoice, state or tuple(invoice[key] for key in STATE), at, kind))

    for invoice in invoices:
        invoice.update(amount_paid=Decimal("0.00"), amount_credited=Decimal("0.00"), paid_at=None)
        snapshot(invoice, invoice["created"], "+", ("draft", None, None, None, Decimal("0.00"), Decimal("0.00"), None))
        for line in invoice["lines"]:
            history_items.append((invoice["id"], line, invoice["created"]))

    for at, _, kind, data in events:
        if kind == "issue":
            invoice = data
            invoice["number"] = ledger.number("INV", at)
            entries = [(invoice["receivable"], invoice["total"], Decimal(0))]
            entries += revenue_entries(invoice, [line[5] for line in invoice["lines"]], reverse=False,
                                       tax=invoice["tax"])  # fmt: skip
            post("charge", at, invoice["currency"], invoice["customer"], ct_invoice, invoice["id"], invoice["number"],
                 f"Invoice {invoice['number']}, {invoice['period']:%B %Y}", entries,
                 key=f"invoice-issue:{invoice['id']}")  # fmt: skip
            snapshot(invoice, at)
        elif kind == "credit":
            invoice, full, note_subtotal, note_tax = data
            note_id = ledger.take("ledger_creditnote")
            number = ledger.number("CN", at)
            total = note_subtotal + note_tax
            parts = spread(note_subtotal, [line[5] for line in invoice["lines"]])
            entries = [(invoice["receivable"], Decimal(0), total)]
            entries += revenue_entries(invoice, parts, reverse=True, tax=note_tax)
            reason = "Service credit" if not full else "Billed in error"
            post("credit_note", at, invoice["currency"], invoice["customer"], ct_note, note_id, number,
                 f"Credit note {number} on {invoice['number']}: {reason}", entries,
                 key=f"credit-note:{note_id}")  # fmt: skip
            notes.append((note_id, number, invoice["currency"], note_subtotal, note_tax, total, Decimal("0.00"),
                          reason, full, at, "", None, invoice["customer"], invoice["id"]))  # fmt: skip
            invoice["amount_credited"] += total
            if full:
                invoice["status"] = "void"
            snapshot(invoice, at)
        elif kind == "payment":
            invoice, amount = data
            payment_id = ledger.take("ledger_payment")
            reference = f"BANK-{payment_id:08d}"
            method = "bank_transfer" if payment_id % 4 else "direct_debit"
            post("payment", at, invoice["currency"], invoice["customer"], ct_payment, payment_id, reference,
                 f"Payment {reference} ({'Bank transfer' if method == 'bank_transfer' else 'Direct debit'})",
                 [(accounts["cash", invoice["currency"]], amount, Decimal(0)),
                  (invoice["receivable"], Decimal(0), amount)])  # fmt: skip
            payments.append((payment_id, method, amount, invoice["currency"], at, reference, Decimal("0.00"), "",
                             at, None, invoice["customer"]))  # fmt: skip
            allocations.append((ledger.take("ledger_allocation"), amount, at, None, invoice["id"], payment_id))
            invoice["amount_paid"] += amount
            if invoice["amount_paid"] >= invoice["total"] - invoice["amount_credited"]:
                invoice["status"], invoice["paid_at"] = "paid", at
            snapshot(invoice, at)
        else:
            order_id, number, currency, day, amount, category = data
            expense_id = ledger.take("orders_expense")
            label = dict(Expense.Category.choices)[category]
            transaction_id = post(
                "expense", at, currency, None, ct_expense, expense_id, f"EXP-{expense_id}",
                f"Expense on {number}: {label}, Registrar", [(accounts["expense", category, currency], amount,
                Decimal(0)), (accounts["cash", currency], Decimal(0), amount)],
            )  # fmt: skip
            expenses.append((expense_id, amount, currency, day, "Registrar", category, "", "", "", "", True, "", at,
                             creator, transaction_id, order_id, None))  # fmt: skip
    # Past due and still open: overdue, as the daily reminder job marks them.
    for invoice in invoices:
        if invoice["status"] == "issued" and invoice["due_date"] < today:
            invoice["status"] = "overdue"
            snapshot(invoice, datetime(invoice["due_date"].year, invoice["due_date"].month,
                                       invoice["due_date"].day, 6, tzinfo=UTC) + timedelta(days=1))  # fmt: skip
    print(f"  replayed in {time.perf_counter() - started:.0f} s: {len(transactions):,} transactions, "
          f"{len(legs):,} legs", flush=True)  # fmt: skip

    # COPY, triggers off for this session only; checked afterwards.
    conn.execute("SET session_replication_role = replica")
    invoice_columns = ["id", "kind", "period", "status", "number", "currency", "subtotal", "tax", "total",
                       "amount_paid", "amount_credited", "issued_at", "due_date", "paid_at", "pdf", "created_at",
                       "updated_at", "billing_run_id", "created_by_id", "customer_id", "buyer_reference",
                       "einvoice", "facturx"]  # fmt: skip

    def invoice_row(inv, updated, state=None):
        status, number, issued_at, due_date, paid, credited, paid_at = state or tuple(inv[key] for key in STATE)
        return (inv["id"], "usage", inv["period"], status, number, inv["currency"], inv["subtotal"], inv["tax"],
                inv["total"], paid, credited, issued_at, due_date, paid_at, "", inv["created"], updated, None, None,
                inv["customer"], "", "", "")  # fmt: skip

    last_change = {}
    for invoice, _, at, _ in history_invoices:
        last_change[invoice["id"]] = at
    counts = {}
    counts["invoices"] = copy_rows(
        conn, "ledger_invoice", invoice_columns, (invoice_row(inv, last_change[inv["id"]]) for inv in invoices)
    )
    item_columns = ["id", "position", "source", "description", "quantity", "unit_price", "amount", "tax_rate",
                    "tax_amount", "invoice_id", "service_id", "vat_category", "vat_exemption_code",
                    "vat_exemption_reason"]  # fmt: skip
    names = dict(conn.execute("SELECT id, name FROM catalog_service").fetchall())

    def item_row(invoice, line):
        item_id, position, service_id, quantity, unit_price, amount, line_tax = line
        vat = "S" if invoice["rate"] else "E"
        return (item_id, position, "usage", names[service_id], quantity, unit_price, amount, invoice["rate"], line_tax,
                invoice["id"], service_id, vat, "" if invoice["rate"] else "VATEX-EU-O",
                "" if invoice["rate"] else "Not subject to VAT")  # fmt: skip

    counts["invoice items"] = copy_rows(
        conn, "ledger_invoiceitem", item_columns, (item_row(inv, line) for inv in invoices for line in inv["lines"])
    )
    history = ["history_date", "history_change_reason", "history_type", "history_user_id"]
    counts["invoice history"] = copy_rows(
        conn,
        "ledger_historicalinvoice",
        invoice_columns + history,
        (invoice_row(inv, at, state) + (at, None, kind, None) for inv, state, at, kind in history_invoices),
    )
    by_id = {inv["id"]: inv for inv in invoices}
    counts["invoice item history"] = copy_rows(
        conn,
        "ledger_historicalinvoiceitem",
        item_columns + history,
        (item_row(by_id[invoice_id], line) + (at, None, "+", None) for invoice_id, line, at in history_items),
    )
    note_columns = ["id", "number", "currency", "subtotal", "tax", "total", "unallocated", "reason", "full",
                    "issued_at", "pdf", "created_by_id", "customer_id", "invoice_id",
                    "einvoice", "facturx"]  # fmt: skip
    notes = [row + ("", "") for row in notes]
    counts["credit notes"] = copy_rows(conn, "ledger_creditnote", note_columns, notes)
    copy_rows(conn, "ledger_historicalcreditnote", note_columns + history,
              (row + (row[9], None, "+", None) for row in notes))  # fmt: skip
    payment_columns = ["id", "method", "amount", "currency", "received_at", "bank_reference", "unallocated", "note",
                       "created_at", "created_by_id", "customer_id"]  # fmt: skip
    counts["payments"] = copy_rows(conn, "ledger_payment", payment_columns, payments)
    copy_rows(conn, "ledger_historicalpayment", payment_columns + history,
              (row + (row[4], None, "+", None) for row in payments))  # fmt: skip
    allocation_columns = ["id", "amount", "created_at", "credit_note_id", "invoice_id", "payment_id"]
    counts["allocations"] = copy_rows(conn, "ledger_allocation", allocation_columns, allocations)
    copy_rows(conn, "ledger_historicalallocation", allocation_columns + history,
              (row + (row[2], None, "+", None) for row in allocations))  # fmt: skip
    counts["transactions"] = copy_rows(
        conn,
        "ledger_transaction",
        ["id", "kind", "description", "reference", "currency", "source_id", "idempotency_key", "created_at",
         "created_by_id", "customer_id", "source_type_id"],
        transactions,
    )  # fmt: skip
    counts["legs"] = copy_rows(
        conn, "ledger_leg", ["id", "debit", "credit", "balance_after", "account_id", "transaction_id"], legs
    )
    counts["expenses"] = copy_rows(
        conn,
        "orders_expense",
        ["id", "amount", "currency", "date", "payee", "category", "reference", "receipt", "receipt_name",
         "receipt_kind", "paid", "reason", "created_at", "created_by_id", "ledger_transaction_id", "order_id",
         "reverses_id"],
        expenses,
    )  # fmt: skip
    with conn.cursor() as cursor:
        cursor.executemany("UPDATE ledger_account SET balance = %s WHERE id = %s",
                           [(balance, pk) for pk, balance in balances.items()])  # fmt: skip
        cursor.executemany(
            "INSERT INTO ledger_documentsequence (series, year, last_number) VALUES (%s, %s, %s) "
            "ON CONFLICT (series, year) DO UPDATE SET last_number = excluded.last_number",
            [(series, year, number) for (series, year), number in ledger.sequences.items()],
        )
    for table in ledger.next_id:
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    for table in ("ledger_historicalinvoice", "ledger_historicalinvoiceitem", "ledger_historicalcreditnote",
                  "ledger_historicalpayment", "ledger_historicalallocation"):  # fmt: skip
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'history_id'), (SELECT max(history_id) FROM {table}))"
        )
    conn.execute("SET session_replication_role = DEFAULT")
    conn.commit()
    check_ledger(conn)
    conn.close()
    print(f"  ledger written in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{count:,} {name}" for name, count in counts.items()), flush=True)  # fmt: skip
    return counts


def spread(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """A partial credit note over its invoice's lines in proportion (ledger.credit_shares' rule, one tax rate)."""
    gross = sum(weights, Decimal(0))
    parts, given = [], Decimal(0)
    for position, weight in enumerate(weights):
        part = amount - given if position == len(weights) - 1 else _round(amount * weight / gross)
        given += part
        parts.append(part)
    return parts


def check_ledger(conn) -> None:
    """What the triggers and the reconciliation hold, checked over the whole journal in SQL."""
    unbalanced = conn.execute(
        "SELECT count(*) FROM (SELECT transaction_id FROM ledger_leg GROUP BY transaction_id "
        "HAVING sum(debit) <> sum(credit) OR count(*) < 2) AS t"
    ).fetchone()[0]
    off = conn.execute(
        "SELECT count(*) FROM ledger_account a LEFT JOIN (SELECT account_id, sum(debit - credit) AS s FROM ledger_leg "
        "GROUP BY account_id) l ON l.account_id = a.id WHERE a.balance <> coalesce(l.s, 0)"
    ).fetchone()[0]
    chain = conn.execute(
        "SELECT count(*) FROM (SELECT balance_after, sum(debit - credit) OVER (PARTITION BY account_id ORDER BY id) "
        "AS running FROM ledger_leg) AS l WHERE balance_after <> running"
    ).fetchone()[0]
    invoices = conn.execute(
        "SELECT count(*) FROM ledger_invoice i LEFT JOIN (SELECT invoice_id, sum(amount) AS s FROM ledger_allocation "
        "GROUP BY invoice_id) a ON a.invoice_id = i.id WHERE i.amount_paid <> coalesce(a.s, 0)"
    ).fetchone()[0]
    receivables = conn.execute(
        "SELECT count(*) FROM ledger_account a JOIN (SELECT customer_id, sum(total - amount_paid - amount_credited) "
        "AS open FROM ledger_invoice WHERE number IS NOT NULL GROUP BY customer_id) i ON i.customer_id = a.customer_id "
        "JOIN catalog_customer c ON c.id = a.customer_id "
        "WHERE a.kind = 'receivable' AND c.client_id LIKE 'CUST-%' AND a.balance <> i.open"
    ).fetchone()[0]
    print(f"  checked: {unbalanced} unbalanced transactions, {off} accounts off their legs, {chain} broken "
          f"balance_after chains, {invoices} invoices off their allocations, {receivables} receivables off "
          f"their open invoices", flush=True)  # fmt: skip
    if unbalanced or off or chain or invoices or receivables:
        raise SystemExit("the generated ledger is inconsistent; not used")


def rebuild_rollups(url: str, timeout: float) -> None:
    """The product's own rebuild of every rollup the ledger keeps (after rows went in behind its services)."""
    commands = Path(__file__).resolve().parents[1] / "ledger" / "management" / "commands"
    if (commands / "rebuild_ledger_monthly_totals.py").exists():
        started = time.perf_counter()
        run_child([sys.executable, "manage.py", "rebuild_ledger_monthly_totals"], env=django_env(url), timeout=timeout)
        print(f"  ledger monthly totals rebuilt in {time.perf_counter() - started:.0f} s", flush=True)


def build(name: str, args) -> str:
    url = database_url(name)
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    whole = time.perf_counter()
    started = time.perf_counter()
    prepare(url, args.timeout)
    print(f"  migrated and seeded in {time.perf_counter() - started:.0f} s", flush=True)
    setup_django(url)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as workdir:
        build_catalog_and_usage(url, args, Path(workdir))
    build_orders(url)
    build_ledger(url)
    finish(url, args)
    print(f"  built in {time.perf_counter() - whole:.0f} s", flush=True)
    return url


def finish(url: str, args) -> None:
    rebuild_rollups(url, args.timeout)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        print(f"  VACUUM (ANALYZE) in {time.perf_counter() - started:.0f} s", flush=True)


def sizes(url: str) -> dict[str, int]:
    tables = {
        "customers": "catalog_customer", "invoices": "ledger_invoice", "invoice items": "ledger_invoiceitem",
        "payments": "ledger_payment", "credit notes": "ledger_creditnote", "journal transactions": "ledger_transaction",
        "legs": "ledger_leg", "usage records": "usage_usagerecord", "monthly summaries": "usage_monthlysummary",
        "orders": "orders_order",
    }  # fmt: skip
    with psycopg.connect(url, autocommit=True) as conn:
        return {label: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for label, table in tables.items()}


# --- The reads --------------------------------------------------------------------------------------------------

ROLES = {"finance": "finance@countinghouse.example", "cs": "cs@countinghouse.example"}
ROLE_NAMES = {"finance": "Finance", "cs": "CSM"}
REPORTS = ["aged-receivables", "invoice-register", "payments-register", "revenue", "tax"]


def reads() -> list[tuple[str, str, str, int]]:
    """(role, what, path, limit in ms) of every read timed."""
    from django.db.models import Count

    from accounts.models import User
    from catalog.models import Customer
    from ledger.models import Account

    cs_user = User.objects.get(email=ROLES["cs"])
    busiest = (
        Account.objects.filter(kind=Account.Kind.RECEIVABLE, customer__csm=cs_user)
        .annotate(legs_count=Count("legs"))
        .order_by("-legs_count", "pk")
        .values_list("customer_id", flat=True)
        .first()
    ) or Customer.objects.filter(csm=cs_user).values_list("pk", flat=True).first()
    rows = []
    for role in ROLES:
        rows.append((role, "dashboard", "/admin/", DASHBOARD_LIMIT_MS))
        for name in REPORTS:
            rows.append((role, f"{name} page", f"/admin/reports/{name}/", REPORT_LIMIT_MS))
            rows.append((role, f"{name} API", f"/api/reports/{name}", REPORT_LIMIT_MS))
        rows.append((role, "partner revenue page", "/admin/partner-revenue/", REPORT_LIMIT_MS))
        rows.append((role, "partner revenue API", "/api/reports/partner-revenue", REPORT_LIMIT_MS))
        rows.append((role, "monthly usage report", "/admin/usage/monthlysummary/report/", REPORT_LIMIT_MS))
        rows.append((role, "customer statement page", f"/admin/catalog/customer/{busiest}/statement/",
                     REPORT_LIMIT_MS))  # fmt: skip
        rows.append((role, "customer statement API", f"/api/customers/{busiest}/statement", REPORT_LIMIT_MS))
    return rows


def run(url: str, args) -> list[tuple]:
    """Each read: a warm-up, then --runs timed requests; (role, what, median, max, statement counts, status)."""
    static_root = tempfile.mkdtemp(prefix="bench_scale_static_")
    os.environ["STATIC_ROOT"] = static_root
    setup_django(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from accounts.models import User

    call_command("collectstatic", "--no-input", verbosity=0)
    logging.getLogger("django.request").setLevel(logging.ERROR)  # a role's 403 is expected, and reported as such
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    clients = {}
    for role, email in ROLES.items():
        clients[role] = Client()
        clients[role].force_login(User.objects.get(email=email))
    results = []
    for role, what, path, limit in reads():
        if args.only and args.only not in f"{role} {what}":
            continue
        client = clients[role]
        started = time.perf_counter()
        response = client.get(path)  # warm-up
        warm_up = time.perf_counter() - started
        if response.status_code != 200:
            print(f"  {ROLE_NAMES[role]:<8} {what:<28} HTTP {response.status_code} {path}", flush=True)
            results.append((ROLE_NAMES[role], what, None, None, [], response.status_code, limit))
            continue
        timings, queries = [], set()
        for _ in range(args.runs if warm_up < SLOW_S else 1):  # a read of many seconds: once more is enough
            with QueryCounter(connection) as counter:
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
            queries.add(counter.total)
        median = statistics.median(timings)
        results.append((ROLE_NAMES[role], what, median, max(timings), sorted(queries), 200, limit))
        print(f"  {ROLE_NAMES[role]:<8} {what:<28} {median:8.1f} ms (max {max(timings):7.1f}, "
              f"first {warm_up * 1000:.0f})  {sorted(queries)} queries  load {load_average()}", flush=True)  # fmt: skip
        if args.explain:
            explain(connection, client, path)
    connection.close()
    shutil.rmtree(static_root, ignore_errors=True)
    return results


def explain(connection, client, path: str) -> None:
    """The statements of one request, slowest first, each with its time (to find what to index or roll up)."""
    timed = []

    def wrapper(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append(((time.perf_counter() - started) * 1000, sql))

    with connection.execute_wrapper(wrapper):
        client.get(path)
    for ms, sql in sorted(timed, reverse=True)[:5]:
        print(f"      {ms:7.1f} ms  {sql[:300]}")


def small_counts(args) -> dict[tuple[str, str], list[int]]:
    """The same reads on the demo database alone: their statement counts."""
    from common import fresh_database

    with fresh_database("postgres", timeout=args.timeout) as url:
        child = [sys.executable, str(Path(__file__).resolve()), "--counts-only", "--database", url.rsplit("/", 1)[1]]
        _, _, output = run_child([*child, "--runs", str(args.runs)], env=dict(os.environ), timeout=args.timeout)
    counts = {}
    for line in output.splitlines():
        if line.startswith("COUNT\t"):
            _, role, what, numbers, median = line.split("\t")
            counts[role, what] = ([int(n) for n in numbers.split(",") if n], float(median))
    return counts


def report(results: list[tuple], small: dict, data: dict, args) -> None:
    print("\ndata: " + ", ".join(f"{count:,} {label}" for label, count in data.items()))
    print(f"\n| page | who | median (of {args.runs}) | max | queries | on the demo data: queries, median | target |")
    print("|---|---|---|---|---|---|---|")
    missed = 0
    for who, what, median, worst, queries, status, limit in results:
        if median is None:
            shown = "not allowed (403)" if status == 403 else f"HTTP {status}"
            print(f"| {what} | {who} | {shown} | | | | |")
            continue
        flag = "**" if median >= limit else ""
        missed += median >= limit
        role = "finance" if who == "Finance" else "cs"
        demo = small.get((role, what))
        shown = f"{'/'.join(map(str, demo[0]))}, {demo[1]:,.1f} ms" if demo else "–"
        print(f"| {what} | {who} | {flag}{median:,.1f} ms{flag} | {worst:,.1f} ms | {'/'.join(map(str, queries))} "
              f"| {shown} | < {limit} ms |")  # fmt: skip
    allowed = [row for row in results if row[2] is not None]
    print(f"\n{len(allowed) - missed} of {len(allowed)} reads under their target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="the database's name (default bench_scale_<pid>)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--reuse", action="store_true", help="reuse --database if it already holds the data")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--rows-per-month", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-small", action="store_true", help="do not count the statements on the demo data")
    parser.add_argument("--only", default="", help="time only the reads whose role and name hold this text")
    parser.add_argument("--explain", action="store_true", help="print each read's slowest statements")
    parser.add_argument("--counts-only", action="store_true", help=argparse.SUPPRESS)  # the demo database's child
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    if args.counts_only:
        for who, what, median, _, queries, _, _ in run(database_url(args.database), args):
            role = "finance" if who == "Finance" else "cs"
            print(f"COUNT\t{role}\t{what}\t{','.join(map(str, queries))}\t{median or 0:.1f}")
        return
    name = args.database or f"bench_scale_{os.getpid()}"
    whole = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores; load average at start {load_average()}", flush=True)
    url = database_url(name)
    try:
        data = sizes(url) if args.reuse and _exists(name) else None
        has_usage = data and data["usage records"] >= args.rows_per_month * args.months and data["orders"] >= ORDERS
        if has_usage and data["journal transactions"] >= TRANSACTIONS:
            started = time.perf_counter()
            run_child([sys.executable, "manage.py", "migrate", "-v0"], env=django_env(url), timeout=args.timeout)
            print(f"reusing {name}; migrated in {time.perf_counter() - started:.0f} s", flush=True)
        elif has_usage:  # an earlier build stopped before the ledger (written in one transaction)
            print(f"reusing {name}'s usage and orders; writing the ledger", flush=True)
            run_child([sys.executable, "manage.py", "migrate", "-v0"], env=django_env(url), timeout=args.timeout)
            setup_django(url)
            build_ledger(url)
            finish(url, args)
            data = sizes(url)
        else:
            print(f"building {name}", flush=True)
            build(name, args)
            data = sizes(url)
        print("data: " + ", ".join(f"{count:,} {label}" for label, count in data.items()), flush=True)
        if args.build_only:
            return
        results = run(url, args)
        small = {} if args.skip_small else small_counts(args)
        report(results, small, data, args)
    finally:
        if not args.keep:
            _close_django_connections()
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        print(f"whole run {time.perf_counter() - whole:.0f} s; load average at end {load_average()}")


def _exists(name: str) -> bool:
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        return bool(admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())


if __name__ == "__main__":
    main()
