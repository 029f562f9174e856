"""Approvals in the admin: the "Awaiting my approval" queue, with approve and reject for one or many requests,
and the read-only list of every request the user may see, with its timeline.

Decisions call approvals.services, one request at a time, and report per request what happened; which requests a
user sees is decided by each target's handler (approvals.selectors), so a CSM sees only their customers' requests.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html
from django.utils.timesince import timesince
from simple_history.admin import SimpleHistoryAdmin
from unfold.contrib.filters.admin import DropdownFilter
from unfold.decorators import action, display

from approvals.forms import QueueActionForm
from approvals.models import ApprovalRequest, AwaitingApproval
from approvals.registry import handler_for
from approvals.selectors import (
    approval_list_for,
    approval_queue_ids,
    decided_by,
    deciders_of,
    open_steps_of,
    waiting_longer_than,
    why_nobody_can_approve,
    with_decisions,
)
from approvals.services import approval_approve, approval_reject
from approvals.views import attachment_download
from billing_project.admin_site import ReadOnlyHistoryMixin
from billing_project.admin_tools import ReadOnlyAdmin
from billing_project.errors import DomainError
from billing_project.formatting import moment

STATUS_COLOURS = {
    ApprovalRequest.Status.PENDING: "warning",
    ApprovalRequest.Status.APPROVED: "success",
    ApprovalRequest.Status.REJECTED: "danger",
    ApprovalRequest.Status.WITHDRAWN: "info",
}
# Why a service refused a decision, in a few words (the service's own message follows).
REASONS = {
    "own_submission": "own submission",
    "already_decided": "already decided",
    "already_approved": "already approved by you",
    "not_an_approver": "not an approver",
    "comment_required": "comment required",
}


def target_url(request: ApprovalRequest) -> str:
    """The target's admin page, from its handler (no query: content types are cached)."""
    model = ContentType.objects.get_for_id(request.target_type_id).model_class()
    return handler_for(model).admin_url(request.target_id)


# Filters.


class CustomerFilter(DropdownFilter):
    """The request's scope (the customer's client id), among the requests of the list."""

    title = "customer"
    parameter_name = "customer"

    def lookups(self, request, model_admin):
        scopes = model_admin.get_queryset(request).exclude(scope="").order_by("scope").values_list("scope", flat=True)
        return [(scope, scope) for scope in scopes.distinct()]

    def queryset(self, request, queryset):
        return queryset.filter(scope=self.value()) if self.value() else queryset


class ApproverFilter(DropdownFilter):
    """Who approved or rejected the request, among those who decided any request of the list."""

    title = "approver"
    parameter_name = "approver"

    def lookups(self, request, model_admin):
        return [(str(user.pk), str(user)) for user in deciders_of(model_admin.get_queryset(request))]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            raise IncorrectLookupParameters(f"Unknown approver {self.value()!r}.")
        return decided_by(queryset, int(self.value()))


class WaitingFilter(admin.SimpleListFilter):
    title = "waiting"
    parameter_name = "waiting"
    DAYS = (1, 3, 7)

    def lookups(self, request, model_admin):
        return [(str(days), f"More than {days} day{'s' if days > 1 else ''}") for days in self.DAYS]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if self.value() not in {str(days) for days in self.DAYS}:
            raise IncorrectLookupParameters(f"Unknown waiting time {self.value()!r}.")
        return waiting_longer_than(queryset, int(self.value()))


# Columns both lists show.


class RequestColumns:
    @display(description="Request", ordering="summary")
    def request_link(self, row: ApprovalRequest) -> str:
        return format_html('<a href="{}" class="text-primary-600">{}</a>', target_url(row), row.summary)

    @display(description="Target")
    def target_link(self, row: ApprovalRequest) -> str:
        return format_html('<a href="{}" class="text-primary-600">Open its page</a>', target_url(row))

    @display(description="Customer", ordering="scope")
    def customer(self, row: ApprovalRequest) -> str:
        return row.scope or "—"

    @display(description="Status", ordering="status", label=STATUS_COLOURS)
    def status_label(self, row: ApprovalRequest) -> tuple[str, str]:
        return row.status, row.get_status_display()

    @display(description="Waiting for")
    def waiting_for(self, row: ApprovalRequest) -> str:
        if row.status != ApprovalRequest.Status.PENDING:
            return "—"
        return "; ".join(step["label"] for step in open_steps_of(row)) or "—"

    @display(description="Submitted by", ordering="opened_by__email")
    def submitted_by(self, row: ApprovalRequest) -> str:
        return str(row.opened_by) if row.opened_by_id else "Month-end"

    @display(description="Submitted", ordering="opened_at")
    def submitted_at(self, row: ApprovalRequest) -> str:
        return moment(row.opened_at)

    @display(description="Waiting", ordering="opened_at")
    def waiting(self, row: ApprovalRequest) -> str:
        return timesince(row.opened_at)


# Decisions from the queue, one service call per request.


@dataclass(frozen=True)
class Outcome:
    level: int
    headline: str
    detail: str = ""


def decide_each(
    requests: list[ApprovalRequest], decide: Callable[[ApprovalRequest], ApprovalRequest], verb: str
) -> list[tuple[ApprovalRequest, Outcome]]:
    """Call `decide` (one service) on each request in turn; a refusal of one leaves the others to proceed."""
    outcomes = []
    for request in requests:
        try:
            decided = decide(request)
        except DomainError as error:
            reason = REASONS.get(error.code, error.code.replace("_", " "))
            outcomes.append((request, Outcome(messages.ERROR, f"Not {verb} ({reason})", error.message)))
        else:
            if decided.status == ApprovalRequest.Status.PENDING:
                outcomes.append((request, Outcome(messages.SUCCESS, "Approved; another approval is still needed")))
            else:
                outcomes.append((request, Outcome(messages.SUCCESS, decided.get_status_display())))
    return outcomes


