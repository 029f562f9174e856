"""The same usage rows through django-import-export's default row-by-row import and through usage_import_file.

Usage: .venv/bin/python bench/import_export_compare.py [--rows 20000] [--postgres] [--seed 42]

On a fresh database (a SQLite file under /tmp, or with --postgres a PostgreSQL database
bench_usage_<pid>; migrated, demo catalog, removed at the end) it generates one usage file and
imports it twice into the same database, DEBUG off, in this process:
(a) django-import-export: a plain `resources.ModelResource` for UsageRecord, clientId and serviceName
    resolved by ForeignKeyWidget natural keys (customer client_id, service code), the period, price
    agreement, snapshot unit price, currency and upload filled in before saving each instance (the
    agreements looked up once per customer, service and day), `import_data(dataset, dry_run=False,
    use_transactions=True, raise_errors=True)`: its default path, one instance, one diff and one
    INSERT per row; the CSV read with tablib, inside the timing;
(b) `usage.services.usage_import_file` on the same bytes (parse, validate, store, summaries),
    without keeping a copy of the file (import-export keeps none either).
It prints both times, rows per second and the factor.
"""

import argparse
import io
import time

from common import fresh_database, setup_django, usage_csv


def make_resource():
    from import_export import fields, resources, widgets

    from catalog.models import Customer, PriceAgreement, Service
    from usage.models import UsageRecord

    class UsageRecordResource(resources.ModelResource):
        customer = fields.Field(
            attribute="customer", column_name="clientId", widget=widgets.ForeignKeyWidget(Customer, "client_id")
        )
        service = fields.Field(
            attribute="service", column_name="serviceName", widget=widgets.ForeignKeyWidget(Service, "code")
        )
        quantity = fields.Field(attribute="quantity", column_name="quantity", widget=widgets.DecimalWidget())
        service_time = fields.Field(
            attribute="service_time",
            column_name="serviceTime",
            widget=widgets.DateTimeWidget(format="%Y-%m-%dT%H:%M:%SZ"),
        )

        class Meta:
            model = UsageRecord
            fields = ("customer", "service", "quantity", "service_time")
            force_init_instance = True  # every row is new: no lookup of an existing record by id
            use_transactions = True

        def __init__(self, upload, **kwargs):
            super().__init__(**kwargs)
            self.upload = upload
            self.agreements = {}

        def before_save_instance(self, instance, row, **kwargs):
            day = instance.service_time.date()  # BILLING_TIME_ZONE is UTC here
            key = (instance.customer_id, instance.service_id, day)
            if key not in self.agreements:
                self.agreements[key] = (
                    PriceAgreement.objects.filter(customer_id=key[0], service_id=key[1], valid_from__lte=day)
                    .exclude(valid_to__lt=day)
                    .order_by("-valid_from")
                    .first()
                )
            agreement = self.agreements[key]
            instance.price_agreement = agreement
            instance.unit_price = agreement.unit_price
            instance.currency = instance.customer.currency
            instance.period = day.replace(day=1)
            instance.upload = self.upload

    return UsageRecordResource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()

    content = usage_csv(rows=args.rows, seed=args.seed)
    with fresh_database("postgres" if args.postgres else "sqlite") as url:
        setup_django(url)
        import tablib

        from usage.models import Upload, UsageRecord
        from usage.services import usage_import_file

        resource_class = make_resource()
        upload = Upload.objects.create(source=Upload.Source.UPLOAD, original_name="import-export.csv")
        started = time.perf_counter()
        dataset = tablib.Dataset().load(content.decode(), format="csv")
        result = resource_class(upload).import_data(dataset, dry_run=False, use_transactions=True, raise_errors=True)
        ie_s = time.perf_counter() - started
        assert not result.has_errors() and not result.has_validation_errors()
        ie_rows = UsageRecord.objects.filter(upload=upload).count()

        started = time.perf_counter()
        ours = usage_import_file(actor=None, stream=io.BytesIO(content), name="usage.csv", keep_file=False)
        ours_s = time.perf_counter() - started
        assert ours.status == Upload.Status.IMPORTED, (ours.status, ours.errors[:5])

    print(f"database: {url.split(':', 1)[0]}; machine: 2 cores; {args.rows:,} rows, seed {args.seed}")
    print(
        f"(a) django-import-export ModelResource: {ie_rows:>7,} rows in {ie_s:7.2f} s ({ie_rows / ie_s:>9,.0f} rows/s)"
    )
    print(
        f"(b) usage_import_file:                  {ours.imported_count:>7,} rows in {ours_s:7.2f} s "
        f"({ours.imported_count / ours_s:>9,.0f} rows/s)"
    )
    print(f"factor: usage_import_file is {ie_s / ours_s:.0f}x faster")


if __name__ == "__main__":
    main()
