"""Time the partner revenue report for one year over 100,000 orders on PostgreSQL (issue 12, "Speed": under 500 ms).

Usage: .venv/bin/python bench/partner_revenue.py [--orders 100000] [--runs 15] [--database ch_bench_kpis]
       [--keep] [--timeout 1800]

On a fresh PostgreSQL database (--database, dropped first if it exists, and at the end unless --keep), migrated, it
1. makes 200 customers (EUR 70 %, GBP 20 %, USD 10 %), 50 partners each with a general 20–40 % agreement,
   5 order types and a Finance user;
2. generates --orders orders created over 2025 with bulk_create (random, seed 12): 60 % brought by a partner;
   75 % completed and 8 % failed 1–60 days after creation, 5 % cancelled, 12 % still open; fee 100–5,000.00,
   base charge 0–300.00. Expenses: 0–3 an order (70 % of orders have some), 3 % of them reversed. Settlements for
   every ended order with a partner: the first (approved 60 %, paid 30 %, calculated 10 %), a correction for
   10 % of them, and a void one for 5 %. Then ANALYZE;
3. times, as the Finance user, `reports.revenue.partner_revenue` for 2025 (every partner and currency), then
   GET /api/reports/partner-revenue and the admin page through Django's test client (DEBUG off): one warm-up, then
   --runs timed runs each; median and p95, the SQL statements per run and the time spent in SQL.
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal

import psycopg
from common import (
    PG_URL,
    QueryCounter,
    _close_django_connections,
    load_average,
    migrate_only,
    setup_django,
    summary,
    time_limit,
)

BATCH = 5_000
YEAR = 2025


def make_reference_rows() -> dict:
    from django.contrib.auth.models import Group

    from accounts.models import User
    from accounts.roles import Role
    from catalog.models import Customer, Partner
    from orders.models import OrderType, RevenueShareAgreement

    finance = User.objects.create_user(email="finance@bench.example", password="x", is_staff=True)
    finance.groups.set([Group.objects.get(name=Role.FINANCE)])
    currencies = ["EUR"] * 7 + ["GBP"] * 2 + ["USD"]
    customers = Customer.objects.bulk_create(
        Customer(
            name=f"Bench customer {n}",
            legal_name=f"Bench customer {n} Ltd",
            client_id=f"BENCH-{n:04d}",
            currency=currencies[n % len(currencies)],
            start_date=date(YEAR - 1, 1, 1),
        )
        for n in range(200)
    )
    partners = Partner.objects.bulk_create(Partner(name=f"Bench partner {n:02d}") for n in range(50))
    agreements = RevenueShareAgreement.objects.bulk_create(
        RevenueShareAgreement(partner=partner, percentage=Decimal(20 + n % 21), valid_from=date(YEAR - 1, 1, 1))
        for n, partner in enumerate(partners)
    )
    order_types = OrderType.objects.bulk_create(
        OrderType(code=f"bench_type_{n}", name=f"Bench order type {n}") for n in range(5)
    )
    return {
        "finance": finance,
        "customers": customers,
        "partners": partners,
        "agreements": {agreement.partner_id: agreement for agreement in agreements},
        "order_types": order_types,
    }


def money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def fill(url: str, *, orders: int, ids: dict, seed: int = 12) -> dict:
    from django.utils import timezone

    from orders.models import Expense, Order, Settlement

    rng = random.Random(seed)
    zone = timezone.get_current_timezone()
    year_start = datetime(YEAR, 1, 1, tzinfo=zone)
    counts = {"orders": 0, "expenses": 0, "settlements": 0}
    started = time.perf_counter()
    for offset in range(0, orders, BATCH):
        batch = []
        for n in range(offset, min(offset + BATCH, orders)):
            customer = rng.choice(ids["customers"])
            created = year_start + timedelta(seconds=rng.randrange(365 * 24 * 3600))
            roll = rng.random()
            status = (
                Order.Status.COMPLETED
                if roll < 0.75
                else Order.Status.FAILED
                if roll < 0.83
                else Order.Status.CANCELLED
                if roll < 0.88
                else rng.choice(Order.OPEN_STATUSES)
            )
            ended = created + timedelta(days=rng.randint(1, 60), seconds=rng.randrange(86400))
            batch.append(
                Order(
                    number=f"ORD-B-{n + 1:07d}",
                    customer=customer,
                    partner=rng.choice(ids["partners"]) if rng.random() < 0.6 else None,
                    order_type=rng.choice(ids["order_types"]),
                    status=status,
                    currency=customer.currency,
                    fee=money(rng, 100, 5000),
                    base_charge=money(rng, 0, 300),
                    start_date=created.date(),
                    due_date=created.date() + timedelta(days=30),
                    started_at=created,
                    completed_at=ended if status == Order.Status.COMPLETED else None,
                    failed_at=ended if status == Order.Status.FAILED else None,
                    cancelled_at=ended if status == Order.Status.CANCELLED else None,
                    reason="Benchmark" if status in (Order.Status.FAILED, Order.Status.CANCELLED) else "",
                )
            )
        made = Order.objects.bulk_create(batch)
        expenses, reversals, settlements = [], [], []
        for order in made:
            if rng.random() < 0.7:
                for _ in range(rng.randint(1, 3)):
                    expenses.append(
                        Expense(
                            order=order,
                            amount=money(rng, 5, 400),
                            currency=order.currency,
                            date=order.started_at.date(),
                            payee="Registry",
                            category=Expense.Category.REGISTRAR_FEE,
                            created_by=ids["finance"],
                        )
                    )
            if order.partner_id and order.status in (Order.Status.COMPLETED, Order.Status.FAILED):
                settlements.extend(settlements_of(order, ids, rng))
        Expense.objects.bulk_create(expenses)
        for expense in expenses:
            if rng.random() < 0.03:
                reversals.append(
                    Expense(
                        order_id=expense.order_id,
                        amount=-expense.amount,
                        currency=expense.currency,
                        date=expense.date,
                        payee=expense.payee,
                        category=expense.category,
                        reverses=expense,
                        reason="Entered twice",
                        created_by=ids["finance"],
                    )
                )
        Expense.objects.bulk_create(reversals)
        Settlement.objects.bulk_create(settlements)
        counts["orders"] += len(made)
        counts["expenses"] += len(expenses) + len(reversals)
        counts["settlements"] += len(settlements)
    print(
        f"  {counts['orders']:,} orders, {counts['expenses']:,} expenses, {counts['settlements']:,} settlements "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        # bulk_create gives created_at (auto_now_add) the time of the insert: the orders were created when started.
        started = time.perf_counter()
        conn.execute("UPDATE orders_order SET created_at = started_at, updated_at = started_at")
        conn.execute("VACUUM ANALYZE")
        print(f"  created_at set and VACUUM ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)
    return counts


def settlements_of(order, ids: dict, rng: random.Random) -> list:
    from orders.models import PayoutBatch, Settlement

    agreement = ids["agreements"][order.partner_id]
    ended = order.completed_at or order.failed_at
    share = (order.fee * agreement.percentage / 100).quantize(Decimal("0.01"))
    roll = rng.random()
    status = Settlement.Status.APPROVED if roll < 0.6 else Settlement.Status.PAID if roll < 0.9 else "calculated"
    payout = None
    if status == Settlement.Status.PAID:
        payout = ids.setdefault("payouts", {}).get((order.partner_id, order.currency))
        if payout is None:
            payout = PayoutBatch.objects.create(
                number=f"PAY-B-{len(ids['payouts']) + 1:05d}",
                partner_id=order.partner_id,
                currency=order.currency,
                cut_off=date(YEAR, 12, 31),
                total=Decimal("1.00"),
                iban="GB33BUKB20201555555555",
                created_by=ids["finance"],
            )
            ids["payouts"][order.partner_id, order.currency] = payout

    def settlement(sequence: int, amount: Decimal, status: str) -> Settlement:
        approved = status in (Settlement.Status.APPROVED, Settlement.Status.PAID)
        return Settlement(
            order=order,
            partner_id=order.partner_id,
            agreement=agreement,
            sequence=sequence,
            currency=order.currency,
            net=order.fee,
            percentage=agreement.percentage,
            share=max(share + (amount if sequence > 1 else 0), Decimal("0.00")),
            amount=amount,
            calculation={"bench": True},
            status=status,
            calculated_at=ended,
            approved_at=ended if approved else None,
            payout=payout if status == Settlement.Status.PAID else None,
            paid_at=ended if status == Settlement.Status.PAID else None,
            voided_at=ended if status == Settlement.Status.VOID else None,
        )

    made = [settlement(1, share, status)]
    if rng.random() < 0.10:
        made.append(settlement(2, -money(rng, 1, 50), Settlement.Status.APPROVED))
    if rng.random() < 0.05:
        made.append(settlement(len(made) + 1, share, Settlement.Status.VOID))
    return made


def timed(run, runs: int) -> tuple[list[float], int, list[float]]:
    """Timings (ms), statements per run and time in SQL (ms) of `run()`, after one warm-up."""
    from django.db import connection

    run()
    timings, sql_timings, statements = [], [], 0
    for _ in range(runs):
        with QueryCounter(connection) as counter:
            started = time.perf_counter()
            run()
            timings.append((time.perf_counter() - started) * 1000)
        statements = counter.total
        sql_timings.append(counter.seconds * 1000)
    return timings, statements, sql_timings


def explain() -> str:
    """PostgreSQL's plan of the report's three statements, with their timings (EXPLAIN ANALYZE)."""
    from django.db import connection

    from accounts.models import User
    from reports.revenue import partner_revenue

    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    finance = User.objects.get(email="finance@bench.example")
    with connection.execute_wrapper(capture):
        partner_revenue(finance, start=date(YEAR, 1, 1), end=date(YEAR, 12, 31))
    plans = []
    with connection.cursor() as cursor:
        for sql, params in captured:
            if "orders_order" not in sql:
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {sql}", params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    return "\n\n".join(plans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--database", default="ch_bench_kpis")
    parser.add_argument("--keep", action="store_true", help="Keep the database at the end (to look at plans).")
    parser.add_argument("--explain", action="store_true", help="Print the plans of the report's statements.")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {args.database}")
    url = PG_URL.rsplit("/", 1)[0] + f"/{args.database}"
    try:
        with time_limit(args.timeout, "the benchmark"):
            started = time.perf_counter()
            migrate_only(url, args.timeout)
            print(f"migrated {args.database} in {time.perf_counter() - started:.1f} s", flush=True)
            os.environ["STATIC_ROOT"] = tempfile.mkdtemp(prefix="bench_kpis_static_")
            setup_django(url)
            from django.conf import settings
            from django.core.management import call_command
            from django.test import Client
            from django.urls import reverse

            from reports.revenue import partner_revenue

            call_command("collectstatic", "--no-input", verbosity=0)
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
            ids = make_reference_rows()
            print(f"filling {args.orders:,} orders over {YEAR} (load {load_average()})", flush=True)
            fill(url, orders=args.orders, ids=ids)

            finance = ids["finance"]
            start, end = date(YEAR, 1, 1), date(YEAR, 12, 31)
            report = partner_revenue(finance, start=start, end=end)
            ended = sum(total.orders for total in report.totals)
            print(
                f"\nthe report for {start} to {end}: {ended:,} orders ended, {len(report.rows)} rows, "
                f"{len(report.totals)} currencies; {args.runs} runs each (load {load_average()})"
            )
            client = Client()
            client.force_login(finance)
            query = {"start": start.isoformat(), "end": end.isoformat()}
            page = reverse("admin:partner_revenue")

            def get(path):
                def run():
                    response = client.get(path, query)
                    assert response.status_code == 200, f"{path} answered {response.status_code}"

                return run

            cases = {
                "selector partner_revenue()": lambda: partner_revenue(finance, start=start, end=end),
                "GET /api/reports/partner-revenue": get("/api/reports/partner-revenue"),
                "admin page": get(page),
            }
            for name, run in cases.items():
                timings, statements, sql_timings = timed(run, args.runs)
                print(
                    f"{name:34} {summary(timings)}; {statements} statements, "
                    f"in SQL median {statistics.median(sql_timings):.1f} ms"
                )
            if args.explain:
                print("\n" + explain())
            print(f"load {load_average()}")
    finally:
        _close_django_connections()
        if not args.keep:
            admin.execute(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
