"""Admin building blocks shared by the apps (kept apart from admin_site, which loads before the models)."""

import calendar
from collections.abc import Callable
from datetime import date

from django.contrib import messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from unfold.admin import ModelAdmin
from unfold.views import ChangeList

from billing_project.billing_time import billing_day_range
from billing_project.errors import DomainError


class ReadOnlyAdmin(ModelAdmin):
    """Rows written only by services or kept in code: viewed here, never added, changed or deleted."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class _DateHierarchyChangeList(ChangeList):
    """Checks the date hierarchy's year, month and day as a day range before Django turns them into datetimes
    (where 9999-12-31 has no next day and a 500 followed)."""

    def get_filters(self, request):
        if self.date_hierarchy:
            self._check_date_hierarchy(request)
        return super().get_filters(request)

    def _check_date_hierarchy(self, request) -> None:
        year, month, day = (
            self.filter_params.get(f"{self.date_hierarchy}__{part}", [None])[-1] for part in ("year", "month", "day")
        )
        if year is None:
            return
        try:
            first = date(int(year), int(month or 1), int(day or 1))
        except ValueError:
            return  # Django refuses it as it is
        if day:
            last = first
        elif month:
            last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
        else:
            last = first.replace(month=12, day=31)
        try:
            billing_day_range(first, last)
        except ValidationError as error:
            # Django answers by showing the unfiltered list; the message says why.
            reasons = " ".join(dict.fromkeys(error.messages))  # the first and last day may share one
            messages.error(request, f"Date filter {first.isoformat()}: {reasons}")
            raise IncorrectLookupParameters(error) from error


class CheckedDateHierarchyMixin:
    """For a ModelAdmin with a `date_hierarchy`: out-of-range dates in its links are refused with a message."""

    def get_changelist(self, request, **kwargs):
        return _DateHierarchyChangeList


def back_to(request, url: str) -> HttpResponse:
    """After an action: htmx (a dialog) follows HX-Redirect, a plain form post a redirect."""
    if request.headers.get("HX-Request"):
        return HttpResponse(headers={"HX-Redirect": url})
    return HttpResponseRedirect(url)


class ServiceButtonsMixin:
    """For a ModelAdmin whose buttons each call one service: `run_service` reports how it went and goes back."""

    def run_service(self, request, url: str, call: Callable, success: Callable[..., str]) -> HttpResponse:
        """Call one service, tell the user how it went (its refusal, or `success` of its result), go back to `url`."""
        try:
            result = call()
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, success(result), messages.SUCCESS)
        return back_to(request, url)
