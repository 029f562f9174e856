from decimal import Decimal as D

import pytest
from django.db import connection, transaction

from catalog.tests.factories import CustomerFactory, PartnerFactory
from ledger.models import Account, BillingConfig, ImmutableError, Leg, Transaction
from ledger.services.journal import (
    Entry,
    Posting,
    UnbalancedTransaction,
    cash_account,
    receivable_account,
    revenue_account,
    transaction_post,
    transactions_post,
)

pytestmark = pytest.mark.django_db


def post(entries, **kwargs):
    return transaction_post(kind=Transaction.Kind.ADJUSTMENT, entries=entries, description="test", actor=None, **kwargs)


def test_a_new_customer_gets_a_receivable_account_and_a_billing_configuration():
    customer = CustomerFactory(currency="USD", billing_email="ap@acme.example")

    account = Account.objects.get(customer=customer, kind=Account.Kind.RECEIVABLE)
    assert (account.currency, account.balance) == ("USD", D("0.00"))
    assert BillingConfig.objects.get(customer=customer).invoice_email == "ap@acme.example"


def test_a_new_partner_gets_a_payable_account():
    partner = PartnerFactory()

    assert Account.objects.filter(partner=partner, kind=Account.Kind.PAYABLE).count() == 1


def test_posting_moves_balances_and_records_balance_after():
    customer = CustomerFactory()
    receivable, revenue = receivable_account(customer), revenue_account("kyc", "EUR")

    post([Entry(receivable, debit=D("100.00")), Entry(revenue, credit=D("100.00"))])
    second = post([Entry(receivable, credit=D("30.00")), Entry(cash_account("EUR"), debit=D("30.00"))])

    receivable.refresh_from_db()
    revenue.refresh_from_db()
    assert (receivable.balance, revenue.balance) == (D("70.00"), D("-100.00"))
    assert second.legs.get(account=receivable).balance_after == D("70.00")
    assert [leg.balance_after for leg in Leg.objects.filter(account=receivable)] == [D("100.00"), D("70.00")]


def test_postings_made_together_chain_each_accounts_balance_and_a_used_key_posts_nothing_again():
    first, second = CustomerFactory(), CustomerFactory()
    revenue = revenue_account("kyc", "EUR")
    already = post(
        [Entry(receivable_account(first), debit=D("5.00")), Entry(revenue, credit=D("5.00"))], idempotency_key="k0"
    )

    def charge(customer, amount, key):
        return Posting(
            Transaction.Kind.CHARGE,
            [Entry(receivable_account(customer), debit=D(amount)), Entry(revenue, credit=D(amount))],
            f"Charge {key}",
            idempotency_key=key,
        )

    posted = transactions_post(
        [charge(first, "10.00", "k1"), charge(second, "20.00", "k2"), charge(first, "1.00", "k0")], actor=None
    )

    assert posted[2] == already and Transaction.objects.count() == 3
    assert [leg.balance_after for leg in Leg.objects.filter(account=revenue).order_by("pk")] == [
        D("-5.00"),
        D("-15.00"),
        D("-35.00"),
    ]
    assert [leg.balance_after for leg in posted[0].legs.order_by("pk")] == [D("15.00"), D("-15.00")]
    assert {account.code: account.balance for account in Account.objects.filter(legs__isnull=False).distinct()} == {
        receivable_account(first).code: D("15.00"),
        receivable_account(second).code: D("20.00"),
        revenue.code: D("-35.00"),
    }
    assert transactions_post([charge(second, "20.00", "k2")], actor=None) == [posted[1]]


@pytest.mark.parametrize(
    ("debit", "credit", "message"),
    [
        (D("10.00"), D("9.99"), "differ"),
        (D("-10.00"), D("-10.00"), "positive"),
        (D("0.00"), D("0.00"), "positive"),
        (D("10.001"), D("10.001"), "two decimal places"),
    ],
)
def test_an_unbalanced_or_malformed_posting_is_refused_and_writes_nothing(debit, credit, message):
    customer = CustomerFactory()
    receivable, revenue = receivable_account(customer), revenue_account("kyc", "EUR")

    with pytest.raises(UnbalancedTransaction, match=message):
        post([Entry(receivable, debit=debit), Entry(revenue, credit=credit)])

    assert not Transaction.objects.exists()
    receivable.refresh_from_db()
    assert receivable.balance == 0


