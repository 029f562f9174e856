from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from accounts.roles import Role
from catalog.models import Customer, PriceAgreement, Service
from catalog.serializers import PriceAgreementSerializer
from catalog.tests.factories import CustomerFactory, PortalMembershipFactory, PriceAgreementFactory, ServiceFactory

pytestmark = pytest.mark.django_db


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> set[int]:
    return {row["id"] for row in results(response)}


# --- The role x operation matrix -------------------------------------------------------------------------------

CALLERS = ["admin", "finance", "customer_success", "sales", "operations", "portal", "no_role", "anonymous"]


def make_caller(kind: str, make_user) -> User | None:
    roles = {
        "admin": Role.ADMIN,
        "finance": Role.FINANCE,
        "customer_success": Role.CUSTOMER_SUCCESS,
        "sales": Role.SALES,
        "operations": Role.OPERATIONS,
    }
    if kind in roles:
        return make_user(roles[kind])
    if kind == "portal":
        return PortalMembershipFactory().user
    if kind == "no_role":
        return make_user()
    return None


@pytest.fixture
def world(make_user):
    """A customer managed by some CSM (never the caller), priced for one service."""
    csm = make_user(Role.CUSTOMER_SUCCESS)
    customer = CustomerFactory(csm=csm, billing_email="old@customer.example")
    service = ServiceFactory()
    PriceAgreementFactory(customer=customer, service=service, valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))
    return SimpleNamespace(customer=customer, service=service)


# Each operation returns (response, whether its write is visible in the database, or None for a read).
def list_customers(client, world):
    return client.get("/api/customers"), None


def get_customer(client, world):
    return client.get(f"/api/customers/{world.customer.pk}"), None


def create_customer(client, world):
    body = {"name": "Newco", "client_id": "NEWCO-1", "currency": "EUR"}
    response = client.post("/api/customers", body, format="json")
    return response, Customer.objects.filter(client_id="NEWCO-1").exists()


def patch_customer(client, world):
    response = client.patch(f"/api/customers/{world.customer.pk}", {"billing_email": "new@customer.example"}, "json")
    world.customer.refresh_from_db()
    return response, world.customer.billing_email == "new@customer.example"


def list_services(client, world):
    return client.get("/api/services"), None


def create_service(client, world):
    body = {"code": "new_check", "name": "New check", "category": "kyc"}
    response = client.post("/api/services", body, format="json")
    return response, Service.objects.filter(code="new_check").exists()


def list_agreements(client, world):
    return client.get("/api/price-agreements"), None


def create_agreement(client, world):
    body = {
        "customer": world.customer.pk,
        "service": world.service.code,
        "unit_price": "0.04",
        "valid_from": "2026-07-01",
    }
    response = client.post("/api/price-agreements", body, format="json")
    return response, PriceAgreement.objects.filter(customer=world.customer, valid_from=date(2026, 7, 1)).exists()


def create_user(client, world):
    body = {"email": "new.person@example.com", "full_name": "New Person", "roles": ["Sales"]}
    response = client.post("/api/users", body, format="json")
    return response, User.objects.filter(email="new.person@example.com").exists()


# The customer in `world` is someone else's: a CSM gets 404 on it, a portal user too.
MATRIX = {
    #                   admin finance  cs  sales  ops  portal no_role anonymous
    list_customers: (200, 200, 200, 200, 200, 200, 403, 401),
    get_customer: (200, 200, 404, 200, 200, 404, 403, 401),
    create_customer: (201, 201, 403, 403, 403, 403, 403, 401),
    patch_customer: (200, 200, 404, 200, 403, 403, 403, 401),
    list_services: (200, 200, 200, 200, 200, 200, 403, 401),
    create_service: (201, 201, 403, 403, 403, 403, 403, 401),
    list_agreements: (200, 200, 200, 200, 403, 200, 403, 401),
    create_agreement: (201, 201, 403, 403, 403, 403, 403, 401),
    create_user: (201, 403, 403, 403, 403, 403, 403, 401),
}
MATRIX_CASES = [
    pytest.param(operation, caller, status, id=f"{operation.__name__}-{caller}")
    for operation, statuses in MATRIX.items()
    for caller, status in zip(CALLERS, statuses, strict=True)
]


