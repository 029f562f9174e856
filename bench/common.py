"""Helpers shared by the in-process usage benchmarks (web_upload, month_report, import_export_compare).

`fresh_database` makes a throw-away database the way bench/import_usage.py does (a PostgreSQL database
`bench_usage_<pid>` or a SQLite file under /tmp, migrated and seeded with `manage.py seed_demo` in
child processes) and always removes it; `setup_django` then points this process at it.
"""

import contextlib
import io
import os
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate_usage import generate  # noqa: E402
from import_usage import prepare  # noqa: E402

PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def _close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()


@contextlib.contextmanager
def fresh_database(kind: str, *, pg_url: str = PG_URL, timeout: float = 600):
    """Yield the URL of a new migrated and seeded database; drop it afterwards, whatever happens."""
    name = f"bench_usage_{os.getpid()}"
    if kind == "postgres":
        admin = psycopg.connect(pg_url, autocommit=True)
        admin.execute(f"CREATE DATABASE {name}")
        url = pg_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            prepare(url, timeout)
            yield url
        finally:
            try:
                _close_django_connections()
            finally:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.close()
    else:
        database = Path(tempfile.gettempdir()) / f"{name}.sqlite3"
        try:
            prepare(f"sqlite:///{database}", timeout)
            yield f"sqlite:///{database}"
        finally:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)


def setup_django(database_url: str, media_root: str | None = None) -> None:
    """Configure this process for the benchmark database, DEBUG off as in production."""
    os.environ.pop("DEBUG", None)
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "billing_project.settings"
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["SECURE_SSL_REDIRECT"] = "false"
    if media_root:
        os.environ["MEDIA_ROOT"] = media_root
    import django

    django.setup()


def usage_csv(*, rows: int, month: str = "2026-10", seed: int = 42, event_ids: bool = False) -> bytes:
    out = io.StringIO()
    generate(out, rows=rows, month=month, seed=seed, event_ids=event_ids)
    return out.getvalue().encode()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.1f} ms, p95 {percentile(values, 0.95):7.1f} ms, "
        f"min {min(values):7.1f} ms, max {max(values):7.1f} ms ({len(values)} runs)"
    )
