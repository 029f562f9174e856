"""The daily task digest (orders.services.digest), its command and its Celery task in this process.

The same digest on a real Celery worker is in test_digest_worker.py.
"""

import io
import socket
from datetime import timedelta

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import CommandError, call_command

from accounts.roles import Role
from billing_project.billing_time import billing_today
from billing_project.celery import app as celery_app
from billing_project.errors import DomainError
from orders.models import TaskDigest
from orders.services.digest import task_digest_send
from orders.services.orders import order_create, order_transition
from orders.services.tasks import task_complete, task_create
from orders.tasks import TaskDigestNotSent, send_task_digest_task


@pytest.fixture
def today():
    return billing_today()


@pytest.fixture
def desk(formation, make_user, today):
    """Ann and Bob with tasks due on several days; Carol, since deactivated, with an overdue one."""
    ann = make_user(Role.OPERATIONS, email="ann@x.example", full_name="Ann Archer")
    bob = make_user(Role.OPERATIONS, email="bob@x.example", full_name="Bob Baker")
    carol = make_user(Role.OPERATIONS, email="carol@x.example", full_name="Carol Cole")

    def order():
        return order_create(actor=ann, customer=formation["customer"], order_type=formation["order_type"])

    first, second, finished = order(), order(), order()

    def task(title, assignee, due_in_days, on=first):
        due = None if due_in_days is None else today + timedelta(days=due_in_days)
        return task_create(actor=ann, order=on, title=title, assignee=assignee, due_date=due)

    tasks = {
        "overdue": task("Chase the passport", ann, -3),
        "yesterday": task("Book the notary", ann, -1, on=second),
        "today": task("Call the registrar", ann, 0, on=second),
        "tomorrow": task("File the articles", ann, 1),
        "undated": task("Tidy the file", ann, None),
        "done": task("Send the welcome pack", ann, -2),
        "finished order": task("Check the name", ann, -2, on=finished),
        "bob today": task("Review the bylaws", bob, 0),
        "carol overdue": task("Scan the certificate", carol, -5),
        "nobody's": task("Order the seal", None, -1),
    }
    task_complete(actor=ann, task=tasks["done"])
    order_transition(actor=ann, order=finished, to_status="cancelled", reason="The client withdrew.")
    carol.is_active = False
    carol.save()
    return {"ann": ann, "bob": bob, "carol": carol, "first": first, "second": second, "tasks": tasks}


def outbox_by_recipient(mailoutbox) -> dict[str, list]:
    received = {}
    for message in mailoutbox:
        for address in message.to:
            received.setdefault(address, []).append(message)
    return received


