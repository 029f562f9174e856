"""Time a 1,000-row usage upload through the admin upload page, end to end (issue 3, "Speed").

Usage: .venv/bin/python bench/web_upload.py [--rows 1000] [--runs 20] [--postgres] [--follow]

On a fresh database (a SQLite file under /tmp, or with --postgres a PostgreSQL database
bench_usage_<pid>; migrated and seeded with the demo catalog, removed at the end) it signs in a
Finance user and POSTs --runs different generated files (one seed each, since duplicate content is
refused) as multipart to /admin/usage/upload/new/ through one Django test client, as one server
process would serve them, DEBUG off. It times the POST (form, upload saved to MEDIA_ROOT, parse,
validate, store, summaries, redirect); --follow also times the result page it redirects to.
"""

import argparse
import tempfile
import time

from common import fresh_database, setup_django, summary, usage_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--follow", action="store_true", help="also time the GET of the result page")
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory(prefix="bench_media_") as media,
        fresh_database("postgres" if args.postgres else "sqlite") as url,
    ):
        setup_django(url, media)
        from django.conf import settings
        from django.contrib.auth.models import Group
        from django.core.files.uploadedfile import SimpleUploadedFile
        from django.test import Client
        from django.test.utils import setup_test_environment

        from accounts.models import User
        from usage.models import Upload, UsageRecord

        setup_test_environment()
        settings.ALLOWED_HOSTS = ["testserver"]
        user = User.objects.create_user("bench-finance@example.com", None, full_name="Bench", is_staff=True)
        user.groups.set(Group.objects.filter(name="Finance"))
        client = Client()
        client.force_login(user)
        files = [usage_csv(rows=args.rows, seed=1000 + run) for run in range(args.runs + 1)]
        # One warm-up request first (URL resolver, templates, first connection), not counted.
        posts, gets = [], []
        for run, content in enumerate(files):
            upload = SimpleUploadedFile(f"usage-{run}.csv", content, content_type="text/csv")
            started = time.perf_counter()
            response = client.post("/admin/usage/upload/new/", {"file": upload}, secure=True)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 302, (response.status_code, response.content[:2000])
            if args.follow:
                started = time.perf_counter()
                page = client.get(response["Location"], secure=True)
                get_elapsed = (time.perf_counter() - started) * 1000
                assert page.status_code == 200, page.status_code
            if run:
                posts.append(elapsed)
                if args.follow:
                    gets.append(get_elapsed)
            else:
                print(f"warm-up POST {elapsed:.1f} ms (not counted)")
        statuses = set(Upload.objects.values_list("status", flat=True))
        records = UsageRecord.objects.count()
        print(f"database: {url.split(':', 1)[0]}; uploads {statuses}; records {records:,}")
        print(f"upload POST ({args.rows:,} rows): {summary(posts)}")
        if args.follow:
            print(f"result page GET: {summary(gets)}")
            both = [p + g for p, g in zip(posts, gets, strict=True)]
            print(f"POST + result page: {summary(both)}")


if __name__ == "__main__":
    main()
