"""Benchmark the usage import (issue 3, "Speed") against a bare COPY, on PostgreSQL and SQLite.

Usage: .venv/bin/python bench/import_usage.py [--rows 1000000] [--sqlite-rows N] [--seed 42] [--event-ids]
                                             [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
                                             [--skip-postgres] [--skip-sqlite] [--timeout 900]

In one run it:
1. writes a usage file with bench/generate_usage.py (demo catalog, one month, fixed seed);
2. PostgreSQL: creates a fresh database bench_usage_<pid>, migrates it and seeds the demo catalog
   (`manage.py seed_demo`), then times
   (a) a bare `COPY ... FROM STDIN (FORMAT csv, HEADER)` of the same file, streamed from this process,
       into an unindexed plain table (serviceName text, clientId text, quantity numeric,
       serviceTime timestamptz);
   (b) `manage.py import_usage FILE` in a child process (parse, validate, store, summaries): the wall
       time of the whole command and the import's own duration as the command prints it, and the
       child's peak memory (ru_maxrss from wait4);
   (e) the store floor: a COPY of the very records (b) wrote, already checked and formatted, into
       `usage_usagerecord` with its indexes and foreign keys checked, rolled back: what PostgreSQL
       alone needs, whatever Python does;
3. SQLite: the same migrate, seed and import into a file under /tmp.
Every child runs under --timeout seconds; the databases and files it made are removed at the end,
whatever happens.
"""

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
IMPORTED = re.compile(r"imported ([\d,]+) rows in ([\d.]+) s")


class ChildFailed(Exception):
    pass


