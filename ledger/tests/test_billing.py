"""Billing configurations: an approval rule someone can satisfy, and the CSM it relies on (issue 10, point 4)."""

import pytest
from django.core.exceptions import ValidationError

from accounts.roles import Role
from catalog import services as catalog_services
from catalog.models import Customer
from catalog.tests.factories import CustomerFactory
from catalog.tests.test_admin import customer_form
from catalog.tests.test_resources import CUSTOMER_HEADER, upload
from ledger.models import BillingConfig
from ledger.services.billing import billing_config_for, billing_config_update

pytestmark = pytest.mark.django_db

NO_CSM = "SOYLENT-010 has no CSM: set a CSM on the customer first, or choose another rule."
CONFIG_FORM = {
    "cycle": "monthly",
    "payment_terms_days": "30",
    "tax_rate": "0.0000",
    "tax_id": "",
    "tax_exempt_reason": "",
    "invoice_email": "",
    "reminder_interval_days": "7",
    "approval_rule": BillingConfig.ApprovalRule.CSM,
    "sales_approval_above": "",
}


def test_the_csm_rule_for_a_customer_without_a_csm_is_refused_saying_what_to_fix():
    customer = CustomerFactory(client_id="SOYLENT-010", csm=None)

    with pytest.raises(ValidationError) as error:
        billing_config_update(actor=None, customer=customer, approval_rule=BillingConfig.ApprovalRule.CSM)

    assert error.value.message_dict == {"approval_rule": [NO_CSM]}
    assert billing_config_for(customer).approval_rule == BillingConfig.ApprovalRule.NONE


@pytest.mark.parametrize(
    ("csm_fields", "problem"),
    [
        ({"roles": [Role.CUSTOMER_SUCCESS], "is_active": False}, "is inactive"),
        ({"roles": [Role.SALES]}, "is no longer in Customer Success"),
    ],
)
def test_the_csm_rule_is_refused_when_the_csm_cannot_approve(make_user, csm_fields, problem):
    csm = make_user(*csm_fields.pop("roles"), full_name="Casey Success", email="casey@x.example", **csm_fields)
    customer = CustomerFactory(client_id="ACME", csm=None)
    Customer.objects.filter(pk=customer.pk).update(csm=csm)  # chosen while they could; they have changed since
    customer.refresh_from_db()

    with pytest.raises(ValidationError) as error:
        billing_config_update(actor=None, customer=customer, approval_rule=BillingConfig.ApprovalRule.CSM)

    assert error.value.message_dict["approval_rule"] == [
        f"ACME's CSM, Casey Success <casey@x.example>, {problem}: set a CSM on the customer first, or choose "
        "another rule."
    ]


def test_the_csm_rule_for_a_customer_with_its_csm_is_saved(people):
    customer = CustomerFactory(csm=people["csm"])

    config = billing_config_update(actor=None, customer=customer, approval_rule=BillingConfig.ApprovalRule.CSM)

    assert config.approval_rule == BillingConfig.ApprovalRule.CSM


def test_the_admin_form_shows_the_refusal_on_the_rule_and_saves_nothing(client, finance_user):
    customer = CustomerFactory(client_id="SOYLENT-010", csm=None)
    config = billing_config_for(customer)
    client.force_login(finance_user)

    response = client.post(f"/admin/ledger/billingconfig/{config.pk}/change/", CONFIG_FORM)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors == {"approval_rule": [NO_CSM]}
    config.refresh_from_db()
    assert config.approval_rule == BillingConfig.ApprovalRule.NONE


# The customer keeps its CSM while its rule is the CSM's (catalog asks the ledger through catalog.dependents).


@pytest.fixture
def csm_approved(people):
    customer = CustomerFactory(client_id="ACME", csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule=BillingConfig.ApprovalRule.CSM)
    return customer


REMOVAL_REFUSED = (
    "ACME needs its CSM: its bills are approved by its CSM (the approval rule of its billing configuration): "
    "choose another CSM, or change that rule first."
)


def test_taking_the_csm_away_under_the_csm_rule_is_refused_by_the_service(csm_approved, finance_user):
    with pytest.raises(ValidationError) as error:
        catalog_services.customer_update(actor=finance_user, customer=csm_approved, csm=None)

    assert error.value.message_dict == {"csm": [REMOVAL_REFUSED]}
    csm_approved.refresh_from_db()
    assert csm_approved.csm is not None


def test_another_csm_may_take_over_under_the_csm_rule(csm_approved, people, finance_user):
    customer = catalog_services.customer_update(actor=finance_user, customer=csm_approved, csm=people["other_cs"])

    assert customer.csm == people["other_cs"]


def test_under_another_rule_the_csm_may_be_taken_away(people, finance_user):
    customer = CustomerFactory(csm=people["csm"])
    billing_config_update(actor=None, customer=customer, approval_rule=BillingConfig.ApprovalRule.CS_OR_SALES)

    assert catalog_services.customer_update(actor=finance_user, customer=customer, csm=None).csm is None


def test_taking_the_csm_away_under_the_csm_rule_is_a_400_in_the_api(csm_approved, finance_user, client_for):
    response = client_for(finance_user).patch(f"/api/customers/{csm_approved.pk}", {"csm": None}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"csm": [REMOVAL_REFUSED]}
    csm_approved.refresh_from_db()
    assert csm_approved.csm is not None


def test_taking_the_csm_away_under_the_csm_rule_shows_on_the_customer_form(csm_approved, client, finance_user):
    client.force_login(finance_user)

    response = client.post(f"/admin/catalog/customer/{csm_approved.pk}/change/", customer_form(csm_approved, csm=""))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"csm": [REMOVAL_REFUSED]}
    csm_approved.refresh_from_db()
    assert csm_approved.csm is not None


def test_a_customer_file_taking_the_csm_away_under_the_csm_rule_names_the_row_and_writes_nothing(
    csm_approved, client, finance_user
):
    client.force_login(finance_user)

    response = upload(client, Customer, f"{CUSTOMER_HEADER}\nACME,{csm_approved.name},EUR,,2026-01-01,active,0")

    result = response.context["result"]
    assert [row.number for row in result.invalid_rows] == [1]
    assert result.invalid_rows[0].field_specific_errors == {"csm": [REMOVAL_REFUSED]}
    assert "confirm_form" not in response.context
    csm_approved.refresh_from_db()
    assert csm_approved.csm is not None
