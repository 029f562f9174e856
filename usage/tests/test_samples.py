import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from usage.models import MonthlySummary, Upload, UsageRecord
from usage.services import usage_import_file

# Copies of ../shared/samples, kept with the tests so that any clone runs them.
SAMPLES = Path(__file__).resolve().parent / "data" / "samples"
AFTER_THE_SAMPLES = datetime(2026, 12, 1, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO())


def import_sample(name: str) -> Upload:
    with (SAMPLES / name).open("rb") as stream:
        return usage_import_file(actor=None, stream=stream, name=name, keep_file=False, received_at=AFTER_THE_SAMPLES)


def test_the_october_sample_imports_whole(demo):
    upload = import_sample("usage-2026-10.csv")
    assert (upload.status, upload.row_count, upload.error_count) == (Upload.Status.IMPORTED, 500, 0)
    assert UsageRecord.objects.filter(upload=upload).count() == 500
    # The demo's own usage is September's; the sample's is October's.
    assert sum(s.record_count for s in MonthlySummary.objects.filter(period__gte="2026-10-01")) == 500


def test_the_semicolon_sample_imports_whole_and_its_first_row_is_october(demo):
    upload = import_sample("usage-2026-11-semicolon.csv")
    assert upload.status == Upload.Status.IMPORTED, upload.errors
    first = UsageRecord.objects.get(event_id="evt-00000")
    assert first.service_time == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)
    assert first.period.isoformat() == "2026-10-01"


def test_the_bad_sample_imports_nothing_and_names_rows_3_to_8(demo):
    upload = import_sample("usage-bad.csv")
    assert upload.status == Upload.Status.FAILED
    assert [(error["row"], error["column"]) for error in upload.errors] == [
        (3, "serviceName"),
        (4, "clientId"),
        (5, "quantity"),
        (6, "serviceTime"),
        (7, "quantity"),
        (8, "serviceTime"),
    ]
    assert not UsageRecord.objects.filter(upload=upload).exists()
    assert not MonthlySummary.objects.filter(period__gte="2026-10-01").exists()
