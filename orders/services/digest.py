"""The daily task digest: each assignee gets one email a day listing their tasks due that day and overdue.

Once a day per assignee is kept by a `TaskDigest` row, claimed before the email goes, in the email's own
transaction. A second run (a redelivered task, a second worker, the command on top of the beat job) waits
on the row's unique key and then finds it taken; a failed send rolls the claim back, so the next attempt
sends it. This is why the email goes inside the transaction rather than after commit: sent after commit,
a mail server that is down would leave a claim for an email nobody received.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing_project.billing_time import billing_today
from billing_project.errors import DomainError
from orders.models import Task, TaskDigest
from orders.selectors import tasks_due_for_digest

logger = logging.getLogger(__name__)


@dataclass
class TaskDigestRun:
    """What one run did for `day`: digests sent, assignees already sent one that day, and failed sends."""

    day: date
    sent: int = 0
    already_sent: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # assignee's email -> the error


def task_digest_send(*, day: date | None = None, progress: Callable[[int, int], None] | None = None) -> TaskDigestRun:
    """Email every assignee with open tasks due on `day` (default: today) or before, at most once that day.

    Safe to run again and side by side. A failed email does not stop the others; it is reported in the
    result and sent by the next run of the same day."""
    day = day or billing_today()
    if day > billing_today():
        raise DomainError(f"{day:%d %b %Y} is in the future; a digest is sent on its day or later.")
    result = TaskDigestRun(day=day)
    due = tasks_due_for_digest(day).order_by().values("assignee_id")
    assignees = list(User.objects.filter(pk__in=due).order_by("pk"))
    for done, assignee in enumerate(assignees, start=1):
        try:
            sent = _send_one(assignee=assignee, day=day)
        except Exception as error:  # whatever the mail backend raises; the claim is already rolled back
            logger.exception("Task digest for %s on %s not sent", assignee.email, day)
            result.failed[assignee.email] = f"{type(error).__name__}: {error}"
        else:
            if sent:
                result.sent += 1
            else:
                result.already_sent += 1
        if progress:
            progress(done, len(assignees))
    return result


@transaction.atomic
def _send_one(*, assignee: User, day: date) -> bool:
    """Claim the assignee's digest for `day` and email it; False when it was already sent (or, since the run
    began, the assignee finished every task due)."""
    if TaskDigest.objects.filter(assignee=assignee, day=day).exists():
        return False
    tasks = list(tasks_due_for_digest(day).filter(assignee=assignee))
    if not tasks:  # done between the run's first read and now
        return False
    try:
        with transaction.atomic():
            TaskDigest.objects.create(assignee=assignee, day=day, sent_at=timezone.now(), task_count=len(tasks))
    except IntegrityError:  # another run claimed it while this one read the tasks
        return False
    task_digest_message(assignee=assignee, day=day, tasks=tasks).send()
    return True


def task_digest_message(*, assignee: User, day: date, tasks: list[Task]) -> EmailMessage:
    overdue = [task for task in tasks if task.due_date < day]
    due_today = [task for task in tasks if task.due_date == day]
    greeting = assignee.full_name or assignee.email
    lines = [f"Hello {greeting},", "", f"your open tasks on {day:%d %b %Y}:"]
    for heading, group in (("Overdue", overdue), ("Due today", due_today)):
        if group:
            lines += ["", f"{heading} ({len(group)})"]
            lines += [_task_line(task, day) for task in group]
    lines += ["", f"All your open tasks: {settings.SITE_URL}{reverse('admin:orders_my_tasks')}"]
    return EmailMessage(
        subject=f"Your tasks on {day:%d %b %Y}: {len(due_today)} due today, {len(overdue)} overdue",
        body="\n".join(lines) + "\n",
        to=[assignee.email],
    )


def _task_line(task: Task, day: date) -> str:
    order = task.order
    late = (day - task.due_date).days
    when = f"due {task.due_date:%d %b %Y}" + (f", {late} day{'s' if late != 1 else ''} overdue" if late else "")
    link = settings.SITE_URL + reverse("admin:orders_order_change", args=[order.pk])
    return f"- {order.number} · {order.customer.name} · {task.title} ({when})\n  {link}"