@pytest.mark.parametrize(("operation", "caller", "expected_status"), MATRIX_CASES)
def test_role_permission_matrix(operation, caller, expected_status, make_user, world, client_for):
    client = client_for(make_caller(caller, make_user))

    response, written = operation(client, world)

    assert response.status_code == expected_status, response.content
    if expected_status >= 400:
        assert set(response.json()["error"]) == {"code", "message", "fields"}
    if written is not None:
        assert written == (expected_status < 400)


def test_anonymous_caller_is_told_to_use_a_bearer_token(api_client):
    response = api_client.get("/api/customers")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "not_authenticated"


# --- Customer Success sees and changes only their own customers --------------------------------------------------


def test_customer_success_lists_only_the_customers_they_manage(make_user, client_for):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    own = CustomerFactory(csm=csm)
    CustomerFactory(csm=make_user(Role.CUSTOMER_SUCCESS))
    CustomerFactory()

    assert ids(client_for(csm).get("/api/customers")) == {own.pk}


def test_customer_success_changes_their_own_customer(make_user, client_for):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    own = CustomerFactory(csm=csm)

    response = client_for(csm).patch(f"/api/customers/{own.pk}", {"require_csm_approval": True}, format="json")

    assert response.status_code == 200, response.content
    own.refresh_from_db()
    assert own.require_csm_approval is True
    assert own.history.latest().history_user == csm


def test_customer_success_sees_agreements_of_their_customers_only(make_user, client_for):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    own = PriceAgreementFactory(customer=CustomerFactory(csm=csm))
    PriceAgreementFactory()

    assert ids(client_for(csm).get("/api/price-agreements")) == {own.pk}


# --- Portal users see only their own customer's data ------------------------------------------------------------


@pytest.fixture
def portal(db):
    """A portal user, their customer priced for one service, and another customer priced for another."""
    membership = PortalMembershipFactory()
    own_service, other_service, unpriced_service = ServiceFactory.create_batch(3)
    other_customer = CustomerFactory()
    return SimpleNamespace(
        user=membership.user,
        customer=membership.customer,
        other_customer=other_customer,
        own_agreement=PriceAgreementFactory(customer=membership.customer, service=own_service),
        other_agreement=PriceAgreementFactory(customer=other_customer, service=other_service),
        own_service=own_service,
        other_service=other_service,
        unpriced_service=unpriced_service,
    )


def test_portal_customer_list_holds_only_their_customer(portal, client_for):
    CustomerFactory.create_batch(2)

    assert ids(client_for(portal.user).get("/api/customers")) == {portal.customer.pk}


