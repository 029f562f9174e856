from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = "Reports and portal"

    def ready(self):
        # Admin lists too long to export in a request are exported in the background, recorded here.
        from billing_project.admin_tools import register_background_export
        from reports.export_views import list_export_start

        register_background_export(list_export_start)
