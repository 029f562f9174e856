"""The task digest on a real Celery worker on Redis against PostgreSQL: one email per assignee per day, however
often the task is delivered and however many deliveries run side by side.

The worker is another process, so its emails are written to files (Django's file-based backend, set in a
settings module made for the worker) and read back here. Like ledger/tests/test_worker.py, this needs
REDIS_URL and PostgreSQL and skips without them.
"""

import os
import subprocess
import sys
import uuid
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

import pytest
from django.conf import settings

from accounts.roles import Role
from billing_project.billing_time import billing_today
from billing_project.celery import app as celery_app
from ledger.tests.test_worker import database_url_for_worker, needs_postgres, needs_redis, wait_for
from orders.models import TaskDigest
from orders.services.orders import order_create
from orders.services.tasks import task_create
from orders.tasks import send_task_digest_task

MESSAGE_SEPARATOR = b"\n" + b"-" * 79 + b"\n"  # what django.core.mail.backends.filebased writes between emails


def emails_written(mail_dir: Path) -> list:
    messages = []
    for path in sorted(mail_dir.glob("*.log")):
        messages += [message_from_bytes(raw) for raw in path.read_bytes().split(MESSAGE_SEPARATOR) if raw.strip()]
    return messages


@pytest.fixture
def worker_with_mail_files(transactional_db, tmp_path):
    """A worker (threads pool, four at once) on the test database, writing its emails to files under tmp_path."""
    assert not celery_app.conf.task_always_eager, "REDIS_URL is set, so tasks must go to the broker"
    celery_app.control.purge()
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    (tmp_path / "digest_worker_settings.py").write_text(
        "from billing_project.settings_test import *  # noqa: F403\n"
        'EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"\n'
        f"EMAIL_FILE_PATH = {str(mail_dir)!r}\n"
    )
    hostname = f"countinghouse-digest-{uuid.uuid4().hex[:8]}@localhost"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(settings.BASE_DIR)]),
        "DJANGO_SETTINGS_MODULE": "digest_worker_settings",
        "DATABASE_URL": database_url_for_worker(),
        "DATABASE_CONN_MAX_AGE": "0",
    }
    log = (tmp_path / "worker.log").open("w+b")
    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "billing_project", "worker"),
            *("--pool=threads", "--concurrency=4", "-Q", "celery", "-n", hostname),
            *("--without-gossip", "--without-mingle", "--loglevel=INFO"),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(
            lambda: celery_app.control.ping(destination=[hostname], timeout=0.5),
            timeout=60,
            what="the worker to answer a ping",
            worker=worker,
            log=log,
        )
        yield worker, log, mail_dir
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()


@needs_redis
@needs_postgres
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_digest_on_a_real_worker_emails_each_assignee_once_a_day_when_delivered_twice_at_once(
    formation, make_user, worker_with_mail_files
):
    worker, log, mail_dir = worker_with_mail_files
    today = billing_today()
    assignees = [make_user(Role.OPERATIONS, email=f"ops{n}@x.example") for n in range(6)]
    order = order_create(actor=assignees[0], customer=formation["customer"], order_type=formation["order_type"])
    for position, assignee in enumerate(assignees):
        for late in range(position % 3 + 1):  # one, two or three tasks each, due today and before
            task_create(
                actor=assignees[0],
                order=order,
                title=f"Task {late} of {assignee.email}",
                assignee=assignee,
                due_date=today - timedelta(days=late),
            )
        task_create(
            actor=assignees[0], order=order, title="Not yet", assignee=assignee, due_date=today + timedelta(days=1)
        )

    # The same digest delivered twice, both running at once on the worker's threads, then once more.
    side_by_side = [send_task_digest_task.delay(), send_task_digest_task.delay(day=today.isoformat())]
    sent_side_by_side = [result.get(timeout=60) for result in side_by_side]
    sent_again = send_task_digest_task.delay().get(timeout=60)

    assert sum(sent_side_by_side) == 6 and sent_again == 0
    emails = emails_written(mail_dir)  # each was written before its claim committed, so before its task ended
    tasks_per_assignee = {assignee.email: position % 3 + 1 for position, assignee in enumerate(assignees)}
    assert sorted(message["To"] for message in emails) == sorted(tasks_per_assignee)
    for message in emails:
        body = message.get_payload(decode=True).decode()
        assert body.count(f"- {order.number} · ") == tasks_per_assignee[message["To"]]
        assert "Not yet" not in body
    assert sorted(TaskDigest.objects.values_list("assignee__email", "day", "task_count")) == sorted(
        (email, today, count) for email, count in tasks_per_assignee.items()
    )
