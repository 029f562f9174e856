"""Celery tasks: thin, take ids, safe to run twice (STYLE.md, "Tasks are an API")."""

from datetime import date

from celery import shared_task

from orders.services.digest import task_digest_send


class TaskDigestNotSent(Exception):
    pass


@shared_task(bind=True, max_retries=6, default_retry_delay=10 * 60)
def send_task_digest_task(self, day: str | None = None) -> int:
    """Email today's task digests (or `day`'s, YYYY-MM-DD); retried later for the assignees whose email failed.

    The retry names the day the first attempt ran for, so a retry after midnight still sends yesterday's
    digest, and the assignees already emailed are not emailed again."""
    result = task_digest_send(day=date.fromisoformat(day) if day else None)
    if result.failed:
        failed = ", ".join(f"{email} ({error})" for email, error in result.failed.items())
        raise self.retry(kwargs={"day": result.day.isoformat()}, exc=TaskDigestNotSent(f"Not sent to {failed}"))
    return result.sent
