"""An order's tasks: created, changed, done and reopened."""

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing_project.errors import DomainError
from orders.locks import lock_order
from orders.models import Order, Task


def _check_assignee(assignee: User | None) -> None:
    if assignee is not None and not (assignee.is_staff and assignee.is_active):
        message = f"{assignee} is not an active staff user."
        raise DomainError(message, fields={"assignee": [message]})


def _save(task: Task, *, actor: User | None) -> Task:
    task._history_user = actor
    task.full_clean()
    task.save()
    return task


@transaction.atomic
def task_create(
    *,
    actor: User | None,
    order: Order,
    title: str,
    description: str = "",
    assignee: User | None = None,
    due_date: date | None = None,
    priority: str = Task.Priority.NORMAL,
) -> Task:
    order = lock_order(order)
    _check_assignee(assignee)
    return _save(
        Task(
            order=order,
            title=(title or "").strip(),
            description=description,
            assignee=assignee,
            due_date=due_date,
            priority=priority,
            created_by=actor,
        ),
        actor=actor,
    )


TASK_FIELDS = {"title", "description", "assignee", "due_date", "priority"}


@transaction.atomic
def task_update(*, actor: User | None, task: Task, **changes: Any) -> Task:
    lock_order(task.order)
    task = Task.objects.select_for_update().get(pk=task.pk)
    unknown = sorted(set(changes) - TASK_FIELDS)
    if unknown:
        raise ValidationError({field: ["This field cannot be changed here."] for field in unknown})
    if "assignee" in changes:
        _check_assignee(changes["assignee"])
    if "title" in changes:
        changes["title"] = (changes["title"] or "").strip()
    for field, value in changes.items():
        setattr(task, field, value)
    return _save(task, actor=actor)


@transaction.atomic
def task_complete(*, actor: User, task: Task) -> Task:
    """Mark the task done; doing it twice changes nothing (a double click)."""
    lock_order(task.order)
    task = Task.objects.select_for_update().get(pk=task.pk)
    if task.is_done:
        return task
    task.done_at = timezone.now()
    task.done_by = actor
    return _save(task, actor=actor)


@transaction.atomic
def task_reopen(*, actor: User | None, task: Task) -> Task:
    """Mark a done task open again; an open one stays as it is."""
    lock_order(task.order)
    task = Task.objects.select_for_update().get(pk=task.pk)
    if not task.is_done:
        return task
    task.done_at = None
    task.done_by = None
    return _save(task, actor=actor)
