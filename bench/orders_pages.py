"""Time the order desk's admin pages with 100,000 orders, 400,000 documents and 200,000 tasks (orders, "Speed").

Usage: .venv/bin/python bench/orders_pages.py [--orders 100000] [--runs 15] [--timeout 1800]

On a fresh PostgreSQL database bench_usage_<pid> (migrated and seeded with the demo; dropped at the end) it
1. renders each page once on the demo data alone and counts its SQL statements;
2. fills the tables with --orders orders spread over the demo customers, order types and statuses, four
   documents an order (half with an uploaded file), two tasks an order (a third of them done) and one
   status-history row an order, with INSERT ... SELECT over generate_series, then ANALYZE;
3. renders each page again, signed in as the demo Operations user, through Django's test client in this
   process (DEBUG off, the whole middleware stack): one warm-up, then --runs timed requests; median and p95,
   and the statements per request, which must equal step 1's.

Pages: the admin order list (first page, filtered by status and order type, and with the overdue filter and a
search), one order's page (an order with its four documents, two tasks, history and comments), and "My open
tasks" for a user who holds 1/10 of all tasks.
"""

import argparse
import os
import statistics
import tempfile
import time
from collections import Counter

import psycopg
from common import QueryCounter, fresh_database, load_average, setup_django, summary, time_limit

DOCUMENTS_PER_ORDER = 4
TASKS_PER_ORDER = 2


def reference_rows() -> dict:
    """Ids the fill draws from: customers, order types, four document types, staff users; made if missing."""
    from accounts.models import User
    from accounts.roles import Role
    from catalog.models import Customer
    from orders.models import DocumentType, OrderType

    for n in range(DOCUMENTS_PER_ORDER - DocumentType.objects.count()):
        DocumentType.objects.create(code=f"bench_doc_{n}", name=f"Bench document {n}")
    if not OrderType.objects.exists():
        OrderType.objects.create(code="bench_type", name="Bench order type")
    operations = User.objects.filter(groups__name=Role.OPERATIONS, is_active=True, shared_only=False).first()
    return {
        "customers": list(Customer.objects.values_list("pk", flat=True)),
        "order_types": list(OrderType.objects.values_list("pk", flat=True)),
        "document_types": list(DocumentType.objects.values_list("pk", flat=True)[:DOCUMENTS_PER_ORDER]),
        "staff": list(User.objects.filter(is_staff=True, is_active=True).values_list("pk", flat=True)),
        "operations": operations,
    }


