"""The back-office as a whole: who may open which admin page, the sidebar, portal users, API tokens, login lockout."""

import hashlib
import json
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.test import RequestFactory
from django.urls import reverse

from accounts import services
from accounts.models import ApiToken, User
from accounts.roles import ROLE_PERMISSIONS, Role
from accounts.tests.factories import PASSWORD, UserFactory
from billing_project.admin_site import CountinghouseAdminSite
from catalog.tests.factories import PortalMembershipFactory

pytestmark = pytest.mark.django_db

PORTAL = "portal user"
NO_ROLE = "staff without role"
USERS = [*Role, PORTAL, NO_ROLE]

MODELS = [
    ("catalog", "customer"),
    ("catalog", "partner"),
    ("catalog", "service"),
    ("catalog", "priceagreement"),
    ("catalog", "portalmembership"),
    ("accounts", "user"),
    ("accounts", "apitoken"),
]
PAGES = [(app, model, page) for app, model in MODELS for page in ("changelist", "add")] + [
    ("auth", "group", "changelist")
]


def make(kind, make_user) -> User:
    if kind == PORTAL:
        return PortalMembershipFactory().user
    if kind == NO_ROLE:
        return make_user()
    return make_user(kind)


def may(kind, permission: str) -> bool:
    """What accounts/roles.py grants: Admin holds every permission, the others exactly their list."""
    if kind == Role.ADMIN:
        return True
    return permission in ROLE_PERMISSIONS.get(kind, [])


def expected_status(kind, app: str, model: str, page: str) -> int:
    if kind == PORTAL:
        return 302  # to the admin login
    if page == "changelist":
        allowed = may(kind, f"{app}.view_{model}") or may(kind, f"{app}.change_{model}")
    else:
        allowed = may(kind, f"{app}.add_{model}")
        if model == "user":
            allowed = allowed and may(kind, "accounts.change_user")  # Django's UserAdmin asks for both
    return 200 if allowed else 403


def test_role_groups_hold_their_permissions_in_the_database():
    """The matrix below relies on it: every role group gets its set from accounts/roles.py after migrate."""
    for role, permissions in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        granted = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        assert granted == set(permissions), role
    assert Group.objects.get(name=Role.ADMIN).permissions.count() == Permission.objects.count()


@pytest.mark.parametrize("kind", USERS)
@pytest.mark.parametrize(("app", "model", "page"), PAGES)
def test_permission_matrix(client, make_user, kind, app, model, page):
    client.force_login(make(kind, make_user))
    url = reverse(f"admin:{app}_{model}_{page}")

    response = client.get(url)

    assert response.status_code == expected_status(kind, app, model, page)
    if response.status_code == 302:
        assert response["Location"] == f"{reverse('admin:login')}?next={url}"


@pytest.mark.parametrize("kind", USERS)
def test_roles_are_never_added_in_the_admin(client, make_user, kind):
    client.force_login(make(kind, make_user))

    assert client.get(reverse("admin:auth_group_add")).status_code in (302, 403)
    client.post(reverse("admin:auth_group_add"), {"name": "Shadow admins"})
    assert not Group.objects.filter(name="Shadow admins").exists()


def test_roles_are_read_only_even_for_admin(client, admin_user):
    group = Group.objects.get(name=Role.FINANCE)
    client.force_login(admin_user)
    url = reverse("admin:auth_group_change", args=[group.pk])

    assert client.get(url).status_code == 200
    assert client.post(url, {"name": "Renamed"}).status_code == 403
    group.refresh_from_db()
    assert group.name == Role.FINANCE


def test_role_changelist_counts_members(client, admin_user, make_user):
    make_user(Role.FINANCE)
    make_user(Role.FINANCE, Role.SALES)
    client.force_login(admin_user)

    response = client.get(reverse("admin:auth_group_changelist"))

    counts = {group.name: group.members for group in response.context["cl"].result_list}
    assert counts[Role.FINANCE] == 2
    assert counts[Role.SALES] == 1
    assert counts[Role.ADMIN] == 1


# The sidebar.

