import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.models import IdempotencyRecord
from accounts.roles import Role
from catalog.models import Customer

pytestmark = pytest.mark.django_db

BODY = {"name": "Acme Payments", "client_id": "ACME-001", "currency": "EUR"}


@pytest.fixture
def finance_client(make_user):
    client = APIClient()
    client.force_authenticate(make_user(Role.FINANCE))
    return client


def post(client, body, key):
    return client.post("/api/customers", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_replay_returns_the_first_response_and_writes_nothing_more(finance_client):
    first = post(finance_client, BODY, "key-1")
    replay = post(finance_client, BODY, "key-1")

    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert replay["Idempotency-Key-Replayed"] == "true"
    assert Customer.objects.count() == 1


def test_the_same_key_with_another_body_is_refused(finance_client):
    post(finance_client, BODY, "key-1")
    conflict = post(finance_client, {**BODY, "name": "Another name"}, "key-1")

    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "idempotency_key_reused"
    assert Customer.objects.count() == 1


def test_a_failed_call_stores_nothing_so_the_key_can_be_retried(finance_client):
    refused = post(finance_client, {**BODY, "currency": "XXX"}, "key-1")
    assert refused.status_code == 400
    assert not IdempotencyRecord.objects.exists()

    assert post(finance_client, BODY, "key-1").status_code == 201


def test_keys_belong_to_their_user(finance_client, make_user):
    post(finance_client, BODY, "shared-key")
    other = APIClient()
    other.force_authenticate(make_user(Role.FINANCE))
    response = post(other, {**BODY, "name": "Other", "client_id": "OTHER-1"}, "shared-key")
    assert response.status_code == 201
    assert Customer.objects.count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_calls_with_one_key_create_one_customer(make_user):
    user = make_user(Role.FINANCE)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def call() -> None:
        try:
            client = APIClient()
            client.force_authenticate(user)
            barrier.wait(timeout=10)
            statuses.append(post(client, BODY, "same-key").status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [201, 201]
    assert Customer.objects.count() == 1


@pytest.mark.parametrize("key", ["key\x00-1", "key\n1", "key\x7f"])
def test_a_key_with_control_characters_is_refused(finance_client, key):
    response = post(finance_client, BODY, key)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not Customer.objects.exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_path_with_a_nul_byte_is_kept_escaped_and_answers_404(finance_client):
    response = finance_client.post("/api/invoices/%00/issue", {}, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_error_messages_show_control_characters_of_the_input_escaped(finance_client):
    response = post(finance_client, {**BODY, "currency": "E\x1bR"}, "key-1")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["currency"] == ['"E\\x1bR" is not a valid choice.']
