"""Time the month-end (issue 4, "Speed"): 10,000 customers, 1,000,000 usage records in the month.

Usage: .venv/bin/python bench/month_end.py [--customers 10000] [--rows 1000000] [--small-rows 100000]
                                           [--seed 42] [--runs 3] [--profile] [--timeout 900]
                                           [--tiered-share 0.33]

On a fresh PostgreSQL database bench_usage_<pid> (migrated only, no demo data; dropped at the end) it
1. builds a catalog with bulk_create: 8 services, --customers customers (70 % EUR with 20 % tax, 30 %
   USD exempt), each with 2 to 6 services priced; about 30 % of the agreements carry a monthly fee and an
   allowance, about 20 % of the pairs change price mid-month (agreements to 15 Sep, 16 Sep – 15 Oct, from
   16 Oct); with --tiered-share S, a share S of the other pairs is priced by graduated, volume or package
   agreements (in turn) instead of a unit price, the tiered ones with three tiers. bulk_create sends no
   post_save, so it also opens every customer's books as the ledger's receiver would: the receivable
   account and the billing configuration (with its history row);
2. writes two usage files (long-tail customer weights, service mix and quantities as
   bench/generate_usage.py, service times in time order): --small-rows records for 2026-09 and --rows
   for 2026-10, same customers and agreements, and imports each with `manage.py import_usage` in a child
   process (the real pipeline, which keeps the monthly summaries);
3. runs VACUUM (ANALYZE), as autovacuum would have done in the days between import and month-end, so
   that it does not run during the timings;
4. times the single SQL aggregate over each month's records (`SELECT customer_id, service_id,
   unit_price, sum(quantity), count(*) ... WHERE period = ... GROUP BY ...`, all rows fetched) --runs
   times, and prints its EXPLAIN (ANALYZE, BUFFERS) for 2026-10;
5. runs ledger.services.month_end.month_end_run(period=2026-09), then (period=2026-10) in this process,
   DEBUG off, counting and timing every statement it sends (an execute_wrapper) and the time spent in
   its phases (the month_end module's calls to usage_close_periods, _previews, usage_month_report,
   _insert_with_lines (with insert_rows and history_record_created inside it) and _route are
   wrapped with timers); with --profile the 2026-10 run is under
   cProfile (slower) and the top functions are printed;
6. checks the result: one invoice per customer with something to bill, the monthly report's quantities
   add up to the records' and its amounts to the invoices' subtotals;
7. the write floor: the rows the 2026-10 run wrote (closed periods, invoices, lines and their history
   rows) COPY'd back into their tables inside a transaction that is rolled back.
With --worker N, 2026-10 is billed the way the schedule bills it: month_end_task sent to Redis and fanned
out one task per customer to a real Celery worker of N processes, timed until the run is marked finished.
With --approval-share S, a share S of the customers need approval (rule "cs_or_sales"): month-end then
submits their bills (approvals.services.approval_submit_many, one batch per chunk). By default none do, and no customer
has auto_issue: the run makes drafts only, PDFs apart.
With --auto-issue every customer's bills are issued at once (auto_issue, issue 15's measure): the run takes the
numbers, posts the charges and adds the running totals a chunk at a time (ledger.services.invoices.invoices_issue)
and leaves each chunk's PDFs to a task after commit; with --einvoices every customer also receives Factur-X, so
each invoice's UBL and CII are made and checked in the run and made again, with the PDF, by that task. The tasks
go to Redis (REDIS_URL, default redis://127.0.0.1:6379/9); once the run has finished, the time until a worker of
2 processes (the --worker one, or one started then) has stored every invoice's files is timed apart, and the
files are counted; for 2026-10 only (2026-09's tasks are dropped).
Children and in-process steps run under --timeout seconds each.
"""

import argparse
import bisect
import calendar
import cProfile
import io
import itertools
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
from common import QueryCounter, fresh_database, load_average, setup_django, time_limit
from import_usage import django_env, timed_import

