"""Time the monthly usage report for one customer with 10 million usage rows (issue 3, "Speed").

Usage: .venv/bin/python bench/month_report.py [--rows-per-month 1000000] [--months 10] [--runs 20]
                                              [--client-id ACME-001] [--month 2026-10] [--timeout 900]

On a fresh PostgreSQL database bench_usage_<pid> (migrated, demo catalog; dropped at the end) it
1. imports one generated month (2026-10, seed 42) with `manage.py import_usage` in a child process;
2. copies those records into the --months - 1 earlier months of 2026 with INSERT ... SELECT (service
   time and period shifted by whole months; same customers, services, snapshot prices and upload),
   so the table holds months x rows-per-month rows (10,000,000 by default) with all its indexes; the copies
   bypass the import, so `manage.py rebuild_usage_summaries` then makes their monthly summaries and daily usage;
3. runs ANALYZE, then times usage.report_selectors.usage_month_report(year=, month=, customer_ids=[...])
   in this process (one warm-up call, then --runs calls; median and p95), for the busiest customer
   (--client-id) and the least busy one, then again after VACUUM (ANALYZE);
4. times, once, the split from the records that the report falls back to for a customer-service pair
   whose summaries overlap in time (a price corrected in place while usage kept arriving);
5. prints EXPLAIN (ANALYZE, BUFFERS) of the report's summary query.
"""

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg
from common import fresh_database, setup_django, summary, usage_csv
from import_usage import django_env, run_child, timed_import

COLUMNS = "customer_id, service_id, price_agreement_id, quantity, service_time, period, unit_price, currency, upload_id"


def fill(url: str, *, months: int, month: str) -> None:
    year, number = (int(part) for part in month.split("-"))
    with psycopg.connect(url, autocommit=True) as conn:
        for shift in range(1, months):
            started = time.perf_counter()
            conn.execute(
                f"INSERT INTO usage_usagerecord ({COLUMNS}) "
                "SELECT customer_id, service_id, price_agreement_id, quantity,"
                " service_time - make_interval(months => %s), (period - make_interval(months => %s))::date,"
                " unit_price, currency, upload_id "
                "FROM usage_usagerecord WHERE period = %s",
                (shift, shift, f"{year}-{number:02d}-01"),
            )
            print(f"  copied into month -{shift} in {time.perf_counter() - started:.1f} s", flush=True)


def rebuild_summaries(url: str, timeout: float) -> None:
    """The monthly summaries and daily usage of every record, after `fill` copied records behind the import's back."""
    started = time.perf_counter()
    run_child([sys.executable, "manage.py", "rebuild_usage_summaries"], env=django_env(url), timeout=timeout)
    print(f"  summaries and daily usage rebuilt in {time.perf_counter() - started:.0f} s", flush=True)


def time_report(year: int, month: int, customer_id: int, runs: int) -> list[float]:
    from usage.report_selectors import usage_month_report

    usage_month_report(year=year, month=month, customer_ids=[customer_id])  # warm-up
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        rows = usage_month_report(year=year, month=month, customer_ids=[customer_id])
        timings.append((time.perf_counter() - started) * 1000)
    assert rows, "the report is empty"
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows-per-month", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--client-id", default="ACME-001")
    parser.add_argument("--quiet-client-id", default="MASSIVE-012")
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    year, month = (int(part) for part in args.month.split("-"))

    whole = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="bench_usage_") as workdir,
        fresh_database("postgres", timeout=args.timeout) as url,
    ):
        path = Path(workdir) / "usage.csv"
        path.write_bytes(usage_csv(rows=args.rows_per_month, month=args.month, seed=42))
        figures = timed_import(path, django_env(url), args.timeout)
        print(f"imported {figures['rows']:,} rows in {figures['import_s']:.1f} s", flush=True)
        started = time.perf_counter()
        fill(url, months=args.months, month=args.month)
        print(f"filled {args.months} months in {time.perf_counter() - started:.1f} s", flush=True)
        rebuild_summaries(url, args.timeout)
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("ANALYZE")
            total = conn.execute("SELECT count(*) FROM usage_usagerecord").fetchone()[0]
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('usage_usagerecord'))").fetchone()[0]
            print(f"ANALYZE {time.perf_counter() - started:.1f} s; usage_usagerecord: {total:,} rows, {size}")

        setup_django(url)
        from django.db import connection

        from catalog.models import Customer

        customers = {c: Customer.objects.get(client_id=c).pk for c in (args.client_id, args.quiet_client_id)}
        counts = {
            client_id: connection.cursor()
            .execute(
                "SELECT count(*) FROM usage_usagerecord WHERE customer_id = %s AND period = %s",
                [pk, f"{year}-{month:02d}-01"],
            )
            .fetchone()[0]
            for client_id, pk in customers.items()
        }
        results = {}
        for client_id, pk in customers.items():
            results[(client_id, "after ANALYZE")] = time_report(year, month, pk, args.runs)
        with psycopg.connect(url, autocommit=True) as conn:
            started = time.perf_counter()
            conn.execute("VACUUM (ANALYZE) usage_usagerecord")
            print(f"VACUUM (ANALYZE) {time.perf_counter() - started:.1f} s")
        for client_id, pk in customers.items():
            results[(client_id, "after VACUUM")] = time_report(year, month, pk, args.runs)
        started = time.perf_counter()
        from usage.report_selectors import usage_month_report

        usage_month_report(year=year, month=month)
        all_ms = (time.perf_counter() - started) * 1000

        from usage.report_selectors import _chargeable_from_records

        started = time.perf_counter()
        _chargeable_from_records(
            period=date(year, month, 1), last_day=date(year, month, 28), customer_ids=[customers[args.client_id]]
        )
        fallback_ms = (time.perf_counter() - started) * 1000

        # The report's summary query, captured as Django sends it, explained.
        captured = []

        def capture(execute, sql, params, many, context):
            captured.append((sql, params))
            return execute(sql, params, many, context)

        with connection.execute_wrapper(capture):
            usage_month_report(year=year, month=month, customer_ids=[customers[args.client_id]])
        sql, params = next((s, p) for s, p in captured if "usage_monthlysummary" in s)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        connection.close()

    print(f"\nmachine: 2 cores; whole run {time.perf_counter() - whole:.0f} s; table {total:,} rows ({size})")
    for (client_id, when), timings in results.items():
        print(f"report {args.month} {client_id:<13} ({counts[client_id]:>7,} records) {when:<14}: {summary(timings)}")
    print(f"report {args.month} all customers, once, after VACUUM: {all_ms:.0f} ms")
    print(f"split from the records (the overlap fallback), {args.client_id}, once: {fallback_ms:.0f} ms")
    print(f"\nEXPLAIN (ANALYZE, BUFFERS), {args.client_id}, after VACUUM:\n{plan}")


if __name__ == "__main__":
    main()
