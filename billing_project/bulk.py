"""Set-based writes for the big batch jobs (month-end), where building a model instance per row costs more
than the database does.

`insert_rows` writes plain tuples (COPY on PostgreSQL, one multi-row INSERT per batch elsewhere);
`history_record_created` then writes the django-simple-history "created" rows for what was inserted with
one `INSERT … SELECT`, the same rows `bulk_create_with_history` would write; `history_record_changed` the
"changed" rows of what was updated in bulk; `update_rows` sets columns of many rows by primary key. `add_to_rows`
adds amounts to keyed rows (totals kept by the writers), made when missing, in key order, in one statement however
many rows it touches.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from django.db import connection, models
from django.utils import timezone

_SQLITE_BATCH = 500  # rows per INSERT: SQLite allows 32,766 parameters per statement
_SQLITE_PARAMETERS = 32_766


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
    """Write a "created" history row, by `user`, for each row of `model` matching the SQL `where`."""
    _history_record(model, "+", where=where, params=params, user=user, when=when)


def history_record_changed(
    model: type[models.Model], *, where: str, params: Sequence, user, when: datetime | None = None
) -> None:
    """Write a "changed" history row, by `user`, for each row of `model` matching the SQL `where`, as it is now."""
    _history_record(model, "~", where=where, params=params, user=user, when=when)


def _history_record(
    model: type[models.Model], history_type: str, *, where: str, params: Sequence, user, when: datetime | None
) -> None:
    """Every column of the historical table is the model's own column of that name, except the history
    fields; a column that is neither makes this fail rather than write an incomplete history."""
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
            values.append("%s")
            values_params.append(history_type)
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


def update_rows(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> None:
    """Set `fields` of rows by primary key: `rows` are (primary key, *values in `fields` order). One statement on
    PostgreSQL (an UPDATE joined to the values, passed as arrays), one prepared statement run per row elsewhere:
    `bulk_update` builds a CASE expression per row in Python, which costs more than the update."""
    rows = list(rows)
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    concrete = [meta.pk, *(meta.get_field(name) for name in fields)]
    columns = [quote(field.column) for field in concrete]
    values = [
        [field.get_db_prep_value(row[position], connection) for row in rows] for position, field in enumerate(concrete)
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{_type(field)}[]" for field in concrete)
            assignments = ", ".join(f"{column} = given.{column}" for column in columns[1:])
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM unnest({arrays}) AS given({', '.join(columns)}) "
                f"WHERE {table}.{columns[0]} = given.{columns[0]}",
                values,
            )
            return
        assignments = ", ".join(f"{column} = %s" for column in columns[1:])
        by_row = zip(*values, strict=True)
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE {columns[0]} = %s", [[*r[1:], r[0]] for r in by_row]
        )


def _type(field: models.Field) -> str:
    return field.rel_db_type(connection) if field.is_relation else field.db_type(connection)


def add_to_rows(model: type[models.Model], key_fields: Sequence[str], changes: dict[tuple, dict[str, Decimal]]) -> None:
    """Add `changes` ({key: {field: amount}}, a key being the values of `key_fields`, which a unique constraint
    covers) to their rows, each made when missing: one `INSERT … ON CONFLICT DO UPDATE` adding to what is there.
    The rows are written, and so locked, in key order, so concurrent writers wait for each other and never
    deadlock; nothing is read first."""
    changes = {key: amounts for key, amounts in changes.items() if any(amounts.values())}
    if not changes:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    keys = [meta.get_field(name) for name in key_fields]
    others = [field for field in meta.concrete_fields if not field.primary_key and field not in keys]
    added = {field for amounts in changes.values() for field, amount in amounts.items() if amount}
    columns = [quote(field.column) for field in (*keys, *others)]
    rows = [[*key, *(changes[key].get(field.name, field.get_default()) for field in others)] for key in sorted(changes)]
    values = [
        [field.get_db_prep_value(value, connection) for value in column]
        for field, column in zip((*keys, *others), zip(*rows, strict=True), strict=True)
    ]
    conflict = ", ".join(columns[: len(keys)])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sums = ", ".join(
                f"{quote(field.column)} = {table}.{quote(field.column)} + EXCLUDED.{quote(field.column)}"
                for field in others
                if field.name in added
            )
            arrays = ", ".join(f"%s::{_type(field)}[]" for field in (*keys, *others))
            order = ", ".join(str(position) for position in range(1, len(keys) + 1))
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) ORDER BY {order} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {sums}",
                values,
            )
            return
        sums = ", ".join(
            f"{quote(field.column)} = {quote(field.column)} + excluded.{quote(field.column)}"
            for field in others
            if field.name in added
        )
        one_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
        by_row = list(zip(*values, strict=True))
        size = _SQLITE_PARAMETERS // len(columns)
        for start in range(0, len(by_row), size):
            batch = by_row[start : start + size]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one_row] * len(batch))} "
                f"ON CONFLICT ({conflict}) DO UPDATE SET {sums}",
                [value for row in batch for value in row],
            )
