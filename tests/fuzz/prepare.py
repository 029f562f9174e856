"""Sign-ins and real ids for the API fuzzer, read from a freshly seeded demo database.

Run by tests/fuzz/run.py with the fuzz database's environment:

    python tests/fuzz/prepare.py OUT_DIR

It writes OUT_DIR/<role>.json for Admin, Finance and the portal user: an API token created for that
user; for each path of the schema with an id in it, the ids of the demo's objects to use there; and
for the body fields that name another object (customer, csm, sales_owner, service, order_type, document_type,
user, ...), real values. The order desk's lists may be empty when the demo holds no orders.
Every role gets every id: what the user may not see (for the portal user, other customers' objects)
must answer 404.
"""

import json
import os
import sys
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
django.setup()

from django.contrib.contenttypes.models import ContentType  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.roles import Role  # noqa: E402
from accounts.services import api_token_create  # noqa: E402
from approvals.models import ApprovalAction  # noqa: E402
from catalog.models import (  # noqa: E402
    Customer,
    CustomerUserObjectPermission,
    MinimumCommitment,
    Partner,
    PriceAgreement,
    Service,
)
from fixtures.demo import PORTAL_EMAIL  # noqa: E402
from ledger.models import Invoice, Payment, Transaction  # noqa: E402
from orders.models import (  # noqa: E402
    Company,
    DocumentType,
    Expense,
    Order,
    OrderDocument,
    OrderDocumentFile,
    OrderType,
    OrderUserObjectPermission,
    PayoutBatch,
    Registrar,
    RevenueShareAgreement,
    Settlement,
    Task,
)

ROLES = {
    "admin": "admin@countinghouse.example",
    "finance": "finance@countinghouse.example",
    "portal": PORTAL_EMAIL,
}
INVOICE_PATHS = [
    f"/api/{resource}/{{id}}{action}"
    for resource in ("invoices", "bills")
    for action in ("", "/issue", "/credit-notes", "/submit", "/approve", "/reject", "/revert", "/reroute", "/einvoice")
]


def _ids(queryset) -> list[dict]:
    return [{"id": pk} for pk in queryset.order_by("pk").values_list("pk", flat=True)]


def _attachments() -> list[dict]:
    """Every action of an invoice's approval that has a file, and one that has none (404)."""
    actions = ApprovalAction.objects.filter(request__target_type=ContentType.objects.get_for_model(Invoice))
    with_file = [
        {"id": action.request.target_id, "action_id": action.pk}
        for action in actions.exclude(attachment="").select_related("request").order_by("pk")
    ]
    without = actions.filter(attachment="").select_related("request").order_by("pk").first()
    return with_file + ([{"id": without.request.target_id, "action_id": without.pk}] if without else [])


def _pairs(queryset, **names: str) -> list[dict]:
    """Rows of `queryset` as path parameters: {parameter: the row's value of the field named}."""
    rows = queryset.order_by("pk").values_list(*names.values())
    return [dict(zip(names, row, strict=True)) for row in rows]


