"""Where the pages hand an export too long for a request to the background (reports.services.exports): a finance
report's page (reports.finance_views) and every admin list with SpreadsheetExportMixin (registered with
billing_project.admin_tools in reports.apps). Both answer with the export's page, which follows its progress."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.text import capfirst

from billing_project.admin_tools import SpreadsheetExportMixin
from billing_project.errors import DomainError
from reports.finance import ReportTable
from reports.models import Export
from reports.services.exports import LIST, REPORT, export_start

# Parameters of a page that are not filters: which page of rows, and the export asked for.
NOT_FILTERS = ("export", "page", "p")


def _filters_query(request) -> str:
    query = request.GET.copy()
    for name in NOT_FILTERS:
        query.pop(name, None)
    return query.urlencode()


def _started(request, export: Export) -> HttpResponse:
    if export.is_open and export.rows_written == 0 and export.status == Export.Status.QUEUED:
        messages.info(request, f"The {export.title.lower()} is exported in the background; this page follows it.")
    return redirect("admin:reports_export_change", export.pk)


def report_export_start(request, *, name: str, title: str, table: ReportTable, kind: str, stem: str):
    """For a report page's ?export=: the export's page when the report has more rows than a request writes
    (settings.EXPORT_BACKGROUND_ROWS), after queueing it; None to answer with the file at once."""
    if kind not in Export.Format.values or len(table.rows) <= settings.EXPORT_BACKGROUND_ROWS:
        return None
    export = export_start(
        actor=request.user,
        source=REPORT + name,
        title=title,
        query=_filters_query(request),
        filters=table.filters,
        format=kind,
        file_name=f"{stem}.{kind}",
    )
    return _started(request, export)


def list_export_start(request, model_admin: SpreadsheetExportMixin, kind: str) -> HttpResponse:
    """For an admin list's ?export= above the threshold (billing_project.admin_tools): queue it, show its page."""
    opts = model_admin.opts
    export_name = model_admin.export_name or str(opts.verbose_name_plural).replace(" ", "-")
    try:
        export = export_start(
            actor=request.user,
            source=LIST + opts.label_lower,
            title=capfirst(str(opts.verbose_name_plural)),
            query=_filters_query(request),
            filters=list_filters(request, model_admin),
            format=kind,
            file_name=f"{export_name}.{kind}",
        )
    except DomainError as error:
        messages.error(request, error.message)
        return HttpResponseRedirect(f"?{request.GET.urlencode()}")
    return _started(request, export)


def list_filters(request, model_admin) -> list[tuple[str, str]]:
    """The list's filters as its filter panel names them ("Status: Issued"), and its search."""
    changelist = model_admin.get_changelist_instance(request)
    labels = []
    for spec in changelist.filter_specs:
        if not getattr(spec, "used_parameters", None):
            continue
        try:
            chosen = [str(choice["display"]) for choice in spec.choices(changelist) if choice.get("selected")]
        except (AttributeError, KeyError, TypeError):  # a filter without choices to name (an autocomplete)
            chosen = []
        values = [
            str(value)
            for given in spec.used_parameters.values()
            for value in (given if isinstance(given, list | tuple) else [given])
        ]
        field = getattr(spec, "field", None)
        if not chosen and field is not None and field.is_relation:  # by name, not id
            try:
                chosen = [str(row) for row in field.related_model._default_manager.filter(pk__in=values)]
            except (ValueError, TypeError):
                chosen = []
        labels.append((capfirst(str(spec.title)), ", ".join(chosen or values)))
    if changelist.query:
        labels.append(("Search", changelist.query))
    return labels