def closed_port() -> int:
    """A local port nobody listens on: an SMTP server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_each_assignee_gets_one_email_with_their_tasks_due_today_and_overdue(today, desk, mailoutbox, settings):
    settings.SITE_URL = "https://billing.example.com"

    result = task_digest_send()

    assert (result.day, result.sent, result.already_sent, result.failed) == (today, 2, 0, {})
    received = outbox_by_recipient(mailoutbox)
    assert sorted(received) == ["ann@x.example", "bob@x.example"]  # not Carol (inactive), nobody for unassigned
    assert [len(messages) for messages in received.values()] == [1, 1]
    ann_mail = received["ann@x.example"][0]
    day = f"{today:%d %b %Y}"
    assert ann_mail.subject == f"Your tasks on {day}: 1 due today, 2 overdue"
    first, second = desk["first"], desk["second"]
    assert ann_mail.body == (
        "Hello Ann Archer,\n"
        "\n"
        f"your open tasks on {day}:\n"
        "\n"
        "Overdue (2)\n"
        f"- {first.number} · Acme Ltd · Chase the passport "
        f"(due {today - timedelta(days=3):%d %b %Y}, 3 days overdue)\n"
        f"  https://billing.example.com/admin/orders/order/{first.pk}/change/\n"
        f"- {second.number} · Acme Ltd · Book the notary (due {today - timedelta(days=1):%d %b %Y}, 1 day overdue)\n"
        f"  https://billing.example.com/admin/orders/order/{second.pk}/change/\n"
        "\n"
        "Due today (1)\n"
        f"- {second.number} · Acme Ltd · Call the registrar (due {day})\n"
        f"  https://billing.example.com/admin/orders/order/{second.pk}/change/\n"
        "\n"
        "All your open tasks: https://billing.example.com/admin/orders/order/my-tasks/\n"
    )
    bob_mail = received["bob@x.example"][0]
    assert bob_mail.subject == f"Your tasks on {day}: 1 due today, 0 overdue"
    assert "Review the bylaws" in bob_mail.body and "Overdue" not in bob_mail.body
    assert bob_mail.from_email == settings.DEFAULT_FROM_EMAIL
    assert sorted(TaskDigest.objects.values_list("assignee__email", "day", "task_count")) == [
        ("ann@x.example", today, 3),
        ("bob@x.example", today, 1),
    ]


def test_a_second_run_the_same_day_sends_nothing_and_the_next_day_sends_again(today, desk, mailoutbox):
    yesterday = today - timedelta(days=1)

    first = task_digest_send(day=yesterday)
    again = task_digest_send(day=yesterday)

    assert (first.sent, first.already_sent) == (1, 0)  # on that day only Ann had tasks due
    assert (again.sent, again.already_sent) == (0, 1)
    assert [message.to for message in mailoutbox] == [["ann@x.example"]]
    assert mailoutbox[0].subject.endswith("1 due today, 1 overdue")  # seen from yesterday: -1 and -3 days

    today = task_digest_send(day=today)

    assert (today.sent, today.already_sent) == (2, 0)
    assert sorted(message.to[0] for message in mailoutbox) == ["ann@x.example", "ann@x.example", "bob@x.example"]
    assert TaskDigest.objects.count() == 3


def test_an_assignee_whose_tasks_are_all_done_gets_no_email(desk, mailoutbox):
    for name in ("today", "bob today"):
        task_complete(actor=desk["ann"], task=desk["tasks"][name])

    result = task_digest_send()

    assert (result.sent, [m.to for m in mailoutbox]) == (1, [["ann@x.example"]])
    assert "Call the registrar" not in mailoutbox[0].body


def test_a_failed_send_leaves_no_claim_and_the_next_run_sends_it(desk, mailoutbox, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2

    failed = task_digest_send()

    assert failed.sent == 0
    assert sorted(failed.failed) == ["ann@x.example", "bob@x.example"]
    assert "ConnectionRefusedError" in failed.failed["ann@x.example"]
    assert not TaskDigest.objects.exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retried = task_digest_send()

    assert (retried.sent, retried.failed) == (2, {})
    assert sorted(message.to[0] for message in mailoutbox) == ["ann@x.example", "bob@x.example"]


def test_a_digest_for_a_future_day_is_refused_and_claims_nothing(today, desk, mailoutbox):
    with pytest.raises(DomainError, match="in the future"):
        task_digest_send(day=today + timedelta(days=1))

    assert mailoutbox == [] and not TaskDigest.objects.exists()


def test_the_command_reports_progress_and_what_it_sent(today, desk, mailoutbox):
    out = io.StringIO()

    call_command("send_task_digest", stdout=out)
    call_command("send_task_digest", "--day", today.isoformat(), stdout=out)

    assert out.getvalue().splitlines() == [
        "  1/2 assignees",
        "  2/2 assignees",
        f"Task digest for {today:%d %b %Y}: 2 sent, 0 already sent that day.",
        "  1/2 assignees",
        "  2/2 assignees",
        f"Task digest for {today:%d %b %Y}: 0 sent, 2 already sent that day.",
    ]
    assert len(mailoutbox) == 2


def test_the_command_refuses_a_malformed_or_future_day(today, desk, mailoutbox):
    with pytest.raises(CommandError, match=r"--day '14/10/2026': expected YYYY-MM-DD"):
        call_command("send_task_digest", "--day", "14/10/2026", stdout=io.StringIO())
    with pytest.raises(CommandError, match="in the future"):
        call_command("send_task_digest", "--day", (today + timedelta(days=1)).isoformat(), stdout=io.StringIO())
    assert mailoutbox == []


def test_the_command_fails_with_a_reason_when_a_digest_is_not_sent(desk, mailoutbox, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"2 digest\(s\) not sent; run the command again to send them\."):
        call_command("send_task_digest", stdout=io.StringIO(), stderr=err)

    assert "ann@x.example: ConnectionRefusedError" in err.getvalue()
    assert not TaskDigest.objects.exists()


def test_the_task_sends_the_digest_and_is_safe_to_run_twice(today, desk, mailoutbox):
    assert send_task_digest_task() == 2  # called in this process; on a worker in test_digest_worker.py
    assert send_task_digest_task(day=today.isoformat()) == 0
    assert len(mailoutbox) == 2


def test_the_task_fails_loudly_when_a_digest_could_not_be_sent(today, desk, mailoutbox, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2

    with pytest.raises(TaskDigestNotSent, match="Not sent to ann@x.example"):
        send_task_digest_task(day=today.isoformat())

    assert not TaskDigest.objects.exists()


def test_the_beat_schedule_sends_the_digest_every_morning():
    entries = [entry for entry in settings.CELERY_BEAT_SCHEDULE.values() if entry["task"] == send_task_digest_task.name]

    assert entries == [{"task": "orders.tasks.send_task_digest_task", "schedule": crontab(minute=0, hour=8)}]
    assert send_task_digest_task.name in celery_app.tasks
