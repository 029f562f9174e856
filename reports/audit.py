"""The audit log: every change django-simple-history recorded, across the apps, newest first. Reads only.

One entry is one historical record: when, who, which object, created / changed / deleted, and the fields
that differ from the object's previous version (for a creation, the values it was created with).

Who acted is the record's `history_user`. Services put their `actor` on the instance (`_history_user`), and
`simple_history.middleware.HistoryRequestMiddleware` supplies the signed-in user for the rest of a request;
DRF sets the token's user on the same request object when it authenticates, so API calls with a Bearer
token are recorded under the token's user too. Management commands and scheduled (Celery) jobs act for
nobody: their records have no user, and the log shows them as "system".

Some models keep no history, on purpose (`WITHOUT_HISTORY` says why for each): the journal and approval
actions are append-only and immutable (ledger/tests/test_journal.py, ledger/tests/test_approval.py), so
their rows are their own trail.

Reads are paged. A page's keys come from one UNION ALL over the history tables, ordered and sliced in the
database; then only that page's records are loaded (one query per model, with the id of each record's
previous version), their previous versions (one query per model) and the related objects their text
needs (one query per related model). An export streams every entry the same way, merging the tables'
date-ordered key streams, a chunk at a time.
"""

import heapq
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from itertools import islice

from django.apps import apps
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.db.models import IntegerField, OuterRef, Q, Subquery, Value
from django.utils.text import capfirst
from simple_history.utils import get_app_model_primary_key_name, get_history_model_for_model, get_m2m_reverse_field_name

from billing_project.formatting import day, moment, quantity

SYSTEM = "system"
SYSTEM_LABEL = "system"
CHANGE_LABELS = {"+": "created", "~": "changed", "-": "deleted"}
VALUE_MAX_CHARS = 500

# Every model of the project's apps either keeps a history or is named here with the reason it does not
# (reports/tests/test_audit.py holds the two lists together).
WITHOUT_HISTORY = {
    "ledger.transaction": "The journal: append-only and immutable (never updated or deleted), so its rows are the "
    "trail, with their author (created_by) and time.",
    "ledger.leg": "The journal: append-only and immutable, written only with its transaction.",
    "ledger.account": "Its only moving column is the balance, and every move is a journal leg that keeps the "
    "balance after it; a version per posting would copy the journal.",
    "ledger.documentsequence": "A counter behind gapless numbers; the numbers are on the invoices and credit notes.",
    "ledger.billingruncustomer": "Month-end's marker that a task billed a customer (so a redelivered task does not "
    "bill twice); the run's history and the invoices' record what was billed.",
    "ledger.reminderlog": "A log itself: one row per reminder sent by the daily job, never changed.",
    "ledger.reconciliationreport": "A log itself: one row per reconciliation run, never changed.",
    "ledger.monthlytotal": "Derived data: sums of the invoices, credit notes, payments and refunds, which keep "
    "history; rebuilt from them by rebuild_ledger_monthly_totals.",
    "ledger.monthlygrandtotal": "Derived data: the monthly totals of every customer added up; rebuilt from them by "
    "rebuild_ledger_monthly_totals.",
    "ledger.trailingrevenue": "Derived data: the monthly totals' revenue added up over twelve months; rebuilt from "
    "them by rebuild_ledger_monthly_totals.",
    "ledger.servicerevenue": "Derived data: sums of the issued invoices' lines and credit notes, which keep history; "
    "rebuilt from them by rebuild_ledger_monthly_totals.",
    "reports.export": "A user's own copy of a report or a list, not business data: the record says who asked for what "
    "and when, and it is deleted with its file after EXPORT_KEEP_DAYS.",
    "approvals.approvalaction": "The approval log: append-only and immutable, with actor, time and comment.",
    "usage.usagerecord": "Immutable and millions of rows a month, written in bulk; the upload that brought a record "
    "keeps history.",
    "usage.monthlysummary": "Derived data, rebuilt from the usage records by every import.",
    "usage.dailyusage": "Derived data, rebuilt from the usage records by every import.",
    "usage.serviceusage": "Derived data: the monthly summaries added up per month, currency and service by every "
    "import; rebuilt with them by rebuild_usage_summaries.",
    "accounts.idempotencyrecord": "A cache of API responses for replays, not business data.",
    "reports.auditlog": "No table: it only carries the audit log permission.",
    "reports.partnerrevenuereport": "No table: it only carries the partner revenue report's permission.",
    "reports.financereport": "No table: it only carries the finance reports' permissions.",
    "orders.orderstatushistory": "An order's timeline: append-only, one row per change of status with actor, time "
    "and comment (the order's own history has the rest).",
    "orders.orderdocumentfile": "One upload of a document, never changed; the document's history records each "
    "new current file.",
    "orders.comment": "Append-only and never edited, with author and time.",
    "orders.commentattachment": "Written once with its comment, never changed.",
    "orders.expense": "Never edited after posting: a correction is a reversing expense, with its author, time and "
    "reason, and each posts its own journal transaction.",
    "orders.taskdigest": "A log itself: one row per daily task digest emailed, never changed.",
}


