"""Time every read of usage records with 10 million rows (issue 13), for Finance, Customer Success and the portal.

Usage: .venv/bin/python bench/usage_reads.py [--keep] [--reuse] [--database bench_usage_reads_keep]
                                             [--rows-per-month 1000000] [--months 10] [--runs 3]
                                             [--import-rows 1000000] [--skip-import] [--build-only]
                                             [--explain] [--timeout 1800]

1. The database: a PostgreSQL database (`bench_usage_reads_<pid>`, or --database) migrated and seeded with
   the demo (`manage.py seed_demo`), one generated month (2026-10, seed 42) imported with
   `manage.py import_usage`, and copied into the nine months before (bench/month_report.py's builder), so
   `usage_usagerecord` holds 10 million rows more than the demo's; their monthly summaries and daily usage
   rebuilt from the records (`manage.py rebuild_usage_summaries`); then VACUUM (ANALYZE). With --reuse an
   existing database of that name that already holds them is only migrated (new indexes are built then);
   with --keep it is not dropped at the end, so the next run can reuse it.
2. The reads, through Django's test client in this process (DEBUG off), each signed in as Finance
   (finance@), the demo's Customer Success user (cs@: 8 of the 12 customers), the deputy CSM (deputy@:
   one customer, through a grant) and the portal user (portal@acme: ACME-001): `GET /api/usage` (first
   page, the page after through its `next` link, the page before through the `previous` link of that one)
   with each filter (customer, service, from/to, group_by), and the admin's usage records list (first page,
   page 500 and the last page, and each filter), the monthly summaries and the closed months. Each
   request once to warm up, then --runs times: the median, and the number of SQL statements it sent.
3. The import at this size: `manage.py import_usage` of --import-rows generated rows for 2026-11
   (seed 43) in a child process, its rate, and the store floor (the very records it wrote, copied back
   into `usage_usagerecord` with its indexes, rolled back); then the imported rows and their summaries
   and daily usage are removed again, so a kept database stays as built.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from common import PG_URL, QueryCounter, load_average, setup_django, usage_csv
from import_usage import django_env, prepare, run_child, timed_import
from month_report import fill, rebuild_summaries

LIMIT_MS = 300
BUILD_MONTH = "2026-10"
IMPORT_MONTH = "2026-11"  # the latest whole month before today (no future service times)
COPY_COLUMNS = (
    "customer_id, service_id, price_agreement_id, quantity, service_time, period, unit_price, currency,"
    " upload_id, event_id"
)


# --- The database --------------------------------------------------------------------------------------------


def database_url(name: str) -> str:
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def built_rows(name: str) -> int | None:
    """The usage rows of an existing database `name` (None if there is no such database or table)."""
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return None
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('usage_usagerecord')").fetchone()[0]:
            return None
        return conn.execute("SELECT count(*) FROM usage_usagerecord").fetchone()[0]


def build(name: str, args) -> str:
    url = database_url(name)
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    started = time.perf_counter()
    prepare(url, args.timeout)
    print(f"  migrated and seeded in {time.perf_counter() - started:.0f} s", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_usage_reads_") as workdir:
        path = Path(workdir) / "usage.csv"
        path.write_bytes(usage_csv(rows=args.rows_per_month, month=BUILD_MONTH, seed=42))
        figures = timed_import(path, django_env(url), args.timeout)
    print(f"  imported {figures['rows']:,} rows in {figures['import_s']:.1f} s", flush=True)
    started = time.perf_counter()
    fill(url, months=args.months, month=BUILD_MONTH)
    print(f"  filled {args.months} months in {time.perf_counter() - started:.0f} s", flush=True)
    rebuild_summaries(url, args.timeout)
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM (ANALYZE)")
        print(f"  VACUUM (ANALYZE) in {time.perf_counter() - started:.0f} s", flush=True)
    return url


# --- The import at this size ---------------------------------------------------------------------------------


def timed_import_at_size(url: str, args) -> dict:
    """Import --import-rows rows for IMPORT_MONTH, measure the store floor of those records, then remove them."""
    with tempfile.TemporaryDirectory(prefix="bench_usage_reads_") as workdir:
        path = Path(workdir) / "usage.csv"
        path.write_bytes(usage_csv(rows=args.import_rows, month=IMPORT_MONTH, seed=43))
        figures = timed_import(path, django_env(url), args.timeout)
    period = f"{IMPORT_MONTH}-01"
    with psycopg.connect(url) as conn:
        upload_id = conn.execute("SELECT max(id) FROM usage_upload WHERE source = 'command'").fetchone()[0]
        dump = bytearray()
        select = f"SELECT {COPY_COLUMNS} FROM usage_usagerecord WHERE upload_id = {int(upload_id)}"
        with conn.cursor().copy(f"COPY ({select}) TO STDOUT") as copy:
            for block in copy:
                dump += block
        conn.execute("DELETE FROM usage_usagerecord WHERE upload_id = %s", [upload_id])
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY usage_usagerecord ({COPY_COLUMNS}) FROM STDIN") as copy:
            view = memoryview(dump)
            for offset in range(0, len(view), 1024 * 1024):
                copy.write(view[offset : offset + 1024 * 1024])
        figures["floor_s"] = time.perf_counter() - started
        conn.rollback()
        # Back to the database as built: the imported records, their summaries and daily usage, and the upload go.
        conn.execute("DELETE FROM usage_usagerecord WHERE upload_id = %s", [upload_id])
        conn.execute("DELETE FROM usage_monthlysummary WHERE period = %s", [period])
        conn.execute(
            "DELETE FROM usage_dailyusage WHERE day >= %s AND day < %s::date + interval '1 month'", [period, period]
        )
        conn.execute("DELETE FROM usage_upload WHERE id = %s", [upload_id])
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) usage_usagerecord")
    return figures


# --- The reads ------------------------------------------------------------------------------------------------


def cursor_at(position: str, *, reverse: bool = False) -> str:
    """A cursor as the API writes them (billing_project.pagination.KeysetCursorPagination), at `position`."""
    from base64 import b64encode
    from urllib.parse import urlencode

    tokens = {"p": position, **({"r": "1"} if reverse else {})}
    return b64encode(urlencode(tokens).encode()).decode()


def requests_to_time() -> list[tuple[str, str, str]]:
    """(role, what, path) of every read: the API's list and each filter, the admin's lists and each filter."""
    from accounts.models import User
    from catalog.models import Customer, Service

    customers = {c.client_id: c.pk for c in Customer.objects.all()}
    services = {s.code: s.pk for s in Service.objects.all()}
    cs_user = User.objects.get(email="cs@countinghouse.example")
    cs_ids = set(Customer.objects.filter(csm=cs_user).values_list("pk", flat=True))
    busiest, quietest = customers["ACME-001"], customers["MASSIVE-012"]
    cs_quietest = max(cs_ids)  # customers are created busiest first: the highest id is the quietest
    middle = cursor_at("2026-05-16T12:00:00+00:00|9223372036854775807")
    oldest = cursor_at("2000-01-01T00:00:00+00:00|0", reverse=True)
    reads = []
    for role in ("finance", "cs", "deputy", "portal"):
        own = {"finance": quietest, "cs": cs_quietest, "deputy": busiest, "portal": busiest}[role]
        api = [
            ("first page", "/api/usage"),
            ("next page (its `next` link)", "NEXT /api/usage"),
            ("previous page (the `previous` link of the next)", "PREVIOUS /api/usage"),
            ("a page in the middle (May)", f"/api/usage?cursor={middle}"),
            ("the oldest page (a cursor at the start, backwards)", f"/api/usage?cursor={oldest}"),
            ("page_size=1000", "/api/usage?page_size=1000"),
            ("customer=ACME-001 (the busiest)", f"/api/usage?customer={busiest}"),
            ("customer=<the quietest it sees>", f"/api/usage?customer={own}"),
            ("service=kyc_enhanced (the rarest)", "/api/usage?service=kyc_enhanced"),
            ("from/to: March", "/api/usage?from=2026-03-01&to=2026-03-31"),
            ("from/to: one day", "/api/usage?from=2026-03-10&to=2026-03-10"),
            ("to (older than February)", "/api/usage?to=2026-01-31"),
            (
                "customer, service and a month",
                f"/api/usage?customer={own}&service=kyc_basic&from=2026-03-01&to=2026-03-31",
            ),
            ("group_by=month", "/api/usage?group_by=month"),
            ("group_by=month, a quarter", "/api/usage?group_by=month&from=2026-01-01&to=2026-03-31"),
            ("group_by=day, one month", "/api/usage?group_by=day&from=2026-03-01&to=2026-03-31"),
            (
                "group_by=day, one customer, a month",
                f"/api/usage?group_by=day&customer={own}&from=2026-03-01&to=2026-03-31",
            ),
        ]
        reads += [(role, f"API {what}", path) for what, path in api]
        if role == "portal":
            continue  # the admin sends portal users to its login page
        admin = "/admin/usage/usagerecord/"
        lists = [
            ("first page", admin),
            ("page 2", f"{admin}?p=2"),
            ("page 100", f"{admin}?p=100"),
            ("older than the first page (its `older` link)", "OLDER " + admin),
            ("a page in the middle (May)", f"{admin}?before=2026-05-16T12:00:00%2B00:00|9223372036854775807"),
            ("customer filter (ACME-001)", f"{admin}?customer__id__exact={busiest}"),
            ("customer filter (the quietest it sees)", f"{admin}?customer__id__exact={own}"),
            ("service filter (kyc_enhanced)", f"{admin}?service__id__exact={services['kyc_enhanced']}"),
            ("month filter (2026-03)", f"{admin}?month=2026-03"),
            ("month filter (2026-01), page 50", f"{admin}?month=2026-01&p=50"),
            (
                "customer, service and month",
                f"{admin}?customer__id__exact={own}&service__id__exact={services['kyc_basic']}&month=2026-03",
            ),
            ("monthly summaries, first page", "/admin/usage/monthlysummary/"),
            (
                "monthly summaries, customer and month",
                f"/admin/usage/monthlysummary/?customer__id__exact={own}&month=2026-03",
            ),
        ]
        if role == "finance":
            lists += [("closed months", "/admin/usage/closedperiod/"), ("uploads", "/admin/usage/upload/")]
        reads += [(role, f"admin {what}", path) for what, path in lists]
    return reads


ROLE_EMAILS = {
    "finance": "finance@countinghouse.example",
    "cs": "cs@countinghouse.example",
    "deputy": "deputy@countinghouse.example",
    "portal": "portal@acme.example",
}
ROLE_NAMES = {
    "finance": "Finance",
    "cs": "Customer Success (8 customers)",
    "deputy": "deputy CSM (1 customer)",
    "portal": "portal user (ACME-001)",
}


def run(url: str, args) -> list[tuple]:
    # Static files as in production: collected, with their manifest (removed at the end).
    static_root = tempfile.mkdtemp(prefix="bench_usage_reads_static_")
    os.environ["STATIC_ROOT"] = static_root
    setup_django(url)
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    call_command("collectstatic", "--no-input", verbosity=0)
    setup_test_environment(debug=False)  # the test client then keeps each response's context (the rows listed)

    from accounts.models import User

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    clients = {}
    for role, email in ROLE_EMAILS.items():
        clients[role] = Client()
        clients[role].force_login(User.objects.get(email=email))
    rows = []
    for role, what, path in requests_to_time():
        if args.only and args.only not in f"{role} {what}":
            continue
        client = clients[role]
        path = resolve(client, path)
        response = client.get(path)  # warm-up
        assert response.status_code == 200, (role, what, path, response.status_code, response.content[:500])
        timings, queries = [], set()
        for _ in range(args.runs):
            with QueryCounter(connection) as counter:
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
            queries.add(counter.total)
        count = listed(response)
        rows.append((ROLE_NAMES[role], what, statistics.median(timings), max(timings), sorted(queries), count, path))
        print(
            f"  {ROLE_NAMES[role]:<30} {what:<52} {statistics.median(timings):8.1f} ms"
            f"  {sorted(queries)} queries, {count} rows",
            flush=True,
        )
    connection.close()
    shutil.rmtree(static_root, ignore_errors=True)
    return rows


def resolve(client, path: str) -> str:
    """NEXT/PREVIOUS/OLDER: follow the link of the page the rest of `path` names."""
    if path.startswith(("NEXT ", "PREVIOUS ")):
        kind, base = path.split(" ", 1)
        following = client.get(base).json()["next"]
        if kind == "NEXT":
            return following
        return client.get(following).json()["previous"]
    if path.startswith("OLDER "):
        base = path.split(" ", 1)[1]
        return base + client.get(base).context["cl"].older_url
    return path


def listed(response) -> int:
    if response["Content-Type"].startswith("application/json"):
        return len(response.json()["results"])
    return len(response.context["cl"].result_list)


def report(rows: list[tuple], imported: dict | None, args) -> None:
    print(f"\n| request | who | median (of {args.runs}) | max | queries | rows |")
    print("|---|---|---|---|---|---|")
    for who, what, median, worst, queries, count, _ in rows:
        flag = "**" if median >= LIMIT_MS else ""
        print(
            f"| {what} | {who} | {flag}{median:,.1f} ms{flag} | {worst:,.1f} ms | {'/'.join(map(str, queries))} "
            f"| {count} |"
        )
    slow = [row for row in rows if row[2] >= LIMIT_MS]
    print(f"\n{len(rows) - len(slow)} of {len(rows)} reads under {LIMIT_MS} ms")
    if imported:
        rate = imported["rows"] / imported["import_s"]
        print(
            f"import of {imported['rows']:,} rows into the 10M table: {imported['import_s']:.2f} s, {rate:,.0f} rows/s "
            f"(peak {imported['peak_mib']:.0f} MiB); store floor {imported['floor_s']:.2f} s, the import "
            f"{imported['import_s'] / imported['floor_s']:.2f}x the floor"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default=None, help="the database's name (default bench_usage_reads_<pid>)")
    parser.add_argument("--keep", action="store_true", help="do not drop the database at the end")
    parser.add_argument("--reuse", action="store_true", help="reuse --database if it already holds the rows")
    parser.add_argument("--rows-per-month", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--import-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each list's row query")
    parser.add_argument("--only", default="", help="time only the reads whose role and name hold this text")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    name = args.database or f"bench_usage_reads_{os.getpid()}"
    whole = time.perf_counter()
    print(f"machine: {os.cpu_count()} cores; load average at start {load_average()}", flush=True)
    url = database_url(name)
    try:
        existing = built_rows(name) if args.reuse else None
        if existing is not None and existing >= args.rows_per_month * args.months:
            started = time.perf_counter()
            run_child([sys.executable, "manage.py", "migrate", "-v0"], env=django_env(url), timeout=args.timeout)
            print(f"reusing {name} ({existing:,} usage rows); migrated in {time.perf_counter() - started:.0f} s")
        else:
            print(f"building {name}", flush=True)
            build(name, args)
        if args.build_only:
            return
        rows = run(url, args)
        imported = None if args.skip_import else timed_import_at_size(url, args)
        report(rows, imported, args)
    finally:
        if not args.keep:
            from common import _close_django_connections

            _close_django_connections()
            with psycopg.connect(PG_URL, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        print(f"whole run {time.perf_counter() - whole:.0f} s; load average at end {load_average()}")


if __name__ == "__main__":
    main()