# code, name, category, unit label, list unit price, allowance when the agreement has a fee, share of records
SERVICES = [
    ("kyc_basic", "KYC basic check", "kyc", "check", "0.90", "20", 0.20),
    ("kyc_enhanced", "KYC enhanced check", "kyc", "check", "2.40", "5", 0.05),
    ("aml_screening", "AML screening", "aml", "screening", "0.35", "50", 0.25),
    ("aml_monitoring", "AML ongoing monitoring", "aml", "profile-day", "0.015", "20000", 0.10),
    ("api_call", "API call", "api", "call", "0.002", "20000", 0.22),
    ("doc_verification", "Document verification", "documents", "document", "1.10", "10", 0.10),
    ("company_lookup", "Company register lookup", "formation", "lookup", "0.50", "10", 0.05),
    ("sms_otp", "SMS one-time code", "other", "message", "0.04", "100", 0.03),
]
# quantity per record, per service (as bench/generate_usage.py)
QUANTITY = {
    "kyc_basic": lambda rnd: 1 if rnd.random() < 0.9 else rnd.randint(2, 5),
    "kyc_enhanced": lambda rnd: 1,
    "aml_screening": lambda rnd: 1 if rnd.random() < 0.7 else rnd.randint(2, 20),
    "aml_monitoring": lambda rnd: rnd.randint(50, 5000),
    "api_call": lambda rnd: rnd.randint(1, 2000),
    "doc_verification": lambda rnd: rnd.randint(1, 3),
    "company_lookup": lambda rnd: 1,
    "sms_otp": lambda rnd: rnd.randint(1, 10),
}
FEES = [Decimal(fee) for fee in ("29.00", "49.00", "99.00", "199.00", "499.00")]
YEAR_START = date(2026, 1, 1)
CHANGES = [(YEAR_START, date(2026, 9, 15)), (date(2026, 9, 16), date(2026, 10, 15)), (date(2026, 10, 16), None)]
SMALL_PERIOD, BIG_PERIOD = date(2026, 9, 1), date(2026, 10, 1)
SIX_PLACES = Decimal("0.000001")


def _tiers(list_price: Decimal) -> list[tuple[Decimal | None, Decimal, Decimal]]:
    """Three tiers falling from the list price: (up to, unit price, flat fee)."""
    return [
        (Decimal(100), list_price, Decimal(0)),
        (Decimal(1_000), (list_price * Decimal("0.8")).quantize(SIX_PLACES), Decimal("5.00")),
        (None, (list_price * Decimal("0.6")).quantize(SIX_PLACES), Decimal(0)),
    ]


OTHER_MODELS = ["graduated", "volume", "package"]