SIDEBAR = {
    reverse("admin:catalog_customer_changelist"): "catalog.view_customer",
    reverse("admin:catalog_partner_changelist"): "catalog.view_partner",
    reverse("admin:catalog_portalmembership_changelist"): "catalog.view_portalmembership",
    reverse("admin:catalog_service_changelist"): "catalog.view_service",
    reverse("admin:catalog_priceagreement_changelist"): "catalog.view_priceagreement",
    reverse("admin:catalog_minimumcommitment_changelist"): "catalog.view_minimumcommitment",
    reverse("admin:ledger_price_calculator"): "catalog.view_priceagreement",
    reverse("admin:accounts_user_changelist"): "accounts.view_user",
    reverse("admin:auth_group_changelist"): "auth.view_group",
    reverse("admin:accounts_apitoken_changelist"): "accounts.view_apitoken",
    reverse("admin:axes_accessattempt_changelist"): "axes.view_accessattempt",
    reverse("admin:usage_upload_new"): "usage.add_upload",
    reverse("admin:usage_upload_changelist"): "usage.view_upload",
    reverse("admin:usage_usagerecord_changelist"): "usage.view_usagerecord",
    reverse("admin:usage_monthlysummary_changelist"): "usage.view_monthlysummary",
    reverse("admin:ledger_invoice_changelist"): "ledger.view_invoice",
    reverse("admin:ledger_payment_changelist"): "ledger.view_payment",
    reverse("admin:ledger_refund_changelist"): "ledger.view_refund",
    reverse("admin:ledger_adjustment_changelist"): "ledger.view_adjustment",
    reverse("admin:ledger_creditnote_changelist"): "ledger.view_creditnote",
    reverse("admin:ledger_billingrun_changelist"): "ledger.view_billingrun",
    reverse("admin:ledger_billingconfig_changelist"): "ledger.view_billingconfig",
    reverse("admin:ledger_transaction_changelist"): "ledger.view_transaction",
    reverse("admin:ledger_account_changelist"): "ledger.view_account",
    reverse("admin:ledger_reconciliationreport_changelist"): "ledger.view_reconciliationreport",
    reverse("admin:usage_closedperiod_changelist"): "usage.view_closedperiod",
    reverse("admin:audit_log"): "reports.view_audit_log",
    reverse("admin:partner_revenue"): "reports.view_partner_revenue",
    reverse("admin:report_aged_receivables"): "reports.view_aged_receivables",
    reverse("admin:report_invoice_register"): "reports.view_invoice_register",
    reverse("admin:report_payments_register"): "reports.view_payments_register",
    reverse("admin:report_revenue"): "reports.view_revenue_by_service",
    reverse("admin:report_tax"): "reports.view_tax_report",
    reverse("admin:approvals_awaitingapproval_changelist"): "approvals.view_awaitingapproval",
    reverse("admin:approvals_approvalrequest_changelist"): "approvals.view_approvalrequest",
    reverse("admin:orders_order_changelist"): "orders.view_order",
    reverse("admin:orders_my_tasks"): "orders.view_task",
    reverse("admin:orders_ordertype_changelist"): "orders.view_ordertype",
    reverse("admin:orders_documenttype_changelist"): "orders.view_documenttype",
    reverse("admin:orders_company_changelist"): "orders.view_company",
    reverse("admin:orders_registrar_changelist"): "orders.view_registrar",
    reverse("admin:orders_revenueshareagreement_changelist"): "orders.view_revenueshareagreement",
    reverse("admin:orders_payoutbatch_changelist"): "orders.view_payoutbatch",
    reverse("admin:orders_settlement_changelist"): "orders.view_settlement",
}
# Every staff user's own: their long exports (reports.Export), which no one else sees.
SIDEBAR_FOR_EVERY_STAFF_USER = {reverse("admin:reports_export_changelist")}