def fill(url: str, *, orders: int, ids: dict) -> None:
    statuses = ["started", "documents_pending", "in_progress", "completed", "failed", "cancelled"]
    steps = [
        (
            "orders",
            """
            INSERT INTO orders_order (number, customer_id, order_type_id, status, currency, fee, base_charge,
                assignee_id, start_date, due_date, started_at, completed_at, failed_at, cancelled_at, reason,
                description, created_at, updated_at)
            SELECT 'ORD-2020-' || lpad(i::text, 6, '0'), c.id,
                (%(types)s::bigint[])[1 + i %% cardinality(%(types)s)], s.status, c.currency, 1000.00 + i %% 500,
                120.00, (%(staff)s::bigint[])[1 + i %% cardinality(%(staff)s)],
                d.day, d.day + 14, d.day::timestamptz,
                CASE WHEN s.status = 'completed' THEN d.day + interval '10 days' END,
                CASE WHEN s.status = 'failed' THEN d.day + interval '10 days' END,
                CASE WHEN s.status = 'cancelled' THEN d.day + interval '2 days' END,
                CASE WHEN s.status IN ('failed', 'cancelled') THEN 'Benchmark' ELSE '' END,
                '', d.day::timestamptz, d.day::timestamptz
            FROM generate_series(1, %(orders)s) AS i
            CROSS JOIN LATERAL (SELECT (%(statuses)s::text[])[1 + i %% 6] AS status) AS s
            CROSS JOIN LATERAL (SELECT date '2020-01-01' + (i %% 2400) AS day) AS d
            JOIN catalog_customer c ON c.id = (%(customers)s::bigint[])[1 + i %% cardinality(%(customers)s)]
            """,
        ),
        (
            "documents",
            """
            INSERT INTO orders_orderdocument (order_id, document_type_id, required, status, rejection_reason,
                updated_at)
            SELECT o.id, t.id, true, 'pending', '', o.created_at
            FROM orders_order o CROSS JOIN unnest(%(document_types)s::bigint[]) AS t(id)
            WHERE o.number LIKE 'ORD-2020-%%'
            """,
        ),
        (
            "document files",
            """
            INSERT INTO orders_orderdocumentfile (document_id, sequence, file, original_name, kind, size, sha256,
                uploaded_by_id, uploaded_at)
            SELECT d.id, 1, 'orders/bench/' || d.id || '.pdf', 'scan.pdf', 'pdf', 1000, repeat('0', 64),
                %(operations)s, d.updated_at
            FROM orders_orderdocument d JOIN orders_order o ON o.id = d.order_id
            WHERE o.number LIKE 'ORD-2020-%%' AND d.id %% 2 = 0
            """,
        ),
        (
            "documents received",
            """
            UPDATE orders_orderdocument d SET current_file_id = f.id, status = 'accepted'
            FROM orders_orderdocumentfile f WHERE f.document_id = d.id AND f.file LIKE 'orders/bench/%%'
            """,
        ),
        (
            "tasks",
            """
            INSERT INTO orders_task (order_id, title, description, assignee_id, due_date, priority, done_at,
                done_by_id, created_at)
            SELECT o.id, 'Task ' || n, '', (%(staff)s::bigint[])[1 + (o.id + n) %% cardinality(%(staff)s)],
                current_date - 30 + ((o.id + n) %% 60)::int, 'normal',
                CASE WHEN (o.id + n) %% 3 = 0 THEN o.created_at END,
                CASE WHEN (o.id + n) %% 3 = 0 THEN %(operations)s END, o.created_at
            FROM orders_order o CROSS JOIN generate_series(1, 2) AS n
            WHERE o.number LIKE 'ORD-2020-%%'
            """,
        ),
        (
            "status history",
            """
            INSERT INTO orders_orderstatushistory (order_id, from_status, to_status, actor_id, at, comment, override)
            SELECT o.id, '', o.status, %(operations)s, o.created_at, '', false
            FROM orders_order o WHERE o.number LIKE 'ORD-2020-%%'
            """,
        ),
    ]
    params = {
        "orders": orders,
        "statuses": statuses,
        "customers": ids["customers"],
        "types": ids["order_types"],
        "document_types": ids["document_types"],
        "staff": ids["staff"],
        "operations": ids["operations"].pk,
    }
    with psycopg.connect(url, autocommit=True) as conn:
        for name, sql in steps:
            started = time.perf_counter()
            rows = conn.execute(sql, params).rowcount
            print(f"  {name}: {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        conn.execute("ANALYZE")
        print(f"  ANALYZE in {time.perf_counter() - started:.1f} s", flush=True)


def pages(ids: dict) -> dict[str, str]:
    from django.urls import reverse

    from orders.models import Order

    order = Order.objects.filter(tasks__isnull=False, comments__isnull=False).order_by("-pk").first()
    order = order or Order.objects.order_by("-pk").first()
    order_list = reverse("admin:orders_order_changelist")
    return {
        "order list, filtered": f"{order_list}?status__exact=in_progress&order_type__id__exact={ids['order_types'][0]}",
        "order list, overdue, search": f"{order_list}?overdue=yes&q=ORD-2020-0001",
        "order page": reverse("admin:orders_order_change", args=[order.pk]),
        "my open tasks": reverse("admin:orders_my_tasks"),
    }


def render(client, path: str, runs: int) -> tuple[list[float], int, list[float], Counter]:
    """Timings (ms), statements per request, time in SQL (ms) and SQL seconds by statement kind and table."""
    from django.db import connection

    response = client.get(path)  # warm-up
    assert response.status_code == 200, f"{path} answered {response.status_code}"
    timings, sql_timings, statements, by_table = [], [], 0, Counter()
    for _ in range(runs):
        with QueryCounter(connection) as counter:
            started = time.perf_counter()
            response = client.get(path)
            timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
        statements = counter.total
        sql_timings.append(counter.seconds * 1000)
        by_table.update(counter.seconds_by_table)
    return timings, statements, sql_timings, by_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    with fresh_database("postgres", timeout=args.timeout) as url, time_limit(args.timeout, "the benchmark"):
        # Static files as in production: collected, with their manifest.
        os.environ["STATIC_ROOT"] = tempfile.mkdtemp(prefix="bench_orders_static_")
        setup_django(url, media_root=tempfile.mkdtemp(prefix="bench_orders_media_"))
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client

        call_command("collectstatic", "--no-input", verbosity=0)

        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        ids = reference_rows()
        client = Client()
        client.force_login(ids["operations"])
        before = {name: render(client, path, 1)[1] for name, path in pages(ids).items()}

        print(f"filling {args.orders:,} orders (load {load_average()})", flush=True)
        fill(url, orders=args.orders, ids=ids)

        from orders.selectors import open_tasks_for

        print(
            f"\nrendering as {ids['operations'].email}, one of {len(ids['staff'])} staff users, with "
            f"{open_tasks_for(ids['operations']).count():,} open tasks; {args.runs} runs each (load {load_average()})"
        )
        for name, path in pages(ids).items():
            timings, statements, sql_timings, by_table = render(client, path, args.runs)
            print(f"{name:30} {summary(timings)}; {statements} statements (demo data alone: {before[name]})")
            slowest = ", ".join(
                f"{key} {seconds * 1000 / args.runs:.1f} ms" for key, seconds in by_table.most_common(3)
            )
            print(f"{'':30} in SQL: median {statistics.median(sql_timings):.1f} ms; slowest: {slowest}")
        print(f"load {load_average()}")


if __name__ == "__main__":
    main()
