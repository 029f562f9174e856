"""The stored e-invoices downloaded from the admin's invoice and credit note pages and from the portal, by whoever
may see the document and nobody else."""

from decimal import Decimal as D

import pytest
from django.urls import reverse

from catalog.models import EinvoiceDelivery
from catalog.tests.factories import PortalMembershipFactory
from ledger.services.invoices import credit_note_issue
from tests.einvoice.test_documents import customer_in, usage_invoice
from tests.einvoice.test_issue import einvoice_customer, read

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_the_admin_invoice_and_credit_note_pages_link_their_e_invoices(client, finance_user):
    invoice = usage_invoice(einvoice_customer(EinvoiceDelivery.FACTURX))
    note = credit_note_issue(actor=None, invoice=invoice, reason="Goodwill", amount=D("12.00"))
    pdf_only = usage_invoice(customer_in("NL", client_id="PDF-ONLY"))
    client.force_login(finance_user)

    for document, model in ((invoice, "invoice"), (note, "creditnote")):
        page = client.get(reverse(f"admin:ledger_{model}_change", args=[document.pk])).content.decode()
        ubl = reverse(f"admin:ledger_{model}_einvoice", args=[document.pk, "ubl"])
        cii = reverse(f"admin:ledger_{model}_einvoice", args=[document.pk, "cii"])
        assert f'href="{ubl}"' in page and f"{document.number}.xml" in page
        assert f'href="{cii}"' in page and f"{document.number}-facturx.pdf" in page
        downloaded = client.get(cii)
        assert (downloaded.status_code, downloaded["Content-Type"]) == (200, "application/pdf")
        assert body(downloaded) == read(document.facturx)
        assert body(client.get(ubl)) == read(document.einvoice)
    page = client.get(reverse("admin:ledger_invoice_change", args=[pdf_only.pk])).content.decode()
    assert "-facturx.pdf" not in page
    assert client.get(reverse("admin:ledger_invoice_einvoice", args=[pdf_only.pk, "ubl"])).status_code == 404
    assert client.get(reverse("admin:ledger_invoice_einvoice", args=[invoice.pk, "pdf"])).status_code == 404


def test_the_portal_serves_the_customers_own_e_invoices_only(client):
    mine = usage_invoice(einvoice_customer(EinvoiceDelivery.UBL))
    theirs = usage_invoice(einvoice_customer(EinvoiceDelivery.UBL, client_id="THEIRS"))
    membership = PortalMembershipFactory(customer=mine.customer)
    client.force_login(membership.user)

    page = client.get(reverse("portal:invoices")).content.decode()
    ubl = client.get(reverse("portal:invoice_einvoice", args=[mine.pk, "ubl"]))
    cii = client.get(reverse("portal:invoice_einvoice", args=[mine.pk, "cii"]))

    assert reverse("portal:invoice_einvoice", args=[mine.pk, "ubl"]) in page
    assert reverse("portal:invoice_einvoice", args=[mine.pk, "cii"]) in page
    assert (ubl["Content-Type"], body(ubl)) == ("application/xml", read(mine.einvoice))
    assert (cii["Content-Type"], body(cii)) == ("application/pdf", read(mine.facturx))
    assert client.get(reverse("portal:invoice_einvoice", args=[theirs.pk, "ubl"])).status_code == 404
    assert client.get(reverse("portal:invoice_einvoice", args=[mine.pk, "xml"])).status_code == 404
