"""The back-office landing page (settings.UNFOLD["DASHBOARD_CALLBACK"]): KPI cards, charts and recent activity.

Figures come from reports.kpis and reports.order_kpis, scoped to the customers and orders the user may see. A card
or chart shows only to who may open the list it summarises (their view permission on its model), and links to that
list filtered to what it counts; a selector runs only when something it feeds is shown. Money is per currency,
formatted by billing_project.formatting; charts are drawn by unfold's Chart.js from the data attributes of a canvas
(no inline script, so the Content-Security-Policy holds).
"""

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import reverse

from accounts.models import User
from approvals.selectors import approval_queue_ids
from billing_project.billing_time import billing_today, day_start
from billing_project.formatting import day, money
from catalog.models import Service
from orders.models import Order
from reports import kpis
from reports.activity import Activity, recent_activity
from reports.order_kpis import order_kpis

MONTHS = 12
TOP_CUSTOMERS = 10
INVOICED = "var(--color-primary-600)"
COLLECTED = "#16a34a"
AGING_COLOURS = ["#16a34a", "#facc15", "#f97316", "#ef4444", "#991b1b"]
PALETTE = ["#6366f1", "#16a34a", "#f59e0b", "#ef4444", "#06b6d4", "#a855f7", "#64748b"]
CATEGORY_LABELS = dict(Service.Category.choices)
STATUS_LABELS = dict(Order.Status.choices)
OPEN_STATUSES = ",".join(Order.OPEN_STATUSES)


@dataclass(frozen=True)
class Card:
    key: str
    title: str
    figures: list[str]  # one line per currency (or one line)
    note: str
    url: str
    empty: str = "None"

    @property
    def compact(self) -> bool:
        """Whether a figure is too long for a quarter of a 1,280 px page in the large type (a million or more, with
        its currency and cents): the card then shows all its figures in the smaller one."""
        return any(len(figure) > 15 for figure in self.figures)


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: str  # a Chart.js type: bar, line, doughnut
    data: str  # JSON
    options: str  # JSON
    height: int = 260


@dataclass(frozen=True)
class ChartGroup:
    """A chart per currency (or one), under one heading, with what to do when there is nothing to draw."""

    key: str
    title: str
    note: str
    charts: list[Chart]
    empty: str


@dataclass
class Dashboard:
    today: date
    money_cards: list[Card] = field(default_factory=list)
    order_cards: list[Card] = field(default_factory=list)
    charts: list[ChartGroup] = field(default_factory=list)
    activity: list[Activity] | None = None  # None: the user may see none of its kinds

    @property
    def is_empty(self) -> bool:
        return not (self.money_cards or self.order_cards or self.charts or self.activity is not None)


# --- Links ------------------------------------------------------------------------------------------------------


