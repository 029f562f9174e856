import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.tests.factories import UserFactory
from billing_project.celery import app as celery_app
from catalog.tests.factories import PortalMembershipFactory


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with nothing cached (the monthly usage report keeps its totals there)."""
    cache.clear()


@pytest.fixture
def make_user(db):
    """make_user(Role.FINANCE) -> a staff user holding that role."""

    def make(*roles: str, **fields):
        return UserFactory(roles=[str(role) for role in roles], **fields)

    return make


@pytest.fixture
def admin_user(make_user):
    return make_user(Role.ADMIN)


@pytest.fixture
def finance_user(make_user):
    return make_user(Role.FINANCE)


@pytest.fixture
def people(make_user):
    """The cast of approval tests: Finance submits, the CSM, another Customer Success user and Sales decide."""
    return {
        "finance": make_user(Role.FINANCE, email="fin@x.example"),
        "csm": make_user(Role.CUSTOMER_SUCCESS, email="csm@x.example"),
        "other_cs": make_user(Role.CUSTOMER_SUCCESS, email="cs2@x.example"),
        "sales": make_user(Role.SALES, email="sales@x.example"),
    }


@pytest.fixture
def portal_user(db):
    return PortalMembershipFactory().user


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def client_for(api_client):
    """client_for(user) -> the API client signed in as `user` (a session), or anonymous for None."""

    def sign_in(user):
        if user is not None:
            api_client.force_login(user)
        return api_client

    return sign_in


@pytest.fixture
def eager_celery():
    """Tasks run in this process, as a worker runs them (no request, nobody signed in), whatever the broker; the
    real worker's tests start one (ledger/tests/test_worker.py)."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