def build_catalog(
    *,
    customers: int,
    seed: int,
    approval_share: float = 0.0,
    price_changes: float = 0.2,
    tiered_share: float = 0.0,
    auto_issue: bool = False,
    einvoices: bool = False,
) -> dict[str, list[int]]:
    """Services, customers, agreements and books in bulk; returns each client id's service indexes.

    Services whose code already exists (the demo's) are reused; `price_changes` is the share of the pairs whose
    price changes mid-month (CHANGES); `tiered_share` the share of the others priced graduated, volume or package."""
    from django.db import transaction
    from simple_history.utils import bulk_create_with_history

    from catalog.models import Customer, PriceAgreement, PriceTier, Service
    from ledger.models import Account, BillingConfig

    rnd = random.Random(seed)
    with transaction.atomic():
        if approval_share:
            # Someone must be able to approve their bills, or submitting them is refused (no_approver).
            from django.contrib.auth.models import Group

            from accounts.models import User
            from accounts.roles import Role

            approver = User.objects.create_user("sales@bench.example", full_name="Bench Sales", is_staff=True)
            approver.groups.add(Group.objects.get(name=Role.SALES))
        existing = {service.code: service for service in Service.objects.filter(code__in=[row[0] for row in SERVICES])}
        created_services = Service.objects.bulk_create(
            Service(code=code, name=name, category=category, unit_label=unit, description=f"{name}.")
            for code, name, category, unit, *_ in SERVICES
            if code not in existing
        )
        existing |= {service.code: service for service in created_services}
        services = [existing[row[0]] for row in SERVICES]
        rows = []
        for number in range(1, customers + 1):
            currency = "EUR" if rnd.random() < 0.7 else "USD"
            rows.append(
                Customer(
                    client_id=f"CUST-{number:05d}",
                    name=f"Customer {number:05d}",
                    legal_name=f"Customer {number:05d} Ltd",
                    street_line1=f"{number} Market Street",
                    postal_code=f"{1000 + number % 9000}",
                    city="Exampletown",
                    country="GB" if currency == "EUR" else "US",
                    billing_email=f"ap@customer{number:05d}.example",
                    einvoice_delivery="facturx" if einvoices else "pdf",
                    currency=currency,
                    start_date=YEAR_START,
                )
            )
        created = Customer.objects.bulk_create(rows, batch_size=2000)
        agreements, priced, tier_tables = [], {}, []
        models = itertools.cycle(OTHER_MODELS)
        for customer in created:
            chosen = sorted(rnd.sample(range(len(SERVICES)), rnd.randint(2, 6)))
            priced[customer.client_id] = chosen
            discount = Decimal(1) - Decimal(rnd.randint(0, 20)) / 100
            for index in chosen:
                price = (Decimal(SERVICES[index][4]) * discount).quantize(SIX_PLACES)
                fee, allowance = Decimal(0), Decimal(0)
                if rnd.random() < 0.3:
                    fee, allowance = rnd.choice(FEES), Decimal(SERVICES[index][5])
                spans = CHANGES if rnd.random() < price_changes else [(YEAR_START, None)]
                if len(spans) == 1 and rnd.random() < tiered_share:
                    model = next(models)
                    agreement = PriceAgreement(
                        customer=customer,
                        service=services[index],
                        pricing_model=model,
                        unit_price=Decimal(0),
                        package_size=Decimal(100) if model == "package" else None,
                        package_price=(price * 90).quantize(SIX_PLACES) if model == "package" else None,
                        included_quantity=allowance,
                        monthly_fee=fee,
                        valid_from=YEAR_START,
                    )
                    agreements.append(agreement)
                    if model != "package":
                        tier_tables.append((agreement, _tiers(price)))
                    continue
                for step, (valid_from, valid_to) in enumerate(spans):
                    agreements.append(
                        PriceAgreement(
                            customer=customer,
                            service=services[index],
                            unit_price=(price * Decimal("0.95") ** step).quantize(SIX_PLACES),
                            included_quantity=allowance,
                            monthly_fee=fee,
                            valid_from=valid_from,
                            valid_to=valid_to,
                        )
                    )
        PriceAgreement.objects.bulk_create(agreements, batch_size=5000)
        PriceTier.objects.bulk_create(
            (
                PriceTier(agreement=agreement, position=position, up_to=up_to, unit_price=unit_price, flat_fee=fee)
                for agreement, tiers in tier_tables
                for position, (up_to, unit_price, fee) in enumerate(tiers, start=1)
            ),
            batch_size=5000,
        )
        # What ledger's post_save receiver (open_customer_books) does for each new customer.
        Account.objects.bulk_create(
            (
                Account(
                    code=f"receivable:{customer.pk}",
                    name=f"Receivable — {customer.name}",
                    kind=Account.Kind.RECEIVABLE,
                    currency=customer.currency,
                    customer=customer,
                )
                for customer in created
            ),
            batch_size=5000,
        )
        bulk_create_with_history(
            [
                BillingConfig(
                    customer=customer,
                    invoice_email=customer.billing_email,
                    tax_rate=Decimal("0.2") if customer.currency == "EUR" else Decimal(0),
                    tax_exempt=customer.currency != "EUR",
                    tax_exempt_reason="" if customer.currency == "EUR" else "Outside the EU VAT area (reverse charge)",
                    payment_terms_days=rnd.choice((14, 30)),
                    auto_issue=auto_issue,
                    approval_rule=BillingConfig.ApprovalRule.CS_OR_SALES
                    if approval_share and rnd.random() < approval_share
                    else BillingConfig.ApprovalRule.NONE,
                )
                for customer in created
            ],
            BillingConfig,
            batch_size=5000,
        )
    other = sum(1 for agreement in agreements if agreement.pricing_model != "per_unit")
    print(
        f"catalog: {len(services)} services, {len(created):,} customers, {len(agreements):,} agreements "
        f"({other:,} graduated, volume or package), {len(created):,} receivable accounts and billing configurations",
        flush=True,
    )
    return priced