def _list(name: str, **filters) -> str:
    url = reverse(f"admin:{name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def _between(field_name: str, start: date, end: date) -> dict[str, str]:
    """A changelist filter on a date-time field: from the first moment of `start` to before that of `end`."""
    return {f"{field_name}__gte": day_start(start).isoformat(), f"{field_name}__lt": day_start(end).isoformat()}


# --- Figures ----------------------------------------------------------------------------------------------------


def _amounts(figures: dict[str, Decimal]) -> list[str]:
    return [money(amount, currency) for currency, amount in figures.items()]


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class Figures:
    """What several cards and charts share, read once (None when the user may see none of it)."""

    monthly: kpis.MonthlyMoney | None
    aging: kpis.Aging | None
    usage: kpis.UsageByCategory | None
    orders: kpis.OrderCounts | None


def _money_cards(user: User, scope: kpis.Scope, today: date, shared: Figures) -> list[Card]:
    monthly = shared.monthly
    this_month = kpis.month_start(today)
    last_month = kpis.add_months(this_month, -1)
    next_month = kpis.add_months(this_month, 1)
    cards = []
    may_see_balances = user.has_perm("ledger.view_account")
    if user.has_perm("ledger.view_invoice"):
        cards += [
            Card(
                "invoiced-this-month",
                "Invoiced this month",
                _amounts(monthly.month(monthly.invoiced, this_month)),
                f"Issued since {day(this_month)}, less credit notes",
                _list("ledger_invoice", **_between("issued_at", this_month, next_month)),
                "Nothing issued yet this month",
            ),
            Card(
                "invoiced-last-month",
                "Invoiced last month",
                _amounts(monthly.month(monthly.invoiced, last_month)),
                f"Issued in {last_month:%B %Y}, less credit notes",
                _list("ledger_invoice", **_between("issued_at", last_month, this_month)),
                "Nothing issued last month",
            ),
        ]
    if user.has_perm("ledger.view_payment"):
        cards.append(
            Card(
                "collected-this-month",
                "Collected this month",
                _amounts(monthly.month(monthly.collected, this_month)),
                "Payments received, less refunds",
                _list("ledger_payment", **_between("received_at", this_month, next_month)),
                "No payment received yet this month",
            )
        )
    if may_see_balances:
        held = kpis.balances(scope)
        start, end = kpis.dso_window(today)
        sales = kpis.invoiced(scope, start=start, end=end)
        receivables_list = _list("ledger_account", kind__exact="receivable", balance__gt="0")
        cards += [
            Card(
                "receivables",
                "Receivables outstanding",
                _amounts(held.receivables),
                "What customers owe on their accounts",
                receivables_list,
                "No customer owes anything",
            ),
            Card(
                "dso",
                "Days sales outstanding",
                [
                    f"{currency} {'—' if days is None else _plural(days, 'day')}"
                    for currency, days in kpis.dso(held.receivables, sales).items()
                ],
                f"Receivables ÷ invoiced in the {kpis.DSO_DAYS} days to today × {kpis.DSO_DAYS}",
                receivables_list,
                "Nothing owed and nothing invoiced",
            ),
            Card(
                "credit-held",
                "Credit held by customers",
                _amounts(held.credit_held),
                "Paid in advance or credited, not yet used",
                _list("ledger_account", kind__exact="receivable", balance__lt="0"),
                "No customer holds credit",
            ),
        ]
    if user.has_perm("ledger.view_invoice"):
        past_due = kpis.overdue(shared.aging)
        waiting = kpis.drafts_waiting(scope)
        cards += [
            Card(
                "overdue",
                "Overdue",
                [
                    f"{money(figure.amount, currency)} · {_plural(figure.invoices, 'invoice')}"
                    for currency, figure in past_due.items()
                ],
                "Still open on invoices past their due date",
                _list("ledger_invoice", status__in="issued,overdue", due_date__lt=today.isoformat()),
                "No invoice is overdue",
            ),
            Card(
                "drafts-waiting",
                "Drafts waiting to be issued",
                [_plural(waiting.invoices, "invoice"), *_amounts(waiting.amounts)] if waiting.invoices else [],
                "Drafts and approved invoices",
                _list("ledger_invoice", status__in=",".join(kpis.WAITING_TO_BE_ISSUED)),
                "No draft waits",
            ),
        ]
    if user.has_perm("approvals.view_awaitingapproval"):
        waiting_for_me = len(approval_queue_ids(user))
        cards.append(
            Card(
                "awaiting-my-approval",
                "Awaiting my approval",
                [_plural(waiting_for_me, "request")] if waiting_for_me else [],
                "Bills and settlements you may approve now",
                _list("approvals_awaitingapproval"),
                "Nothing waits for you",
            )
        )
    if user.has_perm("usage.view_monthlysummary"):
        cards.append(
            Card(
                "usage-this-month",
                "Usage revenue, month to date",
                _amounts(shared.usage.month_total(this_month)),
                "Usage at its prices, before allowances and fees",
                _list("usage_monthlysummary", month=f"{this_month:%Y-%m}"),
                "No usage recorded yet this month",
            )
        )
    return cards


def _order_cards(user: User, today: date, counts: kpis.OrderCounts | None) -> list[Card]:
    if counts is None:
        return []
    this_month = kpis.month_start(today)
    next_month = kpis.add_months(this_month, 1)
    figures = order_kpis(user, start=this_month, end=today)
    completed = _between("completed_at", this_month, next_month) | {"status__exact": Order.Status.COMPLETED}
    cards = [
        Card(
            "orders-open",
            "Open orders",
            [_plural(counts.open, "order")] if counts.open else [],
            "Started, waiting for documents or in progress",
            _list("orders_order", status__in=OPEN_STATUSES),
            "No open order",
        ),
        Card(
            "orders-overdue",
            "Overdue orders",
            [_plural(counts.overdue, "order")] if counts.overdue else [],
            "Open past their due date",
            _list("orders_order", overdue="yes"),
            "No order is overdue",
        ),
    ]
    # An order's fee is money: Operations runs orders and sees no money cards.
    if user.has_perm("orders.view_order_money"):
        cards += [
            Card(
                "realised-order-revenue",
                "Realised order revenue",
                _amounts({currency: figure.amount for currency, figure in figures.realised_revenue.items()}),
                "Fees of orders completed this month",
                _list("orders_order", **completed),
                "No order completed yet this month",
            ),
            Card(
                "unrealised-order-revenue",
                "Unrealised order revenue",
                _amounts(counts.open_fees),
                "Fees of the orders open now",
                _list("orders_order", status__in=OPEN_STATUSES),
                "No open order",
            ),
            Card(
                "average-order-value",
                "Average order value",
                _amounts({currency: figure.amount for currency, figure in figures.average_order_value.items()}),
                "Mean fee of the orders created this month",
                _list("orders_order", **_between("created_at", this_month, next_month)),
                "No order created yet this month",
            ),
        ]
    time = figures.completion_time
    cards.append(
        Card(
            "completion-time",
            "Completion time",
            [f"Median {time.median_days} days", f"90th percentile {time.p90_days} days"] if time.orders else [],
            f"Start to completion, {_plural(time.orders, 'order')} completed this month",
            _list("orders_order", **completed),
            "No order completed yet this month",
        )
    )
    return cards


# --- Charts -----------------------------------------------------------------------------------------------------

_TICKS = {"color": "#9ca3af"}
_LEGEND = {
    "display": True,
    "align": "end",
    "position": "top",
    "labels": {"boxHeight": 8, "boxWidth": 8, "usePointStyle": True, "pointStyle": "circle", "color": "#9ca3af"},
}


def _options(
    *, stacked: bool = False, horizontal: bool = False, legend: bool = True, counts: bool = False, months: bool = False
) -> str:
    """Chart.js options (JSON: no functions). `counts`: whole numbers on the value axis; `months`: a label axis of
    months, of which some may be skipped when narrow (every other label axis shows all its labels)."""
    value_ticks = _TICKS | {"precision": 0} if counts else _TICKS
    value_axis = {"beginAtZero": True, "stacked": stacked, "ticks": value_ticks, "border": {"display": False}}
    label_ticks = _TICKS | ({"maxRotation": 0, "autoSkipPadding": 12} if months else {"autoSkip": False})
    label_axis = {"stacked": stacked, "ticks": label_ticks, "grid": {"display": False}}
    options = {
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "plugins": {"legend": _LEGEND if legend else {"display": False}},
        "datasets": {"bar": {"borderRadius": 4, "maxBarThickness": 32}},
        "scales": {"x": value_axis, "y": label_axis} if horizontal else {"x": label_axis, "y": value_axis},
    }
    if horizontal:
        options["indexAxis"] = "y"
    return json.dumps(options)


def _numbers(amounts) -> list[float]:
    """Amounts as Chart.js plots them; the figures shown as text come from billing_project.formatting."""
    return [float(amount) for amount in amounts]


def _bar(key: str, title: str, labels: list[str], datasets: list[dict], **options) -> Chart:
    return Chart(key, title, "bar", json.dumps({"labels": labels, "datasets": datasets}), _options(**options))


def _month_labels(months: list[date]) -> list[str]:
    return [f"{month:%b %Y}" for month in months]


def _invoiced_collected_chart(monthly: kpis.MonthlyMoney) -> ChartGroup:
    labels = _month_labels(monthly.months)
    charts = []
    for currency in sorted({*monthly.invoiced, *monthly.collected}):
        none = [Decimal(0)] * len(labels)
        charts.append(
            _bar(
                f"invoiced-collected-{currency}",
                currency,
                labels,
                [
                    {
                        "label": f"Invoiced ({currency})",
                        "data": _numbers(monthly.invoiced.get(currency, none)),
                        "backgroundColor": INVOICED,
                    },
                    {
                        "label": f"Collected ({currency})",
                        "data": _numbers(monthly.collected.get(currency, none)),
                        "backgroundColor": COLLECTED,
                    },
                ],
                months=True,
            )
        )
    return ChartGroup(
        "invoiced-collected",
        "Invoiced and collected",
        f"The last {MONTHS} months: invoices issued less credit notes, payments received less refunds",
        charts,
        "No invoice issued and no payment received in the last 12 months. Invoices count once issued: run "
        "month-end from Billing runs, or issue one from Invoices.",
    )


def _aging_chart(aged: kpis.Aging) -> ChartGroup:
    labels = [kpis.AGING_LABELS[name] for name in kpis.AGING_BUCKETS]
    charts = [
        _bar(
            f"aging-{currency}",
            currency,
            labels,
            [
                {
                    "label": f"Open ({currency})",
                    "data": _numbers(figures[name].amount for name in kpis.AGING_BUCKETS),
                    "backgroundColor": AGING_COLOURS,
                }
            ],
            legend=False,
        )
        for currency, figures in aged.items()
    ]
    return ChartGroup(
        "aging",
        "Receivables aging",
        "What is still open on issued invoices, by days past their due date",
        charts,
        "No invoice is open: everything issued has been paid or credited.",
    )


def _usage_chart(usage: kpis.UsageByCategory) -> ChartGroup:
    labels = _month_labels(usage.months)
    charts = []
    for currency, categories in usage.amounts.items():
        datasets = [
            {
                "label": CATEGORY_LABELS.get(category, category),
                "data": _numbers(amounts),
                "backgroundColor": PALETTE[index % len(PALETTE)],
            }
            for index, (category, amounts) in enumerate(sorted(categories.items()))
        ]
        charts.append(_bar(f"usage-{currency}", currency, labels, datasets, stacked=True, months=True))
    return ChartGroup(
        "usage-by-category",
        "Usage revenue by service category",
        f"The last {MONTHS} months, at the usage's prices before allowances and fees",
        charts,
        "No usage in the last 12 months. Usage arrives by upload (Usage uploads → New upload) or through the API.",
    )


def _orders_chart(counts: kpis.OrderCounts) -> ChartGroup:
    charts = []
    if any(counts.by_status.values()):
        charts.append(
            _bar(
                "orders-by-status",
                "",
                [STATUS_LABELS[status] for status in counts.by_status],
                [{"label": "Orders", "data": list(counts.by_status.values()), "backgroundColor": INVOICED}],
                legend=False,
                counts=True,
            )
        )
    return ChartGroup(
        "orders-by-status",
        "Orders by status",
        "Every order you may see",
        charts,
        "No order yet. Orders are created from Orders → Add order.",
    )


def _top_customers_chart(top: dict[str, list[kpis.CustomerRevenue]]) -> ChartGroup:
    charts = [
        Chart(
            f"top-customers-{currency}",
            currency,
            "bar",
            json.dumps(
                {
                    "labels": [row.name for row in rows],
                    "datasets": [
                        {
                            "label": f"Revenue ({currency})",
                            "data": _numbers(row.amount for row in rows),
                            "backgroundColor": INVOICED,
                        }
                    ],
                }
            ),
            _options(horizontal=True, legend=False),
            height=40 + 28 * len(rows),
        )
        for currency, rows in top.items()
    ]
    return ChartGroup(
        "top-customers",
        f"Top {TOP_CUSTOMERS} customers by revenue",
        f"The last {MONTHS} months, without tax, less credit notes",
        charts,
        "No revenue in the last 12 months: revenue counts invoices once they are issued.",
    )


# --- The page ---------------------------------------------------------------------------------------------------


def dashboard_for(user: User, *, today: date | None = None) -> Dashboard:
    today = today or billing_today()
    scope = kpis.scope_for(user)
    months = kpis.last_months(today, MONTHS)
    may_see_invoices = user.has_perm("ledger.view_invoice")
    may_see_payments = user.has_perm("ledger.view_payment")
    shared = Figures(
        monthly=kpis.invoiced_and_collected_by_month(scope, months) if may_see_invoices or may_see_payments else None,
        aging=kpis.aging(scope, on=today) if may_see_invoices else None,
        usage=kpis.usage_by_category(scope, months) if user.has_perm("usage.view_monthlysummary") else None,
        orders=kpis.order_counts(user, today=today) if user.has_perm("orders.view_order") else None,
    )
    board = Dashboard(today=today)
    board.money_cards = _money_cards(user, scope, today, shared)
    board.order_cards = _order_cards(user, today, shared.orders)
    if may_see_invoices and may_see_payments:
        board.charts.append(_invoiced_collected_chart(shared.monthly))
    if shared.aging is not None:
        board.charts.append(_aging_chart(shared.aging))
    if shared.usage is not None:
        board.charts.append(_usage_chart(shared.usage))
    if shared.orders is not None:
        board.charts.append(_orders_chart(shared.orders))
    if may_see_invoices:
        board.charts.append(_top_customers_chart(kpis.top_customers(scope, months[-1], limit=TOP_CUSTOMERS)))
    kinds = ["ledger.view_invoice", "ledger.view_payment", "approvals.view_approvalrequest", "orders.view_order"]
    if any(user.has_perm(permission) for permission in kinds):
        board.activity = recent_activity(user, scope)
    return board


def dashboard_callback(request, context: dict) -> dict:
    context["dashboard"] = dashboard_for(request.user)
    return context
