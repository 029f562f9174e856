"""The usage management commands: import_usage and rebuild_usage_summaries."""

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from catalog.tests.factories import CustomerFactory, PriceAgreementFactory
from usage.models import DailyUsage, MonthlySummary, Upload, UsageRecord
from usage.tests.test_services import DATA, make_catalog, summary_rows


@pytest.fixture
def catalog(db):
    return make_catalog()


def run(*args) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_import_usage_imports_a_good_file_and_reports_progress(catalog):
    out, err = run("import_usage", str(DATA / "good_march.csv"), str(DATA / "good_extra_columns.csv"), "--force")
    assert "[1/2] good_march.csv" in out and "[2/2] good_extra_columns.csv" in out
    assert "imported 2 rows" in out
    assert "warning: Ignored column(s)" in out
    assert err == ""
    assert UsageRecord.objects.count() == 4
    assert set(Upload.objects.values_list("source", "status")) == {(Upload.Source.COMMAND, Upload.Status.IMPORTED)}


def test_import_usage_refuses_a_bad_file_with_its_row_errors(catalog):
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 1 file"):
        call_command("import_usage", str(DATA / "bad_unknown_client.csv"), stdout=stdout, stderr=stderr)
    assert "row 3, clientId 'NOBODY-9': is not a known client id" in stderr.getvalue()
    assert UsageRecord.objects.count() == 0
    assert MonthlySummary.objects.count() == 0


def test_import_usage_refuses_a_nul_byte_in_a_field_and_prints_it_escaped(catalog):
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 of 1 file"):
        call_command("import_usage", str(DATA / "bad_nul_in_client_id.csv"), stdout=stdout, stderr=stderr)
    assert "row 3, clientId 'ACME\\x00-1': is not a known client id" in stderr.getvalue()
    assert Upload.objects.get().errors[0]["value"] == "ACME\\x00-1"
    assert UsageRecord.objects.count() == 0


def test_import_usage_prints_and_keeps_a_file_name_with_control_characters_escaped(catalog, tmp_path):
    path = tmp_path / "march\x1b[2J.csv"
    path.write_bytes((DATA / "good_march.csv").read_bytes())

    out, _ = run("import_usage", str(path))

    assert "] march\\x1b[2J.csv (" in out
    assert "\x1b" not in out
    assert Upload.objects.get().original_name == "march\\x1b[2J.csv"


def test_import_usage_refuses_a_duplicate_file_unless_forced(catalog):
    run("import_usage", str(DATA / "good_march.csv"))
    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("import_usage", str(DATA / "good_march.csv"), stdout=stdout, stderr=stderr)
    assert "refused: This file's content was already imported" in stderr.getvalue()
    assert UsageRecord.objects.count() == 2
    run("import_usage", str(DATA / "good_march.csv"), "--force")
    assert UsageRecord.objects.count() == 4


def test_import_usage_names_a_missing_file(catalog, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        run("import_usage", str(tmp_path / "nope.csv"))


def daily_rows() -> list[tuple]:
    return sorted(
        DailyUsage.objects.values_list("customer_id", "service_id", "day", "quantity", "record_count", "amount")
    )


def test_rebuild_usage_summaries_recomputes_every_summary_and_the_daily_usage(catalog):
    run("import_usage", str(DATA / "good_march_more.csv"))
    kept, kept_days = summary_rows(), daily_rows()
    MonthlySummary.objects.all().delete()
    DailyUsage.objects.all().delete()

    out, _ = run("rebuild_usage_summaries")

    assert "Rebuilt 2 monthly summaries and the daily usage for all customers" in out
    assert summary_rows() == kept
    assert daily_rows() == kept_days != []


def test_rebuild_usage_summaries_for_one_customer_leaves_the_others(catalog):
    other = CustomerFactory(client_id="OTHER-1")
    PriceAgreementFactory(customer=other, service=catalog.kyc)
    run("import_usage", str(DATA / "good_march_more.csv"))
    MonthlySummary.objects.filter(customer=other).delete()
    MonthlySummary.objects.filter(customer=catalog.acme).update(quantity=Decimal(99))

    out, _ = run("rebuild_usage_summaries", "--customer", "ACME-1")

    assert "Rebuilt 2 monthly summaries and the daily usage for 1 customer(s)" in out
    assert MonthlySummary.objects.get(customer=catalog.acme, period=date(2026, 3, 1)).quantity == Decimal(4)


def test_rebuild_usage_summaries_refuses_an_unknown_client_id(catalog):
    with pytest.raises(CommandError, match="No customer with client id NOBODY-9"):
        run("rebuild_usage_summaries", "--customer", "NOBODY-9")