def test_a_posting_needs_two_legs_in_one_currency():
    eur, usd = CustomerFactory(currency="EUR"), CustomerFactory(currency="USD")

    with pytest.raises(UnbalancedTransaction, match="two legs"):
        post([Entry(receivable_account(eur), debit=D(1))])
    with pytest.raises(UnbalancedTransaction, match="one currency"):
        post([Entry(receivable_account(eur), debit=D(1)), Entry(receivable_account(usd), credit=D(1))])


def test_the_same_idempotency_key_posts_once():
    customer = CustomerFactory()
    entries = [Entry(receivable_account(customer), debit=D(5)), Entry(revenue_account("kyc", "EUR"), credit=D(5))]

    first = post(entries, idempotency_key="charge:1")
    again = post(entries, idempotency_key="charge:1")

    assert first.pk == again.pk
    assert receivable_account(customer).balance == D(5)


def test_legs_and_transactions_cannot_be_changed_or_deleted_through_the_orm():
    customer = CustomerFactory()
    posted = post([Entry(receivable_account(customer), debit=D(5)), Entry(cash_account("EUR"), credit=D(5))])
    leg = posted.legs.first()

    with pytest.raises(ImmutableError):
        leg.save()
    with pytest.raises(ImmutableError):
        posted.delete()
    with pytest.raises(ImmutableError):
        Leg.objects.filter(pk=leg.pk).update(debit=D(6))
    with pytest.raises(ImmutableError):
        Transaction.objects.all().delete()


needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="database triggers are PostgreSQL's")


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_an_unbalanced_insert_through_raw_sql():
    customer = CustomerFactory()
    receivable, revenue = receivable_account(customer), revenue_account("kyc", "EUR")

    with pytest.raises(Exception, match="does not balance"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transaction (kind, description, reference, currency, created_at) "
            "VALUES ('adjustment', 'raw', '', 'EUR', now()) RETURNING id"
        )
        (txn_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO ledger_leg (transaction_id, account_id, debit, credit, balance_after) "
            "VALUES (%s, %s, 10, 0, 10), (%s, %s, 0, 9, -9)",
            [txn_id, receivable.pk, txn_id, revenue.pk],
        )

    assert not Transaction.objects.exists()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_a_transaction_without_legs_and_non_positive_amounts():
    customer = CustomerFactory()
    receivable = receivable_account(customer)

    with pytest.raises(Exception, match="at least two"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transaction (kind, description, reference, currency, created_at) "
            "VALUES ('adjustment', 'raw', '', 'EUR', now())"
        )
    with pytest.raises(Exception, match="leg_one_positive_side"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_transaction (kind, description, reference, currency, created_at) "
            "VALUES ('adjustment', 'raw', '', 'EUR', now()) RETURNING id"
        )
        (txn_id,) = cursor.fetchone()
        cursor.execute(
            "INSERT INTO ledger_leg (transaction_id, account_id, debit, credit, balance_after) "
            "VALUES (%s, %s, -5, 0, -5), (%s, %s, 0, -5, 0)",
            [txn_id, receivable.pk, txn_id, receivable.pk],
        )


@needs_postgres
def test_postgres_refuses_updating_or_deleting_legs_through_raw_sql():
    customer = CustomerFactory()
    posted = post([Entry(receivable_account(customer), debit=D(5)), Entry(cash_account("EUR"), credit=D(5))])

    for statement in (
        "UPDATE ledger_leg SET debit = 6 WHERE transaction_id = %s",
        "DELETE FROM ledger_leg WHERE transaction_id = %s",
        "UPDATE ledger_transaction SET description = 'x' WHERE id = %s",
        "DELETE FROM ledger_transaction WHERE id = %s",
    ):
        with (
            pytest.raises(Exception, match="never updated or deleted"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [posted.pk])
