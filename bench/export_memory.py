"""Peak memory and time of a background export (issue 14): an XLSX (or CSV) of the invoice register with
--rows rows, written through the very path a page's export above EXPORT_BACKGROUND_ROWS takes.

Usage: .venv/bin/python bench/export_memory.py [--rows 1000000] [--format xlsx] [--timeout 1800]

On a fresh PostgreSQL database ch_exports_bench_<pid> (migrated; dropped at the end) it
1. creates 25 customers (catalog.services.customer_create) and --rows issued invoices in October 2026 with one
   INSERT ... SELECT over generate_series (amounts varying, issue times spread over the month);
2. in a child process (Django set up as in production, DEBUG off, no REDIS_URL so Celery runs the task in that
   process), calls reports.services.exports.export_start for a superuser and the register of October, which
   after commit runs reports.tasks.export_run_task -> export_run: the register's rows read in chunks of 2,000
   (LazyRows), counted, written by openpyxl's write-only workbook into a temporary file and stored under a
   throw-away MEDIA_ROOT;
3. prints the export's time (asked for to done; and the task's own, started_at to finished_at), rows written, file
   size, and memory: the peak RSS during the export (VmHWM, reset just before it began), the RSS before and after,
   and the child's ru_maxrss (the whole process, Django's setup included).
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PG_URL, load_average, migrate_only
from import_usage import run_child

PERIOD = {"start": "2026-10-01", "end": "2026-10-31"}


def status_kib(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in KiB: VmRSS (now) or VmHWM (peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Start VmHWM again from the RSS now (Linux: "5" to clear_refs), so the peak is the export's alone."""
    Path("/proc/self/clear_refs").write_text("5")


def build(url: str, rows: int) -> None:
    """25 customers (through the service, so they are whole) and `rows` issued invoices, set-based."""
    from catalog.services import customer_create

    customers = [
        customer_create(actor=None, name=f"Bench customer {n:02d}", client_id=f"BENCH-{n:02d}", currency="EUR")
        for n in range(25)
    ]
    ids = "{" + ",".join(str(customer.pk) for customer in customers) + "}"
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ledger_invoice (customer_id, kind, period, status, number, currency, subtotal, tax, total,"
            " amount_paid, amount_credited, issued_at, due_date, pdf, einvoice, buyer_reference, created_at,"
            " updated_at) "
            "SELECT (%(ids)s::bigint[])[1 + g %% 25], 'manual', DATE '2026-10-01', 'issued',"
            " 'INV-B-' || lpad(g::text, 8, '0'), 'EUR', s, round(s * 0.2, 2), s + round(s * 0.2, 2), 0, 0,"
            " TIMESTAMPTZ '2026-10-01 00:00:00+00' + (g * (2592000.0 / %(rows)s)) * INTERVAL '1 second',"
            " DATE '2026-11-15', '', '', '', now(), now() "
            "FROM generate_series(1, %(rows)s) AS g,"
            " LATERAL (SELECT ((g::bigint * 7919) %% 100000) / 100.0 + 1 AS s) AS a",
            {"ids": ids, "rows": rows},
        )
        conn.execute("ANALYZE ledger_invoice")
    print(f"  {rows:,} invoices inserted in {time.perf_counter() - started:.1f} s", flush=True)


def child(kind: str) -> None:
    """In the child: ask for the export as a page would, the task running here; print what it measured."""
    import django

    django.setup()
    from django.http import QueryDict

    from accounts.models import User
    from reports.services.exports import export_start

    # No password: hashing one (Argon2, 46 MiB) would set the process's peak before the export begins.
    user = User.objects.create(email="bench@example.com", is_staff=True, is_superuser=True)
    query = QueryDict(mutable=True)
    query.update({"period": "custom", **PERIOD})
    before = status_kib("VmRSS")
    reset_peak()
    started = time.perf_counter()
    export = export_start(
        actor=user,
        source="report:invoice-register",
        title="Invoice register",
        query=query.urlencode(),
        filters=[],
        format=kind,
        file_name=f"invoice-register.{kind}",
    )  # the task runs after commit, here (no REDIS_URL: Celery eager)
    seconds = time.perf_counter() - started
    export.refresh_from_db()
    print(
        json.dumps(
            {
                "status": export.status,
                "error": export.error,
                "rows": export.rows_written,
                "seconds": seconds,
                "task_seconds": (export.finished_at - export.started_at).total_seconds() if export.finished_at else 0,
                "bytes": export.file.size if export.file else 0,
                "rss_before_kib": before,
                "peak_during_kib": status_kib("VmHWM"),
                "rss_end_kib": status_kib("VmRSS"),
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--child", choices=["xlsx", "csv"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    name = f"ch_exports_bench_{os.getpid()}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        with tempfile.TemporaryDirectory(prefix="export-bench-") as media:
            env = migrate_only(url, args.timeout) | {"MEDIA_ROOT": media, "SECURE_SSL_REDIRECT": "false"}
            env.pop("REDIS_URL", None)
            for key, value in env.items():
                os.environ[key] = value
            import django

            django.setup()
            build(url, args.rows)
            from django.db import connections

            connections.close_all()
            print(f"  load before the export: {load_average()}", flush=True)
            wall, maxrss, out = run_child(
                [sys.executable, str(Path(__file__).resolve()), "--child", args.format], env=env, timeout=args.timeout
            )
            result = json.loads(out.strip().splitlines()[-1])
            print(f"  load after the export: {load_average()}")
            print(
                f"{args.format.upper()} export of {result['rows']:,} rows: {result['status']}"
                f"{' (' + result['error'] + ')' if result['error'] else ''}\n"
                f"  export (ask, count, write, store): {result['seconds']:.1f} s; the task's own time "
                f"{result['task_seconds']:.1f} s; {result['rows'] / result['seconds']:,.0f} rows/s\n"
                f"  file {result['bytes'] / 2**20:.1f} MiB\n"
                f"  peak RSS during the export (VmHWM, reset as it began): {result['peak_during_kib'] / 1024:.0f} MiB\n"
                f"  RSS before it {result['rss_before_kib'] / 1024:.0f} MiB, "
                f"after it {result['rss_end_kib'] / 1024:.0f} MiB\n"
                f"  peak RSS of the child process (ru_maxrss, Django set up included): {maxrss / 1024:.0f} MiB\n"
                f"  child wall time (Django setup included): {wall:.1f} s"
            )
    finally:
        from django.db import connections

        connections.close_all()
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


if __name__ == "__main__":
    main()