@dataclass(frozen=True)
class AuditQuery:
    """Changes made in [start, end), optionally by one user (or by the system), on one model, on one object id."""

    start: datetime
    end: datetime
    user: int | str | None = None  # a user id, SYSTEM, or None for anyone
    model: str | None = None  # a label such as "catalog.customer"
    object_id: int | None = None


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    old: str
    new: str


@dataclass(frozen=True)
class AuditEntry:
    history_id: int
    when: datetime
    user_id: int | None
    user_label: str
    user_email: str
    model_label: str
    model_name: str
    object_id: int
    object_repr: str
    change_type: str
    changes: tuple[FieldChange, ...] = ()

    @property
    def change_label(self) -> str:
        return CHANGE_LABELS[self.change_type]


def audited_models() -> list[type[models.Model]]:
    """Every concrete model that keeps a history (simple-history marks their options), by label."""
    found = [
        model
        for model in apps.get_models()
        if hasattr(model._meta, "simple_history_manager_attribute") and not model._meta.proxy
    ]
    return sorted(found, key=lambda model: model._meta.label_lower)


def audited_model_choices() -> list[tuple[str, str]]:
    return [
        (model._meta.label_lower, f"{capfirst(model._meta.verbose_name)} ({model._meta.app_config.verbose_name})")
        for model in audited_models()
    ]


class AuditLog:
    """The entries of a query, newest first, sliced lazily: hand it to Django's Paginator."""

    def __init__(self, query: AuditQuery):
        self.query = query
        self.models = audited_models()
        if query.model is not None:
            self.models = [model for model in self.models if model._meta.label_lower == query.model]
        self._count: int | None = None

    def _branches(self) -> list[models.QuerySet]:
        return [_keys(index, model, self.query) for index, model in enumerate(self.models)]

    def _union(self) -> models.QuerySet | None:
        branches = self._branches()
        if not branches:
            return None
        first, *others = branches
        return first.union(*others, all=True).order_by("-history_date", "-model_index", "-history_id")

    def count(self) -> int:
        if self._count is None:
            union = self._union()
            self._count = 0 if union is None else union.count()
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key: slice) -> list[AuditEntry]:
        if not isinstance(key, slice):
            raise TypeError("The audit log is read a slice (a page) at a time.")
        union = self._union()
        if union is None:
            return []
        return _hydrate(self.models, list(union[key]))

    def __iter__(self) -> Iterator[AuditEntry]:
        """Every entry, newest first, a chunk at a time: the tables' key streams merged, never all in memory."""
        streams = [branch.order_by("-history_date", "-history_id").iterator() for branch in self._branches()]
        merged = heapq.merge(*streams, reverse=True)
        while chunk := list(islice(merged, 500)):
            yield from _hydrate(self.models, chunk)


def _keys(index: int, model: type[models.Model], query: AuditQuery) -> models.QuerySet:
    """(history_date, model_index, history_id) of the model's records that match the query, unordered."""
    history = _history(model)
    records = history.objects.filter(history_date__gte=query.start, history_date__lt=query.end)
    if query.user == SYSTEM:
        records = records.filter(history_user__isnull=True)
    elif query.user is not None:
        records = records.filter(history_user_id=query.user)
    if query.object_id is not None:
        records = records.filter(**{get_app_model_primary_key_name(model): query.object_id})
    return (
        records.order_by()
        .annotate(model_index=Value(index, output_field=IntegerField()))
        .values_list("history_date", "model_index", "history_id")
    )


