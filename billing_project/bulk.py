"""Set-based writes for the big batch jobs (month-end), where building a model instance per row costs more
than the database does.

`insert_rows` writes plain tuples (COPY on PostgreSQL, one multi-row INSERT per batch elsewhere);
`history_record_created` then writes the django-simple-history "created" rows for what was inserted with
one `INSERT … SELECT`, the same rows `bulk_create_with_history` would write.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, models
from django.utils import timezone

_SQLITE_BATCH = 500  # rows per INSERT: SQLite allows 32,766 parameters per statement


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Insert rows (values in `columns` order, already in database form) into `model`'s table."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column_list = ", ".join(quote(column) for column in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Errors are wrapped as Django's, as the cursor's own statements are: a broken foreign key
            # becomes an IntegrityError.
            with (
                connection.wrap_database_errors,
                cursor.cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        rows = list(rows)
        one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        for start in range(0, len(rows), _SQLITE_BATCH):
            batch = rows[start : start + _SQLITE_BATCH]
            cursor.execute(
                f"INSERT INTO {table} ({column_list}) VALUES {', '.join([one_row] * len(batch))}",
                [value for row in batch for value in row],
            )


def history_record_created(
    model: type[models.Model], *, where: str, params: Sequence, user, when: datetime | None = None
) -> None:
    """Write a "created" history row, by `user`, for each row of `model` matching the SQL `where`.

    Every column of the historical table is the model's own column of that name, except the history
    fields; a column that is neither makes this fail rather than write an incomplete history.
    """
    history = model.history.model
    quote = connection.ops.quote_name
    own = {field.column for field in model._meta.concrete_fields}
    targets, values, values_params = [], [], []
    for field in history._meta.concrete_fields:
        if field.column == "history_id":
            continue
        targets.append(quote(field.column))
        if field.column in own:
            values.append(quote(field.column))
        elif field.column == "history_date":
            values.append("%s")
            values_params.append(connection.ops.adapt_datetimefield_value(when or timezone.now()))
        elif field.column == "history_type":
            values.append("'+'")
        elif field.column == "history_user_id":
            values.append("%s")
            values_params.append(user.pk if user is not None else None)
        elif field.column == "history_change_reason":
            values.append("NULL")
        else:
            raise ValueError(f"{history.__name__}.{field.name} has no source column in {model.__name__}.")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(history._meta.db_table)} ({', '.join(targets)}) "
            f"SELECT {', '.join(values)} FROM {quote(model._meta.db_table)} WHERE {where}",
            [*values_params, *params],
        )