def run_child(args: list[str], *, env: dict, timeout: float) -> tuple[float, int, str]:
    """Run a command; return its wall time in seconds, its peak RSS in KiB and its standard output."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                os.wait4(child.pid, 0)
                child.returncode = -9
                raise ChildFailed(f"{' '.join(args[1:3])} took more than {timeout:.0f} s; stopped")
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode:
            raise ChildFailed(f"{' '.join(args[1:3])} exited {child.returncode}: {err.read()[-2000:]}")
        return elapsed, usage.ru_maxrss, out.read()


def django_env(database_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="billing_project.settings",
        LOG_LEVEL="WARNING",
        SECRET_KEY=os.environ.get("SECRET_KEY", "benchmark-only-secret"),
    )
    env.pop("DEBUG", None)  # measured as in production, DEBUG off
    return env


def prepare(database_url: str, timeout: float) -> dict:
    env = django_env(database_url)
    run_child([PYTHON, "manage.py", "migrate", "-v0"], env=env, timeout=timeout)
    run_child([PYTHON, "manage.py", "seed_demo"], env={**env, "DEBUG": "1"}, timeout=timeout)
    return env


def timed_import(path: Path, env: dict, timeout: float) -> dict:
    wall, peak_kib, output = run_child([PYTHON, "manage.py", "import_usage", str(path)], env=env, timeout=timeout)
    match = IMPORTED.search(output)
    if not match:
        raise ChildFailed(f"import_usage did not import the file: {output[-2000:]}")
    return {
        "rows": int(match[1].replace(",", "")),
        "import_s": float(match[2]),
        "wall_s": wall,
        "peak_mib": peak_kib / 1024,
    }


def bare_copy(url: str, path: Path) -> float:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_bare_copy (servicename text, clientid text, quantity numeric, servicetime timestamptz)"
            if b"eventId" not in path.open("rb").readline()
            else "CREATE TABLE bench_bare_copy (eventid text, servicename text, clientid text, quantity numeric,"
            " servicetime timestamptz)"
        )
        started = time.perf_counter()
        copy_sql = "COPY bench_bare_copy FROM STDIN (FORMAT csv, HEADER)"
        with conn.transaction(), conn.cursor().copy(copy_sql) as copy, path.open("rb") as stream:
            while chunk := stream.read(1024 * 1024):
                copy.write(chunk)
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_bare_copy")
    return elapsed


def store_floor(url: str) -> float:
    """COPY the imported records back into usage_usagerecord (indexes, checks, FK checks), then roll back."""
    columns = (
        "customer_id, service_id, price_agreement_id, quantity, service_time, period, unit_price, currency,"
        " upload_id, event_id"
    )
    with psycopg.connect(url) as conn:
        dump = bytearray()
        with conn.cursor().copy(f"COPY (SELECT {columns} FROM usage_usagerecord) TO STDOUT") as copy:
            for block in copy:
                dump += block
        conn.execute("TRUNCATE usage_monthlysummary, usage_usagerecord")
        conn.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the foreign keys are checked inside the timing
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY usage_usagerecord ({columns}) FROM STDIN") as copy:
            view = memoryview(dump)
            for offset in range(0, len(view), 1024 * 1024):
                copy.write(view[offset : offset + 1024 * 1024])
        elapsed = time.perf_counter() - started
        conn.rollback()
    return elapsed


def bench_postgres(args, path: Path, results: list) -> None:
    name = f"bench_usage_{os.getpid()}"
    admin = psycopg.connect(args.pg_url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        env = prepare(url, args.timeout)
        copy_s = bare_copy(url, path)
        results.append(("PostgreSQL", "(a) bare COPY into an unindexed table", args.rows, copy_s, None, ""))
        figures = timed_import(path, env, args.timeout)
        note = f"{figures['import_s'] / copy_s:.1f}x the bare COPY; whole command {figures['wall_s']:.1f} s"
        results.append(
            (
                "PostgreSQL",
                "(b) manage.py import_usage",
                figures["rows"],
                figures["import_s"],
                figures["peak_mib"],
                note,
            )
        )
        if not args.skip_floor:
            floor_s = store_floor(url)
            results.append(
                (
                    "PostgreSQL",
                    "(e) store floor: COPY of checked records",
                    args.rows,
                    floor_s,
                    None,
                    f"{floor_s / copy_s:.1f}x the bare COPY",
                )
            )
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def bench_sqlite(args, path: Path, results: list) -> None:
    database = Path(tempfile.gettempdir()) / f"bench_usage_{os.getpid()}.sqlite3"
    try:
        env = prepare(f"sqlite:///{database}", args.timeout)
        figures = timed_import(path, env, args.timeout)
        note = f"whole command {figures['wall_s']:.1f} s"
        results.append(
            ("SQLite", "(d) manage.py import_usage", figures["rows"], figures["import_s"], figures["peak_mib"], note)
        )
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sqlite-rows", type=int, help="rows for SQLite (default: --rows)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--event-ids", action="store_true", help="files with a unique eventId column")
    parser.add_argument(
        "--pg-url",
        default="postgres://postgres@127.0.0.1:5432/postgres",
        help="a database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-floor", action="store_true", help="do not measure the store floor (e)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to each child process")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "bench"))
    from generate_usage import main as generate

    results: list[tuple] = []
    files = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench_usage_") as workdir:
            started = time.perf_counter()
            for rows in sorted({args.rows, args.sqlite_rows or args.rows}):
                path = Path(workdir) / f"usage-{rows}.csv"
                extra = ["--event-ids"] if args.event_ids else []
                generate([str(path), "--rows", str(rows), "--seed", str(args.seed), *extra])
                files.append(path)
            sizes = ", ".join(f"{p.name} ({p.stat().st_size / 1e6:.1f} MB)" for p in files)
            print(f"generated {sizes} in {time.perf_counter() - started:.1f} s")
            if not args.skip_postgres:
                bench_postgres(args, Path(workdir) / f"usage-{args.rows}.csv", results)
            if not args.skip_sqlite:
                bench_sqlite(args, Path(workdir) / f"usage-{args.sqlite_rows or args.rows}.csv", results)
    finally:
        print()
        print(f"{'database':<11}| {'what':<42}| {'rows':>9} | {'seconds':>7} | {'rows/s':>9} | {'peak MiB':>8} | note")
        print("-" * 120)
        for database, what, rows, seconds, peak, note in results:
            peak_text = f"{peak:8.0f}" if peak is not None else " " * 8
            print(
                f"{database:<11}| {what:<42}| {rows:>9,} | {seconds:7.2f} | {rows / seconds:>9,.0f} | "
                f"{peak_text} | {note}"
            )
        print(
            f"(this process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; "
            f"cores: {os.cpu_count()})"
        )


if __name__ == "__main__":
    main()
