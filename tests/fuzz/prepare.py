"""Sign-ins and real ids for the API fuzzer, read from a freshly seeded demo database.

Run by tests/fuzz/run.py with the fuzz database's environment:

    python tests/fuzz/prepare.py OUT_DIR

It writes OUT_DIR/<role>.json for Admin, Finance and the portal user: an API token created for that
user; for each path of the schema with an id in it, the ids of the demo's objects to use there; and
for the body fields that name another object (customer, csm, sales_owner, service), real values.
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
from accounts.services import api_token_create  # noqa: E402
from approvals.models import ApprovalAction  # noqa: E402
from catalog.models import Customer, PriceAgreement, Service  # noqa: E402
from fixtures.demo import PORTAL_EMAIL  # noqa: E402
from ledger.models import Invoice, Payment, Transaction  # noqa: E402

ROLES = {
    "admin": "admin@countinghouse.example",
    "finance": "finance@countinghouse.example",
    "portal": PORTAL_EMAIL,
}
INVOICE_PATHS = [
    f"/api/{resource}/{{id}}{action}"
    for resource in ("invoices", "bills")
    for action in ("", "/issue", "/credit-notes", "/submit", "/approve", "/reject", "/revert", "/reroute")
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


def targets() -> dict[str, list[dict]]:
    invoices = _ids(Invoice.objects.all())
    customers = _ids(Customer.objects.all())
    return {
        **dict.fromkeys(INVOICE_PATHS, invoices),
        "/api/invoices/{id}/approval-attachments/{action_id}": _attachments(),
        "/api/bills/{id}/approval-attachments/{action_id}": _attachments(),
        "/api/customers/{id}": customers,
        "/api/customers/{id}/statement": customers,
        "/api/services/{id}": _ids(Service.objects.all()),
        "/api/price-agreements/{id}": _ids(PriceAgreement.objects.all()),
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