def _hydrate(audited: list[type[models.Model]], keys: list[tuple[datetime, int, int]]) -> list[AuditEntry]:
    """The entries of these keys, in their order."""
    by_model: dict[int, list[int]] = defaultdict(list)
    for _, index, history_id in keys:
        by_model[index].append(history_id)
    related = _RelatedObjects()
    loaded: dict[tuple[int, int], tuple] = {}
    for index, history_ids in by_model.items():
        model = audited[index]
        for record, previous, instance, m2m_now, m2m_before in _records(model, history_ids):
            changes = _raw_changes(model, record, previous, m2m_now, m2m_before)
            related.want_instance(instance)
            related.want_changes(changes)
            loaded[index, record.history_id] = (model, record, instance, changes)
    related.load()
    entries = []
    for _, index, history_id in keys:
        model, record, instance, changes = loaded[index, history_id]
        related.attach(instance)
        user = record.history_user
        entries.append(
            AuditEntry(
                history_id=record.history_id,
                when=record.history_date,
                user_id=record.history_user_id,
                user_label=str(user) if user is not None else SYSTEM_LABEL,
                user_email=user.email if user is not None else SYSTEM_LABEL,
                model_label=model._meta.label_lower,
                model_name=str(model._meta.verbose_name),
                object_id=instance.pk,
                object_repr=_text(instance),
                change_type=record.history_type,
                changes=tuple(
                    FieldChange(
                        column.name,
                        str(column.verbose_name),
                        _display(column, old, related),
                        _display(column, new, related),
                    )
                    for column, old, new in changes
                ),
            )
        )
    return entries


def _records(model: type[models.Model], history_ids: list[int]):
    """(record, previous version or None, the object as the record has it, many-to-many values of the record and
    of its previous version), with two queries, and one more per many-to-many field the model keeps."""
    history = _history(model)
    pk = get_app_model_primary_key_name(model)
    previous_id = (
        history.objects.filter(**{pk: OuterRef(pk)})
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )
    records = list(
        history.objects.filter(history_id__in=history_ids)
        .select_related("history_user")
        .annotate(previous_id=Subquery(previous_id))
    )
    wanted = [record.previous_id for record in records if record.history_type == "~" and record.previous_id]
    previous = history.objects.in_bulk(wanted) if wanted else {}
    m2m = _m2m_values(history, [*history_ids, *wanted])
    for record in records:
        before = previous.get(record.previous_id)
        yield (
            record,
            before,
            _instance(model, history, record),
            m2m.get(record.history_id, {}),
            m2m.get(before.history_id, {}) if before is not None else {},
        )


def _instance(model: type[models.Model], history, record) -> models.Model:
    """The object as the record has it. (`record.instance` would also read the excluded columns of the live row,
    one query per record.)"""
    return model(**{column.attname: getattr(record, column.attname) for column in history.tracked_fields})


