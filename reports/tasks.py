"""Celery tasks: thin, take ids, safe to run twice (STYLE.md, "Tasks are an API")."""

from celery import shared_task

from reports.services.exports import export_run, exports_delete_expired


@shared_task(ignore_result=True)
def export_run_task(export_id: int) -> None:
    """Write an export asked for on a page (reports.services.exports); a second delivery writes nothing."""
    export_run(export_id=export_id)


@shared_task
def exports_delete_expired_task() -> int:
    return exports_delete_expired()