class LinksInside(HTMLParser):
    """The hrefs inside the element with a given id."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self, element_id: str):
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self.depth:
            if tag == "a" and attrs.get("href"):
                self.links.append(attrs["href"])
            if tag not in self.VOID:
                self.depth += 1
        elif attrs.get("id") == self.element_id:
            self.depth = 1

    def handle_startendtag(self, tag, attrs):
        if self.depth and tag == "a" and dict(attrs).get("href"):
            self.links.append(dict(attrs)["href"])

    def handle_endtag(self, tag):
        if self.depth and tag not in self.VOID:
            self.depth -= 1


def sidebar_links(response) -> set[str]:
    parser = LinksInside("nav-sidebar-apps")
    parser.feed(response.content.decode())
    return set(parser.links)


@pytest.mark.parametrize("kind", [*Role, NO_ROLE])
def test_sidebar_shows_only_what_the_user_may_open(client, make_user, kind):
    client.force_login(make(kind, make_user))

    links = sidebar_links(client.get(reverse("admin:index")))

    expected = {url for url, permission in SIDEBAR.items() if may(kind, permission)}
    assert links == {reverse("admin:index"), *expected, *SIDEBAR_FOR_EVERY_STAFF_USER}
    for url in links:
        assert client.get(url).status_code == 200, url


def test_operations_sidebar_has_customers_but_not_prices_or_users(client, make_user):
    client.force_login(make_user(Role.OPERATIONS))

    links = sidebar_links(client.get(reverse("admin:index")))

    assert reverse("admin:catalog_customer_changelist") in links
    assert reverse("admin:catalog_priceagreement_changelist") not in links
    assert reverse("admin:accounts_user_changelist") not in links


# Customer portal users never open the back-office.


def test_portal_user_is_sent_to_the_admin_login(client, portal_user):
    client.force_login(portal_user)

    response = client.get(reverse("admin:index"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("flags", [{"is_staff": True}, {"is_staff": True, "is_superuser": True}])
def test_portal_user_flagged_staff_is_still_refused(client, portal_user, flags):
    User.objects.filter(pk=portal_user.pk).update(**flags)
    portal_user.refresh_from_db()
    request = RequestFactory().get("/admin/")
    request.user = portal_user

    assert isinstance(admin.site, CountinghouseAdminSite)
    assert not admin.site.has_permission(request)
    client.force_login(portal_user)
    assert client.get(reverse("admin:index")).status_code == 302
    assert client.get(reverse("admin:catalog_customer_changelist")).status_code == 302


def test_staff_user_passes_the_site_permission(finance_user):
    request = RequestFactory().get("/admin/")
    request.user = finance_user

    assert admin.site.has_permission(request)


def test_portal_user_cannot_be_made_staff_in_the_user_form(client, admin_user, portal_user):
    client.force_login(admin_user)
    url = reverse("admin:accounts_user_change", args=[portal_user.pk])
    data = {
        "email": portal_user.email,
        "full_name": portal_user.full_name,
        "is_active": "on",
        "is_staff": "on",
        "groups": [Group.objects.get(name=Role.FINANCE).pk],
    }

    response = client.post(url, data)

    assert response.status_code == 200
    assert "is_staff" in response.context["adminform"].form.errors
    portal_user.refresh_from_db()
    assert not portal_user.is_staff
    assert not portal_user.groups.exists()


# Users.


def test_admin_adds_a_user_with_a_password(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "New.Person@Example.com", "full_name": "New Person", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    user = User.objects.get(email__iexact="new.person@example.com")
    assert user.email == "new.person@example.com"  # stored as the login looks it up
    assert user.check_password(PASSWORD)
    assert not user.is_staff  # a role given on the change page makes the user staff
    assert user.history.latest().history_user == admin_user


@pytest.mark.parametrize("url_name", ["admin:accounts_user_add", "admin:accounts_user_change"])
def test_an_email_differing_only_in_case_is_refused(client, admin_user, url_name):
    """Login finds users by email case-insensitively: two such users would break it for both."""
    UserFactory(email="taken@example.com")
    other = UserFactory(email="other@example.com")
    client.force_login(admin_user)
    url = reverse(url_name, args=[other.pk] if url_name.endswith("change") else [])
    data = {"email": "Taken@Example.com", "full_name": "Someone", "is_active": "on"}
    data |= {"password1": PASSWORD, "password2": PASSWORD}

    response = client.post(url, data)

    assert response.status_code == 200
    assert "email" in response.context["adminform"].form.errors
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1


def test_admin_gives_a_user_a_role(client, admin_user):
    user = UserFactory(is_staff=False)
    client.force_login(admin_user)
    finance = Group.objects.get(name=Role.FINANCE)

    response = client.post(
        reverse("admin:accounts_user_change", args=[user.pk]),
        {"email": user.email, "full_name": user.full_name, "is_active": "on", "is_staff": "on", "groups": [finance.pk]},
    )

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    user.refresh_from_db()
    assert user.is_staff
    assert list(user.groups.all()) == [finance]


def test_finance_may_view_users_but_not_change_them(client, finance_user):
    other = UserFactory(full_name="Someone Else")
    client.force_login(finance_user)
    url = reverse("admin:accounts_user_change", args=[other.pk])

    assert client.get(url).status_code == 200
    response = client.post(url, {"email": other.email, "full_name": "Renamed", "is_active": "on", "is_superuser": "on"})
    assert response.status_code == 403
    other.refresh_from_db()
    assert (other.full_name, other.is_superuser) == ("Someone Else", False)


def test_user_changelist_query_count_does_not_grow_with_rows(client, admin_user, django_assert_max_num_queries):
    for index in range(25):
        UserFactory(roles=[Role.FINANCE] if index % 2 else [Role.SALES, Role.OPERATIONS])
    client.force_login(admin_user)

    with django_assert_max_num_queries(11):
        response = client.get(reverse("admin:accounts_user_changelist"))

    assert response.context["cl"].result_count == 26


# API tokens.


def add_token(client, user, name="usage uploader"):
    return client.post(
        reverse("admin:accounts_apitoken_add"), {"user": user.pk, "name": name, "expires_at_0": "", "expires_at_1": ""}
    )


def test_adding_a_token_shows_the_key_once_and_stores_only_its_hash(client, admin_user, make_user):
    machine = make_user(Role.OPERATIONS)
    client.force_login(admin_user)

    response = add_token(client, machine)

    assert response.status_code == 200  # a page of this very response, not a redirect
    assert [template.name for template in response.templates][0] == "accounts/api_token_created.html"
    raw_key = response.context["raw_key"]
    page = response.content.decode()
    assert raw_key.startswith("ch_")
    assert f'value="{raw_key}"' in page
    assert "shown only once" in page
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    assert reverse("admin:accounts_apitoken_changelist") in page
    assert reverse("admin:accounts_apitoken_change", args=[token.pk]) in page
    assert (token.user, token.name, token.created_by) == (machine, "usage uploader", admin_user)
    assert raw_key.split("_")[1] == token.prefix
    assert token.key_hash == hashlib.sha256(raw_key.encode()).hexdigest()
    assert raw_key not in {str(value) for value in ApiToken.objects.values().get().values()}
    assert token.history.latest().history_user == admin_user
    assert services.api_token_authenticate(raw_key=raw_key) == token
    # Shown once: the token's pages never show the key again.
    assert raw_key not in client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    assert raw_key not in client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])).content.decode()


def test_a_new_key_travels_in_no_cookie_and_stays_out_of_the_session(client, admin_user, make_user):
    """The messages cookie is signed, not encrypted: whoever reads the cookie jar would read the key."""
    client.force_login(admin_user)

    response = add_token(client, make_user(Role.OPERATIONS))

    key_start = f"ch_{ApiToken.objects.get().prefix}_"
    for cookie in response.cookies.values():
        assert key_start not in cookie.value, cookie.key
        if cookie.key == CookieStorage.cookie_name and cookie.value:
            decoded = CookieStorage(response.wsgi_request)._decode(cookie.value) or []
            assert key_start not in " ".join(str(message) for message in decoded)
    assert not [str(message) for message in get_messages(response.wsgi_request)]
    for session in Session.objects.all():
        assert key_start not in json.dumps(session.get_decoded())
    assert key_start in response.content.decode()


def test_a_token_for_an_inactive_user_is_a_form_error(client, admin_user):
    inactive = UserFactory(is_active=False)
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:accounts_apitoken_add"),
        {"user": inactive.pk, "name": "uploader", "expires_at_0": "", "expires_at_1": ""},
    )

    assert response.status_code == 200
    assert "user" in response.context["adminform"].form.errors
    assert not ApiToken.objects.exists()


def test_a_token_is_never_edited(client, admin_user):
    token, _ = services.api_token_create(actor=admin_user, user=admin_user, name="original")
    client.force_login(admin_user)
    url = reverse("admin:accounts_apitoken_change", args=[token.pk])

    assert client.get(url).status_code == 200  # read-only view
    assert client.post(url, {"user": admin_user.pk, "name": "renamed"}).status_code == 403
    token.refresh_from_db()
    assert token.name == "original"
    assert ApiToken.objects.count() == 1


def test_token_history_pages_open_and_never_write(client, admin_user):
    token, _ = services.api_token_create(actor=admin_user, user=admin_user, name="original")
    client.force_login(admin_user)
    version_url = reverse("admin:accounts_apitoken_simple_history", args=[token.pk, token.history.latest().history_id])

    assert client.get(reverse("admin:accounts_apitoken_history", args=[token.pk])).status_code == 200
    assert client.get(version_url).status_code == 200
    assert client.post(version_url, {"user": admin_user.pk, "name": "again"}).status_code == 403
    assert ApiToken.objects.count() == 1


def test_revoke_action_sets_revoked_at_on_the_selected_tokens(client, admin_user):
    selected, raw_key = services.api_token_create(actor=admin_user, user=admin_user, name="selected")
    untouched, _ = services.api_token_create(actor=admin_user, user=admin_user, name="untouched")
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:accounts_apitoken_changelist"), {"action": "revoke", "_selected_action": [selected.pk]}
    )

    assert response.status_code == 302
    selected.refresh_from_db()
    untouched.refresh_from_db()
    assert selected.revoked_at is not None
    assert untouched.revoked_at is None
    assert selected.history.latest().history_user == admin_user
    assert services.api_token_authenticate(raw_key=raw_key) is None
    assert "Revoked 1 token" in " ".join(str(m) for m in get_messages(response.wsgi_request))


def test_revoking_again_keeps_the_first_revocation_time(client, admin_user):
    token, _ = services.api_token_create(actor=admin_user, user=admin_user, name="t")
    token = services.api_token_revoke(actor=admin_user, token=token)
    first = token.revoked_at
    client.force_login(admin_user)

    client.post(reverse("admin:accounts_apitoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]})

    token.refresh_from_db()
    assert token.revoked_at == first


# Login lockout (django-axes).


def admin_login(client, email, password):
    return client.post(reverse("admin:login"), {"username": email, "password": password, "next": "/admin/"})


def test_right_password_opens_the_admin(client, finance_user):
    response = admin_login(client, finance_user.email, PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200


def test_four_failures_do_not_lock(client, finance_user):
    for _ in range(4):
        assert admin_login(client, finance_user.email, "wrong password").status_code == 200

    response = admin_login(client, finance_user.email, PASSWORD)

    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == finance_user.pk


def test_five_failures_lock_the_account_even_for_the_right_password(client, finance_user):
    for _ in range(5):
        admin_login(client, finance_user.email, "wrong password")

    response = admin_login(client, finance_user.email, PASSWORD)

    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("admin:index")).status_code == 302


def test_lockout_of_one_user_leaves_another_alone(client, finance_user, admin_user):
    for _ in range(5):
        admin_login(client, finance_user.email, "wrong password")

    response = admin_login(client, admin_user.email, PASSWORD)

    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == admin_user.pk


def test_portal_user_cannot_sign_in_to_the_admin(client, portal_user):
    response = admin_login(client, portal_user.email, PASSWORD)

    assert response.status_code == 200  # the form again, with an error
    assert client.get(reverse("admin:index")).status_code == 302