def _m2m_values(history, history_ids: list[int]) -> dict[int, dict[str, set]]:
    """{history_id: {field name: ids of the related objects}} for the many-to-many fields a history keeps."""
    values: dict[int, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for m2m_field in history._history_m2m_fields:
        rows = getattr(history, m2m_field.name).model.objects.filter(history_id__in=history_ids)
        for history_id, related_id in rows.values_list("history_id", get_m2m_reverse_field_name(m2m_field)):
            values[history_id][m2m_field.name].add(related_id)
    return values


@cache
def _history(model: type[models.Model]) -> type[models.Model]:
    """The model's history model (simple-history builds a manager on every lookup: this is read per record)."""
    return get_history_model_for_model(model)


@cache
def _diffed_fields(model: type[models.Model]) -> tuple[models.Field, ...]:
    """The tracked columns worth showing: not the primary key, not timestamps the database keeps itself."""
    return tuple(
        column
        for column in _history(model).tracked_fields
        if not (column.primary_key or getattr(column, "auto_now", False) or getattr(column, "auto_now_add", False))
    )


def _raw_changes(model, record, previous, m2m_now, m2m_before) -> list[tuple[models.Field, object, object]]:
    """(field, old value, new value): for a change, what differs from the previous version; for a creation, the
    values set (leaving out empty ones and defaults); for a deletion, nothing. Many-to-many values are id sets.

    This is simple-history's `diff_against` done for a page at once: it reads the many-to-many rows of every
    version with one query instead of two per version, and it compares every tracked column, where
    `diff_against` compares editable fields only and would miss the columns services set (a token's revocation)."""
    if record.history_type == "+":
        created = []
        for column in _diffed_fields(model):
            value = getattr(record, column.attname)
            if value in (None, "", [], {}) or (column.has_default() and value == column.get_default()):
                continue
            created.append((column, None, value))
        return created
    if record.history_type != "~" or previous is None:
        return []
    changes = []
    for column in _diffed_fields(model):
        old, new = getattr(previous, column.attname), getattr(record, column.attname)
        if old != new:
            changes.append((column, old, new))
    for m2m_field in _history(model)._history_m2m_fields:
        old, new = m2m_before.get(m2m_field.name, set()), m2m_now.get(m2m_field.name, set())
        if old != new:
            changes.append((model._meta.get_field(m2m_field.name), old, new))
    return sorted(changes, key=lambda change: change[0].name)


def _display(column: models.Field, value, related: "_RelatedObjects") -> str:
    if value is None:
        return ""
    if column.many_to_many:
        return ", ".join(sorted(related.text(column.related_model, pk) for pk in value))  # "" for none
    if column.many_to_one or column.one_to_one:
        return related.text(column.related_model, value)
    if column.flatchoices:
        return str(dict(column.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return moment(value)
    if isinstance(value, date):
        return day(value)
    if isinstance(value, Decimal):
        return quantity(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    return text if len(text) <= VALUE_MAX_CHARS else text[: VALUE_MAX_CHARS - 1] + "…"


def _text(instance: models.Model) -> str:
    """The object's own text; if that needs a row that is gone, its name and id."""
    try:
        return str(instance)
    except (ObjectDoesNotExist, AttributeError, TypeError, ValueError):
        return f"{instance._meta.verbose_name} #{instance.pk}"


class _RelatedObjects:
    """The rows that the page's foreign keys point at, loaded with one query per related model."""

    def __init__(self):
        self.wanted: dict[type[models.Model], set] = defaultdict(set)
        self.rows: dict[type[models.Model], dict] = {}

    @staticmethod
    def _foreign_keys(instance: models.Model) -> Iterable[models.ForeignKey]:
        return (column for column in instance._meta.concrete_fields if column.many_to_one or column.one_to_one)

    def want_instance(self, instance: models.Model) -> None:
        """What its text may read (every foreign key: `__str__` is free to use any)."""
        for column in self._foreign_keys(instance):
            value = getattr(instance, column.attname)
            if value is not None and not column.primary_key:
                self.wanted[column.related_model].add(value)

    def want_changes(self, changes: list[tuple[models.Field, object, object]]) -> None:
        for column, old, new in changes:
            if column.many_to_many:
                self.wanted[column.related_model].update([*(old or []), *(new or [])])
            elif column.many_to_one or column.one_to_one:
                self.wanted[column.related_model].update(value for value in (old, new) if value is not None)

    def load(self) -> None:
        for model, ids in self.wanted.items():
            # With the rows their own text reads (an invoice's customer, a leg's account), in the same query.
            foreign_keys = [column.name for column in model._meta.concrete_fields if column.many_to_one]
            self.rows[model] = model._base_manager.select_related(*foreign_keys).in_bulk(ids) if ids else {}

    def attach(self, instance: models.Model) -> None:
        for column in self._foreign_keys(instance):
            value = getattr(instance, column.attname)
            if value is not None and not column.primary_key:
                column.set_cached_value(instance, self.rows.get(column.related_model, {}).get(value))

    def text(self, model, pk) -> str:
        row = self.rows.get(model, {}).get(pk)
        return _text(row) if row is not None else f"{model._meta.verbose_name} #{pk} (deleted)"