def _order_targets() -> dict[str, list[dict]]:
    """The order desk's paths. Every list may be empty (a demo without orders): the fuzzer then keeps the ids it
    generates, which must answer 404."""
    orders = _pairs(Order.objects.all(), order_pk="pk")
    documents = _pairs(OrderDocument.objects.all(), order_pk="order_id", document_pk="pk")
    tasks = _pairs(Task.objects.all(), order_pk="order_id", task_pk="pk")
    staff = User.objects.filter(is_staff=True).order_by("pk").values_list("pk", flat=True)
    first_order = Order.objects.order_by("pk").first()
    first_customer = Customer.objects.order_by("pk").first()
    # A grant that exists (DELETE answers 204 once) and pairs that are none (404).
    shared = _pairs(OrderUserObjectPermission.objects.all(), order_pk="content_object_id", user_pk="user_id")
    shared += [{"order_pk": first_order.pk, "user_pk": pk} for pk in staff[:3]] if first_order else []
    deputies = _pairs(
        CustomerUserObjectPermission.objects.filter(permission__codename="deputy_csm"),
        id="content_object_id",
        user_pk="user_id",
    )
    deputies += [{"id": first_customer.pk, "user_pk": pk} for pk in staff[:3]] if first_customer else []
    document = "/api/orders/{order_pk}/documents/{document_pk}"
    task = "/api/orders/{order_pk}/tasks/{task_pk}"
    expense = "/api/orders/{order_pk}/expenses/{expense_pk}"
    expenses = _pairs(Expense.objects.all(), order_pk="order_id", expense_pk="pk")
    return {
        "/api/orders/{id}": _ids(Order.objects.all()),
        "/api/orders/{id}/transition": _ids(Order.objects.all()),
        "/api/orders/{id}/invoice": _ids(Order.objects.all()),
        "/api/orders/{id}/credit": _ids(Order.objects.all()),
        **dict.fromkeys(
            [f"/api/orders/{{order_pk}}/{part}" for part in ("documents", "tasks", "comments", "access", "expenses")],
            orders,
        ),
        f"{document}/review": documents,
        f"{document}/submit": documents,
        f"{document}/files/{{file_pk}}/download": _pairs(
            OrderDocumentFile.objects.all(), order_pk="document__order_id", document_pk="document_id", file_pk="pk"
        ),
        task: tasks,
        f"{task}/complete": tasks,
        f"{task}/reopen": tasks,
        "/api/orders/{order_pk}/access/{user_pk}": shared,
        f"{expense}/reverse": expenses,
        f"{expense}/receipt": expenses,
        "/api/customers/{id}/deputies": _ids(Customer.objects.all()),
        "/api/customers/{id}/deputies/{user_pk}": deputies,
        "/api/order-types/{id}": _ids(OrderType.objects.all()),
        "/api/document-types/{id}": _ids(DocumentType.objects.all()),
        "/api/companies/{id}": _ids(Company.objects.all()),
        "/api/registrars/{id}": _ids(Registrar.objects.all()),
        "/api/revenue-share-agreements/{id}": _ids(RevenueShareAgreement.objects.all()),
        "/api/orders/{id}/settle": _ids(Order.objects.all()),
        **dict.fromkeys(
            ["/api/settlements/{id}", "/api/settlements/{id}/approve", "/api/settlements/{id}/reject"],
            _ids(Settlement.objects.all()),
        ),
        **dict.fromkeys(
            [f"/api/payout-batches/{{id}}{part}" for part in ("", "/approve", "/bank-file", "/cancel", "/statement")],
            _ids(PayoutBatch.objects.all()),
        ),
    }


def targets() -> dict[str, list[dict]]:
    invoices = _ids(Invoice.objects.all())
    customers = _ids(Customer.objects.all())
    return {
        **_order_targets(),
        **dict.fromkeys(INVOICE_PATHS, invoices),
        "/api/invoices/{id}/approval-attachments/{action_id}": _attachments(),
        "/api/bills/{id}/approval-attachments/{action_id}": _attachments(),
        "/api/customers/{id}": customers,
        "/api/customers/{id}/statement": customers,
        "/api/partners/{id}": _ids(Partner.objects.all()),
        "/api/services/{id}": _ids(Service.objects.all()),
        "/api/price-agreements/{id}": _ids(PriceAgreement.objects.all()),
        "/api/minimum-commitments/{id}": _ids(MinimumCommitment.objects.all()),
        "/api/payments/{id}": _ids(Payment.objects.all()),
        "/api/payments/{id}/allocations": _ids(Payment.objects.all()),
        "/api/transactions/{id}": _ids(Transaction.objects.all()),
        "/api/users/{id}": _ids(User.objects.all()),
    }


def body_values() -> dict[str, list]:
    """Values for the fields of request bodies that name another object, by field name."""
    staff = list(User.objects.filter(is_staff=True, is_active=True).order_by("pk").values_list("pk", flat=True))
    invoices = list(Invoice.objects.filter(number__isnull=False).order_by("pk").values_list("pk", flat=True))
    return {
        "customer": list(Customer.objects.order_by("pk").values_list("pk", flat=True)),
        "csm": staff,
        "sales_owner": staff,
        "service": list(Service.objects.order_by("pk").values_list("code", flat=True)),
        "invoice": invoices,
        "from_invoice": invoices,
        "order_type": list(OrderType.objects.filter(active=True).order_by("pk").values_list("code", flat=True)),
        "document_type": list(DocumentType.objects.order_by("pk").values_list("code", flat=True)),
        "company": list(Company.objects.order_by("pk").values_list("pk", flat=True)),
        "partner": list(Partner.objects.order_by("pk").values_list("pk", flat=True)),
        "registrar": list(Registrar.objects.order_by("pk").values_list("pk", flat=True)),
        "assignee": staff,
        # Sharing an order takes a staff user; a deputy CSM, a Customer Success one (they are staff too).
        "user": list(
            User.objects.filter(is_staff=True, groups__name__in=[Role.OPERATIONS, Role.CUSTOMER_SUCCESS])
            .order_by("pk")
            .values_list("pk", flat=True)
            .distinct()
        ),
    }


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    ids, bodies = targets(), body_values()
    for role, email in ROLES.items():
        _, token = api_token_create(actor=None, user=User.objects.get(email=email), name="API fuzzer")
        role_file = {"email": email, "token": token, "targets": ids, "bodies": bodies}
        (out_dir / f"{role}.json").write_text(json.dumps(role_file))
        print(f"{role}: {email}, ids for {len(ids)} paths and {len(bodies)} body fields")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
