"""The back-office admin site's own views."""

import pytest

from catalog.tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

AUTOCOMPLETE = "/admin/autocomplete/?app_label=ledger&model_name=invoice&field_name=customer&term="


def test_a_customer_search_with_a_nul_byte_finds_nothing_instead_of_failing(client, admin_user):
    CustomerFactory(name="Acme Payments", client_id="ACME-001")
    client.force_login(admin_user)

    assert [row["text"] for row in client.get(AUTOCOMPLETE + "Acme").json()["results"]] == ["Acme Payments (ACME-001)"]
    response = client.get(AUTOCOMPLETE + "Ac%00me")

    assert response.status_code == 200
    assert response.json() == {"results": [], "pagination": {"more": False}}
