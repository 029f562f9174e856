"""Time payment posting under concurrent writers on one customer (issue 4, "Speed").

Usage: .venv/bin/python bench/payment_rate.py [--writers 8] [--payments 100] [--open-invoices 50]
                                              [--seed 42] [--timeout 600]

On a fresh PostgreSQL database bench_usage_<pid> (migrated only; dropped at the end) it runs three
scenarios, each on its own customer (made through the catalog service, so the ledger opens its books):
  A. --writers threads, each with its own database connection, each calling
     ledger.services.payments.payment_record(customer=the same customer) --payments times, after all
     threads met at a barrier; the customer has --open-invoices issued invoices (6,000.00 each, more than
     all the payments), so every payment is set against the oldest open invoices;
  B. the same payments from one thread, on a customer with the same open invoices (the serial rate);
  C. as A, on a customer with no open invoice: every payment stays as credit.
Amounts are 10.00 to 500.00 (fixed seed), bank references unique. After each scenario it checks that
no call failed, that the customer's receivable balance is exactly what was charged minus what was paid,
and that allocations plus unallocated credit equal the payments; at the end, that
ledger.services.reconciliation.ledger_differences() finds no difference.
"""

import argparse
import random
import statistics
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

from common import QueryCounter, fresh_database, load_average, percentile, setup_django, time_limit

INVOICE_NET = Decimal("5000.00")  # 6,000.00 with 20 % tax


def make_customer(client_id: str, open_invoices: int):
    """A EUR customer with 20 % tax and `open_invoices` issued invoices of 6,000.00."""
    from catalog import services as catalog
    from ledger.services.billing import billing_config_update
    from ledger.services.invoices import invoice_create_manual, invoice_issue

    customer = catalog.customer_create(
        actor=None,
        client_id=client_id,
        name=f"Payer {client_id}",
        billing_email=f"ap@{client_id.lower()}.example",
        currency="EUR",
        start_date=date(2026, 1, 1),
    )
    billing_config_update(actor=None, customer=customer, tax_rate=Decimal("0.2"))
    for number in range(open_invoices):
        invoice = invoice_create_manual(
            actor=None,
            customer=customer,
            period=date(2026, 1 + number % 11, 1),
            lines=[{"description": f"Onboarding package {number}", "quantity": Decimal(1), "unit_price": INVOICE_NET}],
        )
        invoice_issue(actor=None, invoice=invoice, send=False)
    return customer


def writer(customer, amounts: list[Decimal], prefix: str, barrier: threading.Barrier, out: dict) -> None:
    from django.db import connection

    from ledger.services.payments import payment_record

    timings, errors, finishes = [], [], []
    received = datetime(2026, 11, 20, 9, tzinfo=UTC)
    try:
        connection.ensure_connection()  # the connection is opened before the clock starts
        with QueryCounter(connection) as queries:
            barrier.wait()
            for number, amount in enumerate(amounts):
                started = time.perf_counter()
                try:
                    payment_record(
                        actor=None,
                        customer=customer,
                        amount=amount,
                        received_at=received,
                        bank_reference=f"{prefix}-{number:05d}",
                    )
                except Exception as error:  # counted and reported; the other writers go on
                    errors.append(f"{type(error).__name__}: {error}")
                finished = time.perf_counter()
                timings.append((finished - started) * 1000)
                finishes.append(finished)
        out["queries"], out["sql_seconds"] = queries.total, queries.seconds
    finally:
        out["timings"], out["errors"], out["finishes"] = timings, errors, finishes
        connection.close()


def run_scenario(customer, *, writers: int, payments: int, seed: int, timeout: float) -> dict:
    rnd = random.Random(seed)
    amounts = [[Decimal(rnd.randint(1000, 50000)) / 100 for _ in range(payments)] for _ in range(writers)]
    barrier = threading.Barrier(writers + 1)
    outs = [{} for _ in range(writers)]
    threads = [
        threading.Thread(target=writer, args=(customer, amounts[n], f"W{n}", barrier, outs[n]), daemon=True)
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    deadline = started + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.perf_counter()))
    wall = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError(f"{writers} writers took more than {timeout:.0f} s; stopped")
    timings = [t for out in outs for t in out["timings"]]
    # in the order the calls finished, across writers: does a call get slower as the customer's history grows?
    finished = sorted((f, t) for out in outs for f, t in zip(out["finishes"], out["timings"], strict=True))
    in_order = [t for _, t in finished]
    return {
        "wall": wall,
        "timings": timings,
        "first": statistics.median(in_order[:100]),
        "last": statistics.median(in_order[-100:]),
        "sql_seconds": sum(out.get("sql_seconds", 0.0) for out in outs),
        "errors": [e for out in outs for e in out["errors"]],
        "queries": sum(out.get("queries", 0) for out in outs),
        "paid": sum((a for row in amounts for a in row), Decimal(0)),
    }