def report(model_admin, http_request, outcomes: list[tuple[ApprovalRequest, Outcome]]) -> None:
    """One message per outcome, naming every request it befell."""
    grouped: dict[Outcome, list[str]] = {}
    for request, outcome in outcomes:
        grouped.setdefault(outcome, []).append(request.summary)
    for outcome, summaries in grouped.items():
        detail = f" {outcome.detail}" if outcome.detail else ""
        model_admin.message_user(http_request, f"{outcome.headline}: {'; '.join(summaries)}.{detail}", outcome.level)


@admin.register(AwaitingApproval)
class AwaitingApprovalAdmin(RequestColumns, ReadOnlyAdmin):
    """Pending requests the signed-in user may approve now, oldest first; approve or reject the selected ones."""

    empty_title = "Nothing waits for your approval"
    empty_message = "Bills and settlements you may approve appear here when they are submitted; you are emailed too."

    list_display = ["request_link", "customer", "waiting_for", "submitted_by", "submitted_at", "waiting"]
    list_display_links = None
    list_filter = [CustomerFilter, ApproverFilter, WaitingFilter]
    list_filter_submit = True
    search_fields = ["summary", "scope"]
    search_help_text = "Summary or customer client id"
    ordering = ["opened_at", "id"]
    action_form = QueueActionForm
    actions = ["approve_selected", "reject_selected"]

    def get_queryset(self, request):
        # The queue is worked out once per page: the filters' choices and the list read the same ids.
        if not hasattr(request, "_awaiting_my_approval"):
            request._awaiting_my_approval = approval_queue_ids(request.user)
        requests = AwaitingApproval.objects.filter(pk__in=request._awaiting_my_approval)
        return with_decisions(requests.select_related("opened_by"))

    def has_decide_permission(self, request) -> bool:
        return self.has_view_permission(request)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # A request is decided on its target's page (or from the list); this proxy has no page of its own.
        row = self.get_object(request, unquote(object_id))
        if row is None:
            raise Http404
        return redirect(target_url(row))

    def _chosen(self, request, queryset) -> list[ApprovalRequest]:
        """The selected requests still awaiting the user, plus those selected that no longer do (decided
        meanwhile, say): the services are asked about those too, so each is reported rather than dropped."""
        chosen = list(queryset)
        selected = [pk for pk in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME) if pk.isdigit()]
        gone = approval_list_for(request.user).filter(pk__in=selected).exclude(pk__in=[row.pk for row in chosen])
        return sorted([*chosen, *gone], key=lambda row: (row.opened_at, row.pk))

    @action(description="Approve selected requests", permissions=["decide"])
    def approve_selected(self, request, queryset):
        comment = request.POST.get("comment", "")
        outcomes = decide_each(
            self._chosen(request, queryset),
            lambda row: approval_approve(actor=request.user, request=row, comment=comment),
            "approved",
        )
        report(self, request, outcomes)

    @action(description="Reject selected requests (comment required)", permissions=["decide"])
    def reject_selected(self, request, queryset):
        comment = request.POST.get("comment", "")
        outcomes = decide_each(
            self._chosen(request, queryset),
            lambda row: approval_reject(actor=request.user, request=row, comment=comment),
            "rejected",
        )
        report(self, request, outcomes)


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(RequestColumns, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    """Every request the user may see, read-only; its page shows the rule's steps and the timeline."""

    empty_message = "No bill or settlement has been submitted for approval yet."

    # Within the page at 1,280 px: the target's page is linked from the request's own page.
    list_display = [
        "summary",
        "customer",
        "status_label",
        "waiting_for",
        "submitted_by",
        "submitted_at",
        "decided_at",
    ]
    list_filter = ["status", CustomerFilter, ApproverFilter, WaitingFilter]
    list_filter_submit = True
    search_fields = ["summary", "scope"]
    search_help_text = "Summary or customer client id"
    fields = [
        "summary",
        "target_link",
        "scope",
        "status",
        "rule_steps",
        "blocked",
        "opened_by",
        "opened_at",
        "decided_at",
    ]
    readonly_fields = ["target_link", "rule_steps", "blocked"]
    change_form_after_template = "approvals/request_timeline.html"

    def get_queryset(self, request):
        return with_decisions(approval_list_for(request.user).select_related("opened_by"))

    def get_urls(self):
        def attachment(request, action_id):
            if not request.user.has_perm("approvals.view_approvalrequest"):
                raise PermissionDenied
            return attachment_download(request, action_id)

        return [
            path(
                "attachment/<int:action_id>/",
                self.admin_site.admin_view(attachment),
                name="approvals_approvalaction_attachment",
            ),
            *super().get_urls(),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["approval_actions"] = obj.actions.select_related("actor", "request", "reverts").order_by("at", "id")
        return super().render_change_form(request, context, add, change, form_url, obj)

    @display(description="Blocked")
    def blocked(self, row: ApprovalRequest) -> str:
        """Why nobody can give an approval it waits for; an Admin re-routes it on its target's page."""
        reason = why_nobody_can_approve(row, row.target)
        if not reason:
            return "—"
        return format_html(
            '{} <a href="{}" class="text-primary-600">Re-route it on its page.</a>', reason, target_url(row)
        )

    @display(description="Steps")
    def rule_steps(self, row: ApprovalRequest) -> str:
        waiting = {step["name"] for step in open_steps_of(row)}
        unapproved = "waiting" if row.status == ApprovalRequest.Status.PENDING else "not approved"
        return (
            "; ".join(
                f"{step['label']} ({unapproved if step['name'] in waiting else 'approved'})"
                for step in row.rule.get("steps", [])
            )
            or "—"
        )
