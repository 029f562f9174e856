"""Order expenses: recording (with a receipt) posts `expense` to the ledger, a reversal posts the opposite once,
bad input changes nothing, and only Finance and Admin see or record them — in the services, the API and the admin.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.roles import Role
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from ledger.models import Account, Leg, Transaction
from ledger.services.reconciliation import ledger_differences
from orders.models import Expense
from orders.selectors import expense_list_for
from orders.services.expenses import expense_record, expense_reverse
from orders.services.orders import order_create
from orders.tests.conftest import pdf_bytes

pytestmark = pytest.mark.django_db

REGISTRAR_FEE = Expense.Category.REGISTRAR_FEE


def files_in(media_root) -> list[str]:
    return (
        sorted(str(p.relative_to(media_root)) for p in media_root.rglob("*") if p.is_file())
        if media_root.exists()
        else []
    )


def balances() -> dict[str, Decimal]:
    """The business's own accounts (a customer's receivable opens with the customer)."""
    return dict(Account.objects.exclude(kind=Account.Kind.RECEIVABLE).values_list("code", "balance"))


def exe_named(name: str = "receipt.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200, "application/pdf")


@pytest.fixture
def order(formation, operations_user):
    return order_create(actor=operations_user, customer=formation["customer"], order_type=formation["order_type"])


@pytest.fixture
def record(order, finance_user):
    def record(**changes):
        fields = {
            "actor": finance_user,
            "order": order,
            "amount": Decimal("120.00"),
            "date": billing_today(),
            "payee": "Companies House",
            "category": REGISTRAR_FEE,
        }
        return expense_record(**(fields | changes))

    return record


# --- Recording and posting --------------------------------------------------------------------------------------


def test_a_paid_expense_debits_its_category_and_credits_cash(record, order, finance_user, pdf_upload, media_in_tmp):
    expense = record(reference="CH-4411", receipt=pdf_upload("fee receipt.pdf"))

    assert (expense.amount, expense.currency, expense.created_by) == (Decimal("120.00"), "GBP", finance_user)
    posted = expense.ledger_transaction
    assert posted.kind == Transaction.Kind.EXPENSE and posted.source == expense and posted.customer is None
    legs = {(leg.account.code, leg.debit, leg.credit) for leg in posted.legs.select_related("account")}
    assert legs == {
        ("expense:registrar_fee:GBP", Decimal("120.00"), Decimal("0.00")),
        ("cash:GBP", Decimal("0.00"), Decimal("120.00")),
    }
    assert Account.objects.get(code="expense:registrar_fee:GBP").kind == Account.Kind.EXPENSE
    assert expense.receipt.name == f"orders/acme-001/{order.number}/expenses/1-fee_receipt.pdf"
    assert files_in(media_in_tmp) == [expense.receipt.name]
    assert (expense.receipt_name, expense.receipt_kind) == ("fee receipt.pdf", "pdf")
    assert ledger_differences()[0] == []


def test_an_unpaid_expense_is_owed_to_suppliers(record):
    expense = record(amount=Decimal("30.00"), category=Expense.Category.COURIER, payee="DHL", paid=False)

    assert balances() == {"expense:courier:GBP": Decimal("30.00"), "suppliers:GBP": Decimal("-30.00")}
    assert Account.objects.get(code="suppliers:GBP").kind == Account.Kind.SUPPLIER_PAYABLE
    assert expense.ledger_transaction.legs.count() == 2


def test_expenses_in_one_category_and_currency_share_an_account(record):
    record()
    record(amount=Decimal("0.01"))

    assert balances() == {"expense:registrar_fee:GBP": Decimal("120.01"), "cash:GBP": Decimal("-120.01")}


# --- Bad input: a clear error naming the field, and nothing changed or stored -----------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"amount": Decimal("0")}, "amount", "amount_not_positive"),
        ({"amount": Decimal("0.00")}, "amount", "amount_not_positive"),
        ({"amount": Decimal("-5.00")}, "amount", "amount_not_positive"),
        ({"amount": Decimal("10.005")}, "amount", "amount_precision"),
        ({"amount": Decimal("1000000000.01")}, "amount", "out_of_range"),
        ({"currency": "EUR"}, "currency", "currency_mismatch"),
        ({"date": date(1999, 12, 31)}, "date", "out_of_range"),
        ({"date": billing_today() + timedelta(days=2)}, "date", "out_of_range"),
        ({"payee": "  "}, "payee", "required"),
        ({"category": "lunch"}, "category", "invalid_choice"),
        ({"receipt": exe_named()}, "receipt", "file_kind"),
        ({"receipt": exe_named("setup.exe")}, "receipt", "file_kind"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(record, media_in_tmp, changes, field, code):
    with pytest.raises(DomainError) as refused:
        record(**({"receipt": SimpleUploadedFile("r.pdf", pdf_bytes())} | changes))

    assert refused.value.code == code and field in refused.value.fields, refused.value.fields
    assert not Expense.objects.exists() and not Transaction.objects.exists() and balances() == {}
    assert files_in(media_in_tmp) == []


def test_the_amount_bound_follows_max_amount(record, settings):
    settings.MAX_AMOUNT = Decimal("500.00")

    with pytest.raises(DomainError) as refused:
        record(amount=Decimal("500.01"))

    assert "MAX_AMOUNT" in refused.value.fields["amount"][0]
    assert record(amount=Decimal("500.00")).amount == Decimal("500.00")


def test_a_failed_posting_leaves_no_receipt_in_storage(record, media_in_tmp, monkeypatch, pdf_upload):
    from orders.services import expenses

    def refuse(**kwargs):
        raise DomainError("The journal is closed.")

    monkeypatch.setattr(expenses, "transaction_post", refuse)

    with pytest.raises(DomainError):
        record(receipt=pdf_upload())

    assert files_in(media_in_tmp) == [] and not Expense.objects.exists()


# --- Reversal ---------------------------------------------------------------------------------------------------


def test_a_reversal_posts_the_opposite_entry_once(record, finance_user):
    expense = record(paid=False)

    reversal = expense_reverse(actor=finance_user, expense=expense, reason="Charged to the wrong order")

    assert reversal.reverses == expense and reversal.amount == Decimal("-120.00") and not reversal.paid
    assert reversal.date == billing_today() and reversal.reason == "Charged to the wrong order"
    legs = {(leg.account.code, leg.debit, leg.credit) for leg in reversal.ledger_transaction.legs.all()}
    assert legs == {
        ("suppliers:GBP", Decimal("120.00"), Decimal("0.00")),
        ("expense:registrar_fee:GBP", Decimal("0.00"), Decimal("120.00")),
    }
    assert set(balances().values()) == {Decimal("0.00")}
    assert sum(e.amount for e in Expense.objects.filter(order=expense.order)) == Decimal("0.00")

    with pytest.raises(DomainError) as twice:
        expense_reverse(actor=finance_user, expense=expense, reason="Again")
    assert twice.value.code == "already_reversed"
    with pytest.raises(DomainError) as of_reversal:
        expense_reverse(actor=finance_user, expense=reversal, reason="Undo the undo")
    assert of_reversal.value.code == "expense_is_reversal"
    assert Expense.objects.count() == 2 and Transaction.objects.count() == 2
    assert ledger_differences()[0] == []


def test_a_reversal_needs_a_reason(record, finance_user):
    expense = record()

    with pytest.raises(DomainError) as refused:
        expense_reverse(actor=finance_user, expense=expense, reason=" ")

    assert "reason" in refused.value.fields and Expense.objects.count() == 1


def test_expenses_and_reversals_keep_the_journal_balanced_and_reconciled(record, finance_user):
    categories = list(Expense.Category.values)
    recorded = [
        record(amount=Decimal(f"{n * 7 + 1}.{n:02d}"), category=categories[n % len(categories)], paid=n % 2 == 0)
        for n in range(10)
    ]
    for expense in recorded[::3]:
        expense_reverse(actor=finance_user, expense=expense, reason="Duplicate")

    differences, _, transactions = ledger_differences()
    assert differences == [] and transactions == 14
    for posted in Transaction.objects.filter(kind=Transaction.Kind.EXPENSE):
        legs = list(posted.legs.all())
        assert sum(leg.debit for leg in legs) == sum(leg.credit for leg in legs)
    assert sum(Leg.objects.values_list("debit", flat=True)) == sum(Leg.objects.values_list("credit", flat=True))
    kept = sum(e.amount for e in recorded) - sum(e.amount for e in recorded[::3])
    expense_total = sum(a.balance for a in Account.objects.filter(kind=Account.Kind.EXPENSE))
    assert expense_total == kept == sum(Expense.objects.values_list("amount", flat=True))


# --- Who sees expenses ------------------------------------------------------------------------------------------


def test_only_finance_and_admin_see_expenses(record, make_user, operations_user, admin_user, finance_user, portal_user):
    expense = record()

    assert list(expense_list_for(finance_user)) == [expense]
    assert list(expense_list_for(admin_user)) == [expense]
    for user in (operations_user, make_user(Role.SALES), make_user(Role.CUSTOMER_SUCCESS), portal_user):
        assert not expense_list_for(user).exists(), user


# --- API --------------------------------------------------------------------------------------------------------


def url(order, *parts) -> str:
    return "/".join([f"/api/orders/{order.pk}/expenses", *map(str, parts)])


def test_finance_records_an_expense_with_a_receipt_and_downloads_it(order, finance_user, client_for, pdf_upload):
    api = client_for(finance_user)
    body = {
        "amount": "120.00",
        "date": billing_today().isoformat(),
        "payee": "Companies House",
        "category": "registrar_fee",
        "reference": "CH-1",
        "paid": "false",
        "receipt": pdf_upload("fee.pdf"),
    }

    response = api.post(url(order), body, format="multipart", HTTP_IDEMPOTENCY_KEY="exp-1")

    assert response.status_code == 201, response.content
    created = response.json()
    assert (created["amount"], created["currency"], created["paid"]) == ("120.00", "GBP", False)
    assert created["receipt_name"] == "fee.pdf" and created["created_by"] == finance_user.email
    download = api.get(created["receipt"])
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    with Expense.objects.get().receipt.open("rb") as stored:
        assert b"".join(download.streaming_content) == stored.read()
    assert [e["id"] for e in api.get(url(order)).json()["results"]] == [created["id"]]
    body["receipt"] = pdf_upload("fee.pdf")
    replay = api.post(url(order), body, format="multipart", HTTP_IDEMPOTENCY_KEY="exp-1")
    assert replay.status_code == 201 and replay["Idempotency-Key-Replayed"] == "true"
    assert Expense.objects.count() == 1 and Transaction.objects.count() == 1


def test_the_api_refuses_bad_expenses_naming_the_field(order, finance_user, client_for, media_in_tmp):
    api = client_for(finance_user)
    good = {"amount": "10.00", "date": billing_today().isoformat(), "payee": "DHL", "category": "courier"}
    bad = [
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-1.00"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": "1000000000.01"}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"date": "1999-12-31"}, "date"),
        ({"category": "lunch"}, "category"),
    ]
    for changes, field in bad:
        response = api.post(url(order), good | changes, format="json")
        assert response.status_code == 400, (changes, response.content)
        assert field in response.json()["error"]["fields"], (changes, response.json())
    renamed = api.post(url(order), good | {"receipt": exe_named()}, format="multipart")
    assert renamed.status_code == 400 and "receipt" in renamed.json()["error"]["fields"]
    assert not Expense.objects.exists() and not Transaction.objects.exists() and files_in(media_in_tmp) == []


def test_the_api_reverses_an_expense_once(record, order, finance_user, client_for):
    expense = record()
    api = client_for(finance_user)

    reversed_ = api.post(url(order, expense.pk, "reverse"), {"reason": "Duplicate"}, format="json")
    again = api.post(url(order, expense.pk, "reverse"), {"reason": "Duplicate"}, format="json")

    assert reversed_.status_code == 201 and reversed_.json()["amount"] == "-120.00"
    assert reversed_.json()["reverses"] == expense.pk
    assert again.status_code == 400 and again.json()["error"]["code"] == "already_reversed"
    listed = {e["id"]: e["reversed_by"] for e in api.get(url(order)).json()["results"]}
    assert listed == {expense.pk: reversed_.json()["id"], reversed_.json()["id"]: None}


def test_operations_and_the_portal_neither_see_nor_record_expenses(
    record, order, operations_user, portal_user, make_user, client_for
):
    expense = record()
    body = {"amount": "10.00", "date": billing_today().isoformat(), "payee": "DHL", "category": "courier"}
    for user in (operations_user, make_user(Role.SALES), make_user(Role.CUSTOMER_SUCCESS)):
        api = client_for(user)
        assert api.get(url(order)).status_code == 403, user
        assert api.post(url(order), body, format="json").status_code == 403, user
        assert api.post(url(order, expense.pk, "reverse"), {"reason": "x"}, format="json").status_code == 403
        assert "expenses" not in str(api.get(f"/api/orders/{order.pk}").content)
    assert client_for(portal_user).get(url(order)).status_code == 403
    assert Expense.objects.count() == 1


def test_another_orders_expense_answers_404(record, order, formation, finance_user, client_for):
    expense = record()
    other = order_create(actor=finance_user, customer=formation["customer"], order_type=formation["order_type"])

    api = client_for(finance_user)
    assert api.post(url(other, expense.pk, "reverse"), {"reason": "x"}, format="json").status_code == 404
    assert api.get(url(other, expense.pk, "receipt")).status_code == 404
    assert api.get(f"/api/orders/{order.pk + 1000}/expenses").status_code == 404


# --- Admin ------------------------------------------------------------------------------------------------------


def page(order) -> str:
    return f"/admin/orders/order/{order.pk}/change/"


def test_finance_records_and_reverses_an_expense_on_the_order_page(client, order, finance_user, pdf_upload):
    client.force_login(finance_user)
    empty = client.get(page(order)).content.decode()
    assert 'data-testid="expenses"' in empty and "No expenses recorded." in empty

    form = {
        "amount": "1234.50",
        "date": billing_today().isoformat(),
        "category": "notary",
        "payee": "Notary Smith",
        "reference": "N-77",
        "paid": "on",
        "receipt": pdf_upload("notary.pdf"),
    }
    response = client.post(f"/admin/orders/order/{order.pk}/expenses/add/", form, follow=True)

    text = response.content.decode()
    assert "Expense of GBP\xa01,234.50 to Notary Smith recorded and posted." in text, text[:3000]
    expense = Expense.objects.get()
    assert "GBP\xa01,234.50" in text and "notary.pdf" in text
    receipt = client.get(f"/admin/orders/expense/{expense.pk}/receipt/")
    assert receipt.status_code == 200 and receipt["Content-Disposition"].endswith('filename="notary.pdf"')

    reverse_url = f"/admin/orders/order/{order.pk}/expenses/{expense.pk}/reverse/"
    text = client.post(reverse_url, {"reason": "Wrong notary"}, follow=True).content.decode()
    assert f"Expense EXP-{expense.pk} reversed by EXP-" in text and "-GBP\u00a01,234.50" in text
    assert "Reverses EXP-" in text and 'data-testid="expense-total">GBP\u00a00.00' in text
    again = client.post(reverse_url, {"reason": "Again"}, follow=True).content.decode()
    assert "already reversed" in again and Expense.objects.count() == 2


def test_a_bad_expense_in_the_admin_says_why_and_records_nothing(client, order, finance_user, media_in_tmp):
    client.force_login(finance_user)
    form = {"amount": "10.00", "date": "1999-01-01", "category": "courier", "payee": "DHL", "receipt": exe_named()}

    text = client.post(f"/admin/orders/order/{order.pk}/expenses/add/", form, follow=True).content.decode()

    assert "is not a file kind" in text or "before 2000-01-01" in text
    assert not Expense.objects.exists() and files_in(media_in_tmp) == []


def test_operations_sees_no_expenses_tab_and_cannot_post_one(client, record, order, operations_user):
    expense = record(receipt=SimpleUploadedFile("r.pdf", pdf_bytes()))
    client.force_login(operations_user)

    text = client.get(page(order)).content.decode()
    assert 'data-testid="expenses"' not in text and "Companies House" not in text
    form = {"amount": "10.00", "date": billing_today().isoformat(), "category": "courier", "payee": "DHL"}
    assert client.post(f"/admin/orders/order/{order.pk}/expenses/add/", form).status_code == 403
    assert (
        client.post(f"/admin/orders/order/{order.pk}/expenses/{expense.pk}/reverse/", {"reason": "x"}).status_code
        == 403
    )
    assert client.get(f"/admin/orders/expense/{expense.pk}/receipt/").status_code == 404
    assert client.get("/admin/orders/expense/").status_code == 403
    assert Expense.objects.count() == 1


def test_the_expense_changelist_is_read_only_and_filters(client, record, finance_user, django_assert_max_num_queries):
    record()
    record(category=Expense.Category.COURIER, payee="DHL", amount=Decimal("30.00"))
    client.force_login(finance_user)

    with django_assert_max_num_queries(20):
        response = client.get("/admin/orders/expense/?category=courier")

    text = response.content.decode()
    assert response.status_code == 200 and "DHL" in text and "GBP\u00a030.00" in text and "Companies House" not in text
    assert client.get("/admin/orders/expense/add/").status_code == 403