def check(customer, paid: Decimal) -> dict:
    from django.db.models import Sum

    from ledger.models import Account, Allocation, Invoice, Payment

    charged = Invoice.objects.filter(customer=customer, number__isnull=False).aggregate(t=Sum("total"))["t"] or 0
    payments = Payment.objects.filter(customer=customer)
    booked = payments.aggregate(t=Sum("amount"))["t"] or 0
    unallocated = payments.aggregate(t=Sum("unallocated"))["t"] or 0
    allocated = Allocation.objects.filter(payment__customer=customer).aggregate(t=Sum("amount"))["t"] or 0
    applied = Invoice.objects.filter(customer=customer).aggregate(t=Sum("amount_paid"))["t"] or 0
    balance = Account.objects.get(kind=Account.Kind.RECEIVABLE, customer=customer).balance
    return {
        "payments": payments.count(),
        "balance": balance,
        "expected": charged - paid,
        "exact": balance == charged - paid and booked == paid,
        "allocations_add_up": allocated + unallocated == paid and applied == allocated,
        "paid_invoices": Invoice.objects.filter(customer=customer, status=Invoice.Status.PAID).count(),
        "credit": unallocated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--payments", type=int, default=100, help="payments per writer")
    parser.add_argument("--open-invoices", type=int, default=50)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed to each step")
    args = parser.parse_args()

    whole, load_before = time.perf_counter(), load_average()
    total = args.writers * args.payments
    scenarios = [
        ("A", f"{args.writers} writers, {args.open_invoices} open invoices", args.writers, args.payments, True),
        ("B", f"1 writer, {args.open_invoices} open invoices", 1, total, True),
        ("C", f"{args.writers} writers, no open invoice (all credit)", args.writers, args.payments, False),
    ]
    results = []
    with fresh_database("postgres", timeout=args.timeout, seed=False) as url:
        setup_django(url)
        for label, what, writers, payments, with_invoices in scenarios:
            with time_limit(args.timeout, f"preparing scenario {label}"):
                customer = make_customer(f"PAYER-{label}", args.open_invoices if with_invoices else 0)
            from django.db import connection

            connection.close()  # the writers use their own connections
            print(f"scenario {label}: {what}, {writers} × {payments} payments …", flush=True)
            result = run_scenario(customer, writers=writers, payments=payments, seed=args.seed, timeout=args.timeout)
            result.update(check(customer, result["paid"]))
            results.append((label, what, writers, payments, result))
        from ledger.services.reconciliation import ledger_differences

        with time_limit(args.timeout, "reconciliation"):
            differences, accounts, transactions = ledger_differences()
        from django.db import connections

        connections.close_all()

    print(
        f"\nmachine: 2 cores; PostgreSQL; whole run {time.perf_counter() - whole:.0f} s; seed {args.seed}; "
        f"load average {load_before} at the start, {load_average()} at the end"
    )
    header = (
        f"{'':2}{'scenario':<42}| {'payments':>8} | {'wall s':>6} | {'per s':>6} | {'median':>6} | {'p95':>6} | "
        f"{'max':>6} | {'first/last 100':>14} | {'stmts':>5} | {'in SQL':>6} | {'errors':>6} | balance exact"
    )
    print(header)
    print("-" * len(header))
    for label, what, writers, payments, r in results:
        count = writers * payments
        print(
            f"{label:2}{what:<42}| {count:>8,} | {r['wall']:6.2f} | {count / r['wall']:6.1f} | "
            f"{statistics.median(r['timings']):6.1f} | {percentile(r['timings'], 0.95):6.1f} | "
            f"{max(r['timings']):6.1f} | {r['first']:6.1f}/{r['last']:7.1f} | {r['queries'] / count:5.1f} | "
            f"{r['sql_seconds'] / count * 1000:6.1f} | {len(r['errors']):>6} | "
            f"{r['exact']} ({r['balance']} = charged − paid {r['expected']})"
        )
    print(
        "(median, p95, max: ms per payment_record call as each writer saw it; first/last 100: median ms of the\n"
        " first and the last 100 calls to finish; stmts: statements per payment; in SQL: ms per payment inside\n"
        " execute(), lock waits included)"
    )
    for label, _, _, _, r in results:
        print(
            f"{label}: {r['payments']} payments booked, allocations + credit = payments: {r['allocations_add_up']}, "
            f"{r['paid_invoices']} invoices paid, credit left {r['credit']}"
            + (f"; first error: {r['errors'][0]}" if r["errors"] else "")
        )
    print(
        f"ledger_differences(): {len(differences)} difference(s) over {accounts} accounts and "
        f"{transactions} transactions"
    )
    for difference in differences[:10]:
        print(f"  {difference}")


if __name__ == "__main__":
    main()
