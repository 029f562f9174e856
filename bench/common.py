"""Helpers shared by the in-process benchmarks (web_upload, month_report, import_export_compare, and the
ledger's month_end, pdf_rate and payment_rate).

`fresh_database` makes a throw-away database the way bench/import_usage.py does (a PostgreSQL database
`bench_usage_<pid>` or a SQLite file under /tmp, migrated and seeded with `manage.py seed_demo` in
child processes; with `seed=False` migrated only) and always removes it; `setup_django` then points this
process at it. `time_limit` stops in-process work that runs too long; `QueryCounter` counts the SQL
statements this process sends.
"""

import contextlib
import io
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from generate_usage import generate  # noqa: E402
from import_usage import django_env, prepare, run_child  # noqa: E402

PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def _close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.conf import settings

        if settings.configured:
            from django.db import connections

            connections.close_all()


def migrate_only(database_url: str, timeout: float) -> dict:
    env = django_env(database_url)
    run_child([sys.executable, "manage.py", "migrate", "-v0"], env=env, timeout=timeout)
    return env


@contextlib.contextmanager
def fresh_database(kind: str, *, pg_url: str = PG_URL, timeout: float = 600, seed: bool = True, prefix: str = ""):
    """Yield the URL of a new migrated (and, unless seed=False, seeded) database; drop it afterwards. Its name is
    `prefix` (default bench_usage_) and the process id."""
    name = f"{prefix or 'bench_usage_'}{os.getpid()}"
    prepare_database = prepare if seed else migrate_only
    if kind == "postgres":
        admin = psycopg.connect(pg_url, autocommit=True)
        admin.execute(f"CREATE DATABASE {name}")
        url = pg_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            prepare_database(url, timeout)
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
            prepare_database(f"sqlite:///{database}", timeout)
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


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raise TimeoutError in this (main) thread if the block runs longer than `seconds`."""

    def expired(signum, frame):
        raise TimeoutError(f"{what} took more than {seconds:.0f} s; stopped")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class QueryCounter:
    """Count the statements Django sends on one connection (an execute_wrapper: no SQL is kept or formatted).

    `total` counts calls to execute() and executemany() alike; `by_kind` splits them by first keyword
    (SELECT, INSERT, UPDATE, SAVEPOINT, ...) and `by_table` by the first table named after FROM/INTO/UPDATE;
    `seconds` (and `seconds_by_table`) is the time spent inside those calls: sending, the server's work
    and receiving the result (psycopg turns the rows into Python values later, when they are fetched).
    BEGIN and COMMIT do not pass through execute(), so they are neither counted nor timed.
    """

    def __init__(self, connection) -> None:
        self.connection = connection
        self.total = 0
        self.seconds = 0.0
        self.by_kind: Counter = Counter()
        self.by_table: Counter = Counter()
        self.seconds_by_table: Counter = Counter()
        self._context = None

    def __call__(self, execute, sql, params, many, context):
        words = sql.lstrip().split(None, 1)
        kind = words[0].upper() if words else "?"
        key = f"{kind} {_first_table(sql)}"
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.total += 1
            self.seconds += elapsed
            self.by_kind[kind] += 1
            self.by_table[key] += 1
            self.seconds_by_table[key] += elapsed

    def __enter__(self) -> "QueryCounter":
        self._context = self.connection.execute_wrapper(self)
        self._context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._context.__exit__(*exc)


def _first_table(sql: str) -> str:
    upper = sql.upper()
    kind = upper.lstrip()[:6]
    keyword = {"INSERT": " INTO ", "UPDATE": "UPDATE "}.get(kind, " FROM ")
    position = upper.find(keyword)
    if position < 0:
        return ""
    rest = sql[position + len(keyword) :].split(None, 1)
    return rest[0].strip('"(') if rest else ""


def load_average() -> str:
    """The 1-minute load average, to tell a quiet machine (2 cores) from a busy one in the output."""
    return f"{os.getloadavg()[0]:.2f}"
