"""Time a bulk completion that settles 10,000 orders at once (issue 12, "Speed").

Usage: .venv/bin/python bench/settle_orders.py [--orders 10000] [--small 1000] [--timeout 1800]

On a fresh PostgreSQL database (migrated, not seeded; dropped at the end) it
1. makes 50 customers (EUR, 20 % tax), 20 partners with a general 30 % revenue-share agreement (a third of them
   also one for the order type), and --orders + --small orders in progress, each with a partner, an issued
   invoice of kind `order` (fee 1,000.00 + tax, base charge 120.00) paid in full, and two expenses; rows are
   written with bulk_create (the services' own paths are what is timed, not the fill);
2. completes --small orders through `orders_complete` (the bulk completion of the orders list) and counts
   its SQL statements;
3. completes the --orders others the same way: the wall time, the statements (which must equal step 2's:
   queries do not grow with the orders), and checks each order got one settlement with the expected share.
"""

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

from common import QueryCounter, fresh_database, load_average, setup_django, time_limit

FEE, BASE, TAX_RATE = D("1000.00"), D("120.00"), D("0.2")
EXPENSES = (D("120.00"), D("30.00"))
SHARE = D("291.00")  # DESIGN.md's example: 30 % of (1,000.00 + 120.00 − 150.00)
SPECIFIC_SHARE = D("388.00")  # 40 % of 970.00


def fill(count: int) -> list:
    from accounts.models import User
    from catalog.models import Customer, Partner
    from ledger.models import BillingConfig, Invoice, InvoiceItem
    from orders.models import Expense, Order, OrderType, RevenueShareAgreement

    actor = User.objects.create(email="bench-finance@countinghouse.example", full_name="Bench Finance", is_staff=True)
    order_type = OrderType.objects.create(code="bench_formation", name="Company formation")
    customers = Customer.objects.bulk_create(
        Customer(client_id=f"BENCH-{n:03d}", name=f"Bench customer {n}", currency="EUR") for n in range(50)
    )
    BillingConfig.objects.bulk_create(BillingConfig(customer=customer, tax_rate=TAX_RATE) for customer in customers)
    partners = Partner.objects.bulk_create(Partner(name=f"Bench partner {n}") for n in range(20))
    RevenueShareAgreement.objects.bulk_create(
        [RevenueShareAgreement(partner=p, percentage=D("30"), valid_from=date(2026, 1, 1)) for p in partners]
        + [
            RevenueShareAgreement(partner=p, order_type=order_type, percentage=D("40"), valid_from=date(2026, 1, 1))
            for p in partners[::3]
        ]
    )
    now = datetime.now(UTC)
    started = now - timedelta(days=10)
    invoices = Invoice.objects.bulk_create(
        Invoice(
            customer=customers[n % len(customers)],
            kind=Invoice.Kind.ORDER,
            period=date(2026, 11, 1),
            status=Invoice.Status.PAID,
            number=f"INV-2026-{n + 1:06d}",
            currency="EUR",
            subtotal=FEE + BASE,
            tax=FEE * TAX_RATE,
            total=FEE * (1 + TAX_RATE) + BASE,
            amount_paid=FEE * (1 + TAX_RATE) + BASE,
            issued_at=started,
            paid_at=started,
        )
        for n in range(count)
    )
    InvoiceItem.objects.bulk_create(
        item
        for invoice in invoices
        for item in (
            InvoiceItem(
                invoice=invoice,
                position=0,
                source=InvoiceItem.Source.ORDER_FEE,
                description="Company formation: fee",
                quantity=1,
                unit_price=FEE,
                amount=FEE,
                tax_rate=TAX_RATE,
                tax_amount=FEE * TAX_RATE,
            ),
            InvoiceItem(
                invoice=invoice,
                position=1,
                source=InvoiceItem.Source.DISBURSEMENT,
                description="Company formation: base charge",
                quantity=1,
                unit_price=BASE,
                amount=BASE,
                tax_rate=0,
                tax_amount=0,
            ),
        )
    )
    orders = Order.objects.bulk_create(
        Order(
            number=f"ORD-2026-{n + 1:06d}",
            customer=invoice.customer,
            partner=partners[n % len(partners)],
            order_type=order_type,
            status=Order.Status.IN_PROGRESS,
            currency="EUR",
            fee=FEE,
            base_charge=BASE,
            start_date=started.date(),
            due_date=started.date() + timedelta(days=30),
            started_at=started,
            invoice=invoice,
        )
        for n, invoice in enumerate(invoices)
    )
    Expense.objects.bulk_create(
        Expense(
            order=order,
            amount=amount,
            currency="EUR",
            date=started.date(),
            payee="Registrar",
            category=Expense.Category.REGISTRAR_FEE,
            created_by=actor,
        )
        for order in orders
        for amount in EXPENSES
    )
    return actor, orders, {partner.pk for partner in partners[::3]}


def complete(actor, orders) -> tuple[float, int]:
    from django.db import connection

    from orders.services.orders import orders_complete

    with QueryCounter(connection) as counter:
        start = time.perf_counter()
        completed, refused = orders_complete(actor=actor, orders=orders)
        elapsed = time.perf_counter() - start
    assert len(completed) == len(orders) and not refused, refused
    print(f"  statements by kind: {dict(counter.by_kind)}")
    return elapsed, counter.total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()

    with fresh_database("postgres", timeout=args.timeout, seed=False) as url, time_limit(args.timeout, "the run"):
        setup_django(url)
        from orders.models import Settlement

        print(f"filling {args.small + args.orders:,} orders (load {load_average()})", flush=True)
        actor, orders, specific_partners = fill(args.small + args.orders)
        small, large = orders[: args.small], orders[args.small :]

        small_time, small_statements = complete(actor, small)
        print(f"completed and settled {len(small):,} orders in {small_time:.2f} s, {small_statements} statements")
        large_time, large_statements = complete(actor, large)
        print(f"completed and settled {len(large):,} orders in {large_time:.2f} s, {large_statements} statements")

        shares = dict(Settlement.objects.values_list("order_id", "share"))
        expected = {o.pk: SPECIFIC_SHARE if o.partner_id in specific_partners else SHARE for o in orders}
        assert shares == expected, "a settlement differs from the expected share"
        print(f"{len(shares):,} settlements, each as expected (291.00 or 388.00); load {load_average()}")


if __name__ == "__main__":
    main()