def write_usage(path: Path, *, priced: dict[str, list[int]], rows: int, period: date, seed: int) -> None:
    """A usage file for `period`: long-tail customers (shuffled), each record one of the customer's services."""
    rnd = random.Random(seed)
    client_ids = list(priced)
    weights = [1 / (1 + index / 20) for index in range(len(client_ids))]
    rnd.shuffle(weights)
    cumulative = list(itertools.accumulate(weights))
    service_cumulative = {
        client_id: (indexes, list(itertools.accumulate(SERVICES[index][6] for index in indexes)))
        for client_id, indexes in priced.items()
    }
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    seconds = calendar.monthrange(period.year, period.month)[1] * 86400
    offsets = sorted(rnd.randrange(seconds) for _ in range(rows))
    clients = rnd.choices(client_ids, cum_weights=cumulative, k=rows)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("serviceName,clientId,quantity,serviceTime\n")
        lines, last_offset, stamp = [], None, ""
        for offset, client_id in zip(offsets, clients, strict=True):
            if offset != last_offset:
                last_offset, stamp = offset, (start + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%SZ")
            indexes, shares = service_cumulative[client_id]
            code = SERVICES[indexes[bisect.bisect(shares, rnd.random() * shares[-1])]][0]
            lines.append(f"{code},{client_id},{QUANTITY[code](rnd)},{stamp}\n")
            if len(lines) >= 10000:
                out.write("".join(lines))
                lines.clear()
        out.write("".join(lines))


AGGREGATE = (
    "SELECT customer_id, service_id, unit_price, sum(quantity), count(*) FROM usage_usagerecord "
    "WHERE period = %s GROUP BY customer_id, service_id, unit_price"
)


def time_aggregate(url: str, period: date, runs: int) -> tuple[list[float], int]:
    timings = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(runs):
            started = time.perf_counter()
            rows = conn.execute(AGGREGATE, (period,)).fetchall()
            timings.append(time.perf_counter() - started)
    return timings, len(rows)


def explain_aggregate(url: str, period: date) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {AGGREGATE}", (period,)).fetchall()
    return "\n".join(row[0] for row in plan)


# The rows one month-end writes, per table, in insert order (children after parents).
WRITTEN = [
    ("usage_closedperiod", "period = %(period)s"),
    ("usage_historicalclosedperiod", "period = %(period)s"),
    ("ledger_invoice", "period = %(period)s AND kind = 'usage'"),
    ("ledger_historicalinvoice", "period = %(period)s AND kind = 'usage'"),
    (
        "ledger_invoiceitem",
        "invoice_id IN (SELECT id FROM ledger_invoice WHERE period = %(period)s AND kind = 'usage')",
    ),
    (
        "ledger_historicalinvoiceitem",
        "invoice_id IN (SELECT id FROM ledger_invoice WHERE period = %(period)s AND kind = 'usage')",
    ),
]


def write_floor(url: str, period: date) -> list[tuple[str, int, float]]:
    """COPY the very rows the month-end wrote back into their tables (indexes, checks and foreign keys
    checked), then roll back: what PostgreSQL alone needs for the writes, whatever Python does.

    Inside one transaction the rows are dumped, deleted (not timed) and copied in again (timed)."""
    timings = []
    with psycopg.connect(url) as conn:
        literal = f"'{period.isoformat()}'"
        dumps = {}
        for table, where in WRITTEN:
            dump, rows = bytearray(), f"SELECT * FROM {table} WHERE {where % {'period': literal}}"
            with conn.cursor().copy(f"COPY ({rows}) TO STDOUT") as copy:
                for block in copy:
                    dump += block
            dumps[table] = dump
        for table, where in reversed(WRITTEN):
            conn.execute(f"DELETE FROM {table} WHERE {where % {'period': literal}}")
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign keys are checked inside the timing
        for table, _ in WRITTEN:
            started = time.perf_counter()
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                view = memoryview(dumps[table])
                for offset in range(0, len(view), 1024 * 1024):
                    copy.write(view[offset : offset + 1024 * 1024])
            timings.append((table, dumps[table].count(b"\n"), time.perf_counter() - started))
        conn.rollback()
    return timings


class PhaseTimers:
    """Wrap some of ledger.services.month_end's module-level callees with timers (instrumentation only)."""

    NAMES = (
        "usage_close_periods",
        "_previews",
        "usage_month_report",
        "_insert_with_lines",
        "insert_rows",
        "history_record_created",
        "_route",
    )
    NESTED = {"usage_month_report", "insert_rows", "history_record_created"}  # called from the phases above

    def __init__(self) -> None:
        self.seconds: Counter = Counter()
        self.calls: Counter = Counter()
        self._saved: dict = {}

    def _wrap(self, name, function):
        def timed(*args, **kwargs):
            key = name
            if name in {"insert_rows", "history_record_created"}:
                key = f"{name}({args[0].__name__})"
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - started
                self.calls[key] += 1

        return timed

    def __enter__(self) -> "PhaseTimers":
        from ledger.services import month_end

        for name in self.NAMES:
            if not hasattr(month_end, name):  # the module changed: time what is still there
                continue
            self._saved[name] = getattr(month_end, name)
            setattr(month_end, name, self._wrap(name, self._saved[name]))
        return self

    def __exit__(self, *exc) -> None:
        from ledger.services import month_end

        for name, function in self._saved.items():
            setattr(month_end, name, function)


def run_month_end(period: date, *, timeout: float, profile: bool) -> dict:
    from django.db import connection

    from ledger.services.month_end import month_end_run

    profiler = cProfile.Profile() if profile else None
    with (
        time_limit(timeout, f"month-end {period:%Y-%m}"),
        QueryCounter(connection) as queries,
        PhaseTimers() as phases,
    ):
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        run = month_end_run(actor=None, period=period)
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    profile_text = ""
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        out.write("\n--- by own time ---\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        profile_text = out.getvalue()
    return {
        "run": run,
        "seconds": elapsed,
        "queries": queries,
        "phases": phases,
        "profile": profile_text,
        "documents": None,
    }


@contextmanager
def celery_worker(url: str, concurrency: int, timeout: float, *, purge: bool = True):
    """A real worker (prefork, `concurrency` processes, as the Procfile runs it), answering; the queue emptied
    first when `purge`."""
    from billing_project.celery import app as celery_app

    if purge:
        celery_app.control.purge()
    hostname = f"bench-month-end-{os.getpid()}-{time.monotonic_ns()}@localhost"
    env = {**django_env(url), "REDIS_URL": os.environ["REDIS_URL"], "DATABASE_CONN_MAX_AGE": "60"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "billing_project", "worker", f"--concurrency={concurrency}",
         "-n", hostname, "--without-gossip", "--without-mingle", "--loglevel=WARNING"],
        cwd=Path(__file__).resolve().parent.parent, env=env,
    )  # fmt: skip
    try:
        with time_limit(timeout, "starting the worker"):
            while not celery_app.control.ping(destination=[hostname], timeout=0.5):
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited with {worker.returncode}")
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def run_month_end_on_worker(url: str, period: date, *, timeout: float, concurrency: int, documents: bool) -> dict:
    """The scheduled path: month_end_task on Redis, fanned out one task per batch of customers to a real worker,
    timed from sending the task until the run is marked finished; with `documents`, then until every invoice it
    issued has its files."""
    from ledger.models import BillingRun
    from ledger.tasks import month_end_task

    with celery_worker(url, concurrency, timeout):
        with time_limit(timeout, f"month-end {period:%Y-%m} on the worker"):
            started = time.perf_counter()
            month_end_task.delay(period.isoformat())
            while True:
                run = BillingRun.objects.filter(period=period).order_by("-pk").first()
                if run is not None and run.finished_at is not None:
                    break
                time.sleep(0.1)
            elapsed = time.perf_counter() - started
        stored = wait_for_documents(period, timeout) if documents else None
    return {
        "run": run,
        "seconds": elapsed,
        "queries": None,
        "phases": None,
        "profile": "",
        "worker": concurrency,
        "documents": stored,
    }


def wait_for_documents(period: date, timeout: float) -> dict:
    """Seconds until every invoice issued for `period` has its PDF stored (the tasks after each batch), and the
    files counted."""
    from ledger.models import Invoice

    issued = Invoice.objects.filter(period=period, kind=Invoice.Kind.USAGE, number__isnull=False)
    with time_limit(timeout, f"the files of {period:%Y-%m}"):
        started = time.perf_counter()
        while issued.filter(pdf="").exists():
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    return {
        "seconds": elapsed,
        "issued": issued.count(),
        "pdf": issued.exclude(pdf="").count(),
        "ubl": issued.exclude(einvoice="").count(),
        "facturx": issued.exclude(facturx="").count(),
    }


def documents_on_worker(url: str, period: date, *, timeout: float, concurrency: int = 2) -> dict:
    """The files a run in this process left to tasks on Redis, made by a worker started now."""
    with celery_worker(url, concurrency, timeout, purge=False):
        return wait_for_documents(period, timeout)


def check(period: date) -> dict:
    from django.db import connection
    from django.db.models import Sum

    from ledger.models import Invoice, InvoiceItem
    from ledger.services.month_end import billable_customer_ids
    from ledger.services.reconciliation import ledger_differences
    from usage.report_selectors import usage_month_report

    invoices = Invoice.objects.filter(period=period, kind=Invoice.Kind.USAGE)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(sum(quantity), 0), count(*) FROM usage_usagerecord WHERE period = %s", [period])
        recorded, records = cursor.fetchone()
    report = usage_month_report(year=period.year, month=period.month)
    return {
        "records": records,
        "billable": len(billable_customer_ids(period=period)),
        "invoices": invoices.count(),
        "items": InvoiceItem.objects.filter(invoice__in=invoices).count(),
        "recorded_quantity": recorded,
        "report_quantity": sum((row.quantity for row in report), Decimal(0)),
        "report_amount": sum((row.amount for row in report), Decimal(0)),
        "invoiced_subtotal": invoices.aggregate(total=Sum("subtotal"))["total"] or Decimal(0),
        "differences": len(ledger_differences()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000_000, help="usage records in 2026-10")
    parser.add_argument("--small-rows", type=int, default=100_000, help="usage records in 2026-09")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--runs", type=int, default=3, help="timings of the SQL aggregate")
    parser.add_argument("--profile", action="store_true", help="run the 2026-10 month-end under cProfile")
    parser.add_argument(
        "--approval-share",
        type=float,
        default=0.0,
        help="share of customers whose bills need approval (month-end then submits them); default none",
    )
    parser.add_argument(
        "--worker",
        type=int,
        metavar="N",
        help="bill 2026-10 through month_end_task on a real Celery worker with N processes (REDIS_URL, default "
        "redis://127.0.0.1:6379/9) instead of in this process",
    )
    parser.add_argument(
        "--tiered-share",
        type=float,
        default=0.0,
        help="share of the pairs without a mid-month price change priced graduated, volume or package (in turn)",
    )
    parser.add_argument("--auto-issue", action="store_true", help="every customer's bills issued at once")
    parser.add_argument(
        "--einvoices", action="store_true", help="with --auto-issue: every customer receives Factur-X e-invoices"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to each step")
    args = parser.parse_args()
    if args.einvoices and not args.auto_issue:
        parser.error("--einvoices needs --auto-issue: e-invoices are made at issue")
    if args.worker or args.auto_issue:
        os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")

    whole, load_before = time.perf_counter(), load_average()
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench_month_end_") as workdir,
        fresh_database("postgres", timeout=args.timeout, seed=False) as url,
    ):
        os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"  # approval notices
        setup_django(url, media_root=str(Path(workdir) / "media"))
        with time_limit(args.timeout, "building the catalog"):
            started = time.perf_counter()
            priced = build_catalog(
                customers=args.customers,
                seed=args.seed,
                approval_share=args.approval_share,
                tiered_share=args.tiered_share,
                auto_issue=args.auto_issue,
                einvoices=args.einvoices,
            )
            print(f"  in {time.perf_counter() - started:.1f} s", flush=True)
        imports = {}
        for period, rows in ((SMALL_PERIOD, args.small_rows), (BIG_PERIOD, args.rows)):
            path = Path(workdir) / f"usage-{period:%Y-%m}.csv"
            with time_limit(args.timeout, "writing the usage file"):
                started = time.perf_counter()
                write_usage(path, priced=priced, rows=rows, period=period, seed=args.seed + period.month)
            print(
                f"wrote {path.name}: {rows:,} rows, {path.stat().st_size / 1e6:.1f} MB "
                f"in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            imports[period] = timed_import(path, django_env(url), args.timeout)
            print(f"  imported {imports[period]['rows']:,} rows in {imports[period]['import_s']:.1f} s", flush=True)
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM (ANALYZE)")
            print(f"VACUUM (ANALYZE) in {time.perf_counter() - started:.1f} s", flush=True)
            summaries = conn.execute("SELECT period, count(*) FROM usage_monthlysummary GROUP BY period").fetchall()
            print("monthly summaries: " + ", ".join(f"{p:%Y-%m} {n:,}" for p, n in sorted(summaries)), flush=True)

        for period in (SMALL_PERIOD, BIG_PERIOD):
            with time_limit(args.timeout, "the SQL aggregate"):
                timings, groups = time_aggregate(url, period, args.runs)
            results[period] = {"aggregate": timings, "groups": groups}
        plan = explain_aggregate(url, BIG_PERIOD)

        for period in (SMALL_PERIOD, BIG_PERIOD):
            print(f"month-end {period:%Y-%m} …", flush=True)
            if args.worker and period == BIG_PERIOD:
                result = run_month_end_on_worker(
                    url, period, timeout=args.timeout, concurrency=args.worker, documents=args.auto_issue
                )
            else:
                result = run_month_end(period, timeout=args.timeout, profile=args.profile and period == BIG_PERIOD)
                if args.auto_issue and period == BIG_PERIOD:
                    result["documents"] = documents_on_worker(url, period, timeout=args.timeout)
                elif args.auto_issue:  # September's files are not timed: their tasks are dropped
                    from billing_project.celery import app as celery_app

                    celery_app.control.purge()
            results[period].update(result)
            results[period]["check"] = check(period)
            print(f"  {results[period]['seconds']:.1f} s", flush=True)
        with time_limit(args.timeout, "the write floor"):
            floor = write_floor(url, BIG_PERIOD)

    print(
        f"\nmachine: 2 cores; whole run {time.perf_counter() - whole:.0f} s; seed {args.seed}; "
        f"load average {load_before} at the start, {load_average()} at the end"
    )
    print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the aggregate, {BIG_PERIOD:%Y-%m}:\n{plan}\n")
    header = (
        f"{'period':<8}| {'records':>9} | {'customers':>9} | {'invoices':>8} | {'lines':>7} | "
        f"{'aggregate s (median)':>20} | {'month-end s':>11} | {'ratio':>5} | {'queries':>7} | {'in SQL s':>8}"
    )
    print(header)
    print("-" * len(header))
    for period in (SMALL_PERIOD, BIG_PERIOD):
        result, checked = results[period], results[period]["check"]
        aggregate = statistics.median(result["aggregate"])
        print(
            f"{period:%Y-%m}  | {checked['records']:>9,} | {checked['billable']:>9,} | {checked['invoices']:>8,} | "
            f"{checked['items']:>7,} | {aggregate:>20.3f} | {result['seconds']:>11.2f} | "
            f"{result['seconds'] / aggregate:>5.1f} | "
            + (
                f"{result['queries'].total:>7,} | {result['queries'].seconds:>8.2f}"
                if result["queries"]
                else f"on a worker of {result['worker']} processes"
            )
        )
    for period in (SMALL_PERIOD, BIG_PERIOD):
        result, checked = results[period], results[period]["check"]
        run = result["run"]
        print(f"\n{period:%Y-%m}: import {imports[period]['import_s']:.1f} s; aggregate runs "
              + ", ".join(f"{t:.3f}" for t in result["aggregate"])
              + f" s ({result['groups']:,} groups)")  # fmt: skip
        print(
            f"  run {run.pk}: status {run.status}, {run.invoices_created:,} made, {run.already_invoiced:,} already "
            f"invoiced, {run.nothing_to_bill:,} with nothing to bill, {run.invoices_submitted:,} submitted for "
            f"approval, {run.invoices_issued:,} issued, failures {len(run.failures)}; "
            f"as the command prints it: {(run.finished_at - run.started_at).total_seconds():.1f} s"
        )
        same = checked["recorded_quantity"] == checked["report_quantity"]
        billed = checked["report_amount"] == checked["invoiced_subtotal"]
        print(
            f"  quantities: records {checked['recorded_quantity']:,} — the monthly report's "
            f"{checked['report_quantity']:,} ({'equal' if same else 'DIFFERENT'}); amounts: the report's "
            f"{checked['report_amount']:,} — invoices' subtotals {checked['invoiced_subtotal']:,} "
            f"({'equal' if billed else 'DIFFERENT'}); every billable customer has an "
            f"invoice or nothing to bill: {checked['invoices'] + run.nothing_to_bill == checked['billable']}"
        )
        if documents := result["documents"]:
            print(
                f"  files, made by tasks after the run: {documents['seconds']:.1f} s after it finished, on a worker "
                f"of 2 processes: {documents['pdf']:,} PDFs, {documents['ubl']:,} UBL and {documents['facturx']:,} "
                f"Factur-X for {documents['issued']:,} issued invoices; ledger differences: {checked['differences']}"
            )
        queries, phases = result["queries"], result["phases"]
        if queries is not None:  # on a worker, statements and phases are another process's
            print(f"  statements by kind: {dict(queries.by_kind.most_common())}")
            print("  statements by kind and table (count, seconds inside execute):")
            for key, count in queries.by_table.most_common():
                print(f"    {count:>6,}  {queries.seconds_by_table[key]:7.2f} s  {key}")
            print("  phases (wall time, including the SQL they send):")
            for key, seconds in phases.seconds.most_common():
                print(f"    {seconds:7.2f} s  {phases.calls[key]:>4} calls  {key}")
            rest = result["seconds"] - sum(
                v for k, v in phases.seconds.items() if k.split("(")[0] not in PhaseTimers.NESTED
            )
            print(f"    {rest:7.2f} s             the rest (locks, checks, Invoice objects, run counters, commits)")
        if period == BIG_PERIOD:
            print("  write floor: the rows this run wrote, COPY'd back into their tables (rolled back):")
            for table, rows, seconds in floor:
                print(f"    {seconds:7.2f} s  {rows:>7,} rows  {table}")
            print(f"    {sum(seconds for *_, seconds in floor):7.2f} s  in all")
        if result["profile"]:
            print(f"\ncProfile of month-end {period:%Y-%m} (times under the profiler):\n{result['profile']}")


if __name__ == "__main__":
    main()