def test_portal_user_reads_their_customer_and_not_another(portal, client_for):
    client = client_for(portal.user)

    assert client.get(f"/api/customers/{portal.customer.pk}").json()["client_id"] == portal.customer.client_id
    response = client.get(f"/api/customers/{portal.other_customer.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_portal_agreement_list_holds_only_their_agreements(portal, client_for):
    client = client_for(portal.user)

    assert ids(client.get("/api/price-agreements")) == {portal.own_agreement.pk}
    assert ids(client.get(f"/api/price-agreements?customer={portal.other_customer.pk}")) == set()
    assert client.get(f"/api/price-agreements/{portal.other_agreement.pk}").status_code == 404


def test_portal_filter_by_customer_id_does_not_reveal_which_customers_exist(portal, client_for):
    client = client_for(portal.user)

    someone_else = client.get(f"/api/price-agreements?customer={portal.other_customer.pk}")
    nobody = client.get("/api/price-agreements?customer=999999")

    assert (someone_else.status_code, someone_else.json()["count"]) == (200, 0)
    assert (nobody.status_code, nobody.json()["count"]) == (200, 0)


def test_portal_service_list_holds_only_services_priced_for_their_customer(portal, client_for):
    client = client_for(portal.user)

    assert ids(client.get("/api/services")) == {portal.own_service.pk}
    assert client.get(f"/api/services/{portal.own_service.pk}").status_code == 200
    assert client.get(f"/api/services/{portal.other_service.pk}").status_code == 404
    assert client.get(f"/api/services/{portal.unpriced_service.pk}").status_code == 404


def test_portal_user_cannot_change_their_own_customer(portal, client_for):
    response = client_for(portal.user).patch(f"/api/customers/{portal.customer.pk}", {"name": "Renamed"}, "json")

    assert response.status_code == 403
    portal.customer.refresh_from_db()
    assert portal.customer.name != "Renamed"


def test_portal_user_cannot_price_their_own_customer(portal, client_for):
    body = {
        "customer": portal.customer.pk,
        "service": portal.unpriced_service.code,
        "unit_price": "0",
        "valid_from": "2026-01-01",
    }

    response = client_for(portal.user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 403
    assert not PriceAgreement.objects.filter(service=portal.unpriced_service).exists()


# --- Validation errors: one format, a field named, nothing written ---------------------------------------------


def test_overlapping_agreement_is_refused_naming_valid_from(finance_user, client_for):
    existing = PriceAgreementFactory(valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30))
    body = {
        "customer": existing.customer.pk,
        "service": existing.service.code,
        "unit_price": "0.04",
        "valid_from": "2026-06-30",
    }

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert "valid_from" in error["fields"]
    assert PriceAgreement.objects.count() == 1


def test_agreement_that_ends_before_it_starts_is_refused(finance_user, client_for):
    body = {
        "customer": CustomerFactory().pk,
        "service": ServiceFactory().code,
        "unit_price": "0.04",
        "valid_from": "2026-06-30",
        "valid_to": "2026-06-01",
    }

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 400, response.content
    assert "cannot end before it starts" in response.json()["error"]["message"]
    assert not PriceAgreement.objects.exists()


def test_agreement_for_a_customer_the_caller_cannot_see_is_refused(make_user, client_for):
    """Only Admin and Finance may add agreements and both see every customer, so scope is tested on the serializer."""
    csm = make_user(Role.CUSTOMER_SUCCESS)
    hidden = CustomerFactory()
    request = SimpleNamespace(user=csm)
    body = {"customer": hidden.pk, "service": ServiceFactory().code, "unit_price": "1", "valid_from": "2026-01-01"}

    serializer = PriceAgreementSerializer(data=body, context={"request": request})

    assert not serializer.is_valid()
    assert "customer" in serializer.errors


def test_duplicate_client_id_is_refused_naming_client_id(finance_user, client_for):
    CustomerFactory(client_id="ACME")

    response = client_for(finance_user).post(
        "/api/customers", {"name": "Acme Two", "client_id": "ACME", "currency": "EUR"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert list(response.json()["error"]["fields"]) == ["client_id"]
    assert not Customer.objects.filter(name="Acme Two").exists()


def test_bad_currency_is_refused_naming_currency(finance_user, client_for):
    response = client_for(finance_user).post(
        "/api/customers", {"name": "Acme", "client_id": "ACME", "currency": "XYZ"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "currency" in response.json()["error"]["fields"]
    assert not Customer.objects.exists()


def test_client_id_with_forbidden_characters_is_refused(finance_user, client_for):
    response = client_for(finance_user).post(
        "/api/customers", {"name": "Acme", "client_id": "ACME 1/2", "currency": "EUR"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "client_id" in response.json()["error"]["fields"]
    assert not Customer.objects.exists()


def test_currency_cannot_change_once_the_customer_is_priced(finance_user, client_for):
    agreement = PriceAgreementFactory(customer=CustomerFactory(currency="EUR"))

    response = client_for(finance_user).patch(f"/api/customers/{agreement.customer.pk}", {"currency": "USD"}, "json")

    assert response.status_code == 400, response.content
    assert "currency" in response.json()["error"]["fields"]
    agreement.customer.refresh_from_db()
    assert agreement.customer.currency == "EUR"


def test_csm_must_be_a_customer_success_user(finance_user, make_user, client_for):
    customer = CustomerFactory()
    sales_user = make_user(Role.SALES)

    response = client_for(finance_user).patch(f"/api/customers/{customer.pk}", {"csm": sales_user.pk}, "json")

    assert response.status_code == 400, response.content
    assert "csm" in response.json()["error"]["fields"]
    customer.refresh_from_db()
    assert customer.csm is None


def test_created_customer_is_returned_and_stored(finance_user, make_user, client_for):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    body = {"name": "Acme", "client_id": "ACME", "currency": "GBP", "csm": csm.pk, "billing_email": "ap@acme.example"}

    response = client_for(finance_user).post("/api/customers", body, format="json")

    assert response.status_code == 201, response.content
    customer = Customer.objects.get(client_id="ACME")
    assert response.json()["id"] == customer.pk
    assert (customer.currency, customer.csm, customer.billing_email) == ("GBP", csm, "ap@acme.example")
    assert customer.history.latest().history_user == finance_user


def test_created_agreement_carries_the_customer_currency(finance_user, client_for):
    customer = CustomerFactory(currency="CHF")
    service = ServiceFactory()
    body = {"customer": customer.pk, "service": service.code, "unit_price": "0.125", "valid_from": "2026-02-01"}

    response = client_for(finance_user).post("/api/price-agreements", body, format="json")

    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["currency"], data["service"], data["unit_price"]) == ("CHF", service.code, "0.125000")
    agreement = PriceAgreement.objects.get(pk=data["id"])
    assert (agreement.unit_price, agreement.included_quantity) == (Decimal("0.125"), Decimal("0"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/api/services/{service}"),
        ("patch", "/api/price-agreements/{agreement}"),
        ("put", "/api/customers/{customer}"),
        ("delete", "/api/customers/{customer}"),
        ("delete", "/api/price-agreements/{agreement}"),
    ],
)
def test_unsupported_methods_answer_405_and_change_nothing(method, path, admin_user, client_for):
    agreement = PriceAgreementFactory(unit_price=Decimal("0.05"))
    url = path.format(service=agreement.service.pk, agreement=agreement.pk, customer=agreement.customer.pk)
    body = {"name": "Renamed", "client_id": "RENAMED", "unit_price": "9"}

    response = getattr(client_for(admin_user), method)(url, body, format="json")

    assert response.status_code == 405, response.content
    assert response.json()["error"]["code"] == "method_not_allowed"
    agreement.refresh_from_db()
    assert agreement.unit_price == Decimal("0.05")
    assert agreement.service.name != "Renamed"
    assert agreement.customer.client_id != "RENAMED"


@pytest.mark.parametrize(
    "url", ["/api/customers", "/api/customers/{customer}", "/api/services", "/api/price-agreements", "/api/users"]
)
def test_options_describes_each_endpoint(url, admin_user, client_for):
    customer = CustomerFactory()

    response = client_for(admin_user).options(url.format(customer=customer.pk))

    assert response.status_code == 200, response.content
    assert response.json()["name"]


# --- Filters ----------------------------------------------------------------------------------------------------


@pytest.fixture
def agreements(db):
    acme, globex = CustomerFactory(client_id="ACME"), CustomerFactory(client_id="GLOBEX")
    kyc, aml = ServiceFactory(code="kyc_check"), ServiceFactory(code="aml_check")
    return SimpleNamespace(
        acme_kyc_h1=PriceAgreementFactory(
            customer=acme, service=kyc, valid_from=date(2026, 1, 1), valid_to=date(2026, 6, 30)
        ),
        acme_kyc_h2=PriceAgreementFactory(customer=acme, service=kyc, valid_from=date(2026, 7, 1)),
        acme_aml=PriceAgreementFactory(customer=acme, service=aml, valid_from=date(2026, 3, 1)),
        globex_kyc=PriceAgreementFactory(
            customer=globex, service=kyc, valid_from=date(2025, 1, 1), valid_to=date(2025, 12, 31)
        ),
        acme=acme,
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"acme_kyc_h1", "acme_kyc_h2", "acme_aml", "globex_kyc"}),
        ("in_force_on=2026-06-30", {"acme_kyc_h1", "acme_aml"}),
        ("in_force_on=2026-07-01", {"acme_kyc_h2", "acme_aml"}),
        ("in_force_on=2025-06-01", {"globex_kyc"}),
        ("in_force_on=2024-01-01", set()),
        ("service=aml_check", {"acme_aml"}),
        ("service=kyc_check", {"acme_kyc_h1", "acme_kyc_h2", "globex_kyc"}),
        ("client_id=GLOBEX", {"globex_kyc"}),
        ("client_id=NOBODY", set()),
        ("client_id=ACME&service=kyc_check&in_force_on=2026-12-31", {"acme_kyc_h2"}),
        ("valid_from_after=2026-03-01", {"acme_kyc_h2", "acme_aml"}),
        ("valid_from_before=2026-01-01", {"acme_kyc_h1", "globex_kyc"}),
    ],
)
def test_agreement_filters(query, expected, agreements, finance_user, client_for):
    response = client_for(finance_user).get(f"/api/price-agreements?{query}")

    assert ids(response) == {getattr(agreements, name).pk for name in expected}


def test_agreement_filter_by_customer(agreements, finance_user, client_for):
    response = client_for(finance_user).get(f"/api/price-agreements?customer={agreements.acme.pk}")

    assert ids(response) == {agreements.acme_kyc_h1.pk, agreements.acme_kyc_h2.pk, agreements.acme_aml.pk}


def test_a_malformed_filter_is_a_400_naming_it(agreements, finance_user, client_for):
    response = client_for(finance_user).get("/api/price-agreements?in_force_on=someday")

    assert response.status_code == 400
    assert "in_force_on" in response.json()["error"]["fields"]


def test_customer_filter_by_csm(make_user, finance_user, client_for):
    csm = make_user(Role.CUSTOMER_SUCCESS)
    managed = CustomerFactory(csm=csm)
    CustomerFactory()
    client = client_for(finance_user)

    assert ids(client.get(f"/api/customers?csm={csm.pk}")) == {managed.pk}
    assert ids(client.get("/api/customers?csm=999999")) == set()


def test_customer_search_filter(finance_user, client_for):
    acme = CustomerFactory(name="Acme Corp", client_id="ACM-1")
    CustomerFactory(name="Globex", client_id="GLX-1")

    assert ids(client_for(finance_user).get("/api/customers?search=acme")) == {acme.pk}


# --- Query counts -----------------------------------------------------------------------------------------------


def count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("url", "make_rows"),
    [
        ("/api/customers", lambda csm, n: CustomerFactory.create_batch(n, csm=csm)),
        ("/api/price-agreements", lambda csm, n: PriceAgreementFactory.create_batch(n, customer__csm=csm)),
        ("/api/services", lambda csm, n: ServiceFactory.create_batch(n)),
    ],
    ids=["customers", "price-agreements", "services"],
)
def test_list_query_count_does_not_grow_with_rows(
    url, make_rows, finance_user, make_user, client_for, django_assert_max_num_queries
):
    client = client_for(finance_user)
    csm = make_user(Role.CUSTOMER_SUCCESS)
    make_rows(csm, 3)
    few = count_queries(client, url)
    make_rows(csm, 27)

    with django_assert_max_num_queries(few):
        assert len(results(client.get(url))) == 30
    with django_assert_max_num_queries(11):  # an agreement's tiers come in one query for the page
        client.get(url)


def test_portal_list_query_counts_are_pinned(portal, client_for, django_assert_max_num_queries):
    PriceAgreementFactory.create_batch(30, customer=portal.customer)
    client = client_for(portal.user)

    for url in ["/api/customers", "/api/price-agreements", "/api/services"]:
        with django_assert_max_num_queries(10):
            client.get(url)


def test_requiring_csm_approval_without_a_csm_is_a_400_naming_the_field(finance_user, client_for):
    body = {"name": "Soylent", "client_id": "SOYLENT-010", "currency": "USD", "require_csm_approval": True}

    response = client_for(finance_user).post("/api/customers", body, format="json")

    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == ["require_csm_approval"]
    assert "SOYLENT-010 has no CSM to approve its bills" in error["fields"]["require_csm_approval"][0]
    assert not Customer.objects.filter(client_id="SOYLENT-010").exists()


def test_patching_require_csm_approval_on_a_customer_without_a_csm_is_a_400(finance_user, client_for):
    customer = CustomerFactory(csm=None)

    response = client_for(finance_user).patch(
        f"/api/customers/{customer.pk}", {"require_csm_approval": True}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["require_csm_approval"]
    customer.refresh_from_db()
    assert customer.require_csm_approval is False
