"""Benchmark the usage import (issue 3, "Speed") against a bare COPY, on PostgreSQL and SQLite.

Usage: .venv/bin/python bench/import_usage.py [--rows 1000000] [--sqlite-rows N] [--seed 42] [--event-ids]
                                             [--customers N] [--profile OUT.prof]
                                             [--pg-url postgres://postgres@127.0.0.1:5432/postgres]
                                             [--skip-postgres] [--skip-sqlite] [--skip-floor] [--timeout 900]

In one run it:
1. writes a usage file with bench/generate_usage.py (demo catalog, one month, fixed seed);
   with --customers N, the catalog is instead the large one of bench/month_end.py (its build_catalog:
   8 services, N customers with 2 to 6 services each, about 20 % of the pairs changing price on the
   16th of the month, so 56,001 agreements for 10,000 customers), built in a child process right after
   `migrate` in each database, and the file is that benchmark's (its write_usage: long-tail customer
   weights over all N customers, each record one of its customer's services, times in order);
2. PostgreSQL: creates a fresh database bench_usage_<pid>, migrates it and seeds the demo catalog
   (`manage.py seed_demo`; or the large catalog), then times
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
whatever happens. The 1-minute load average is printed at the start and at the end (2 cores: other
work on the machine shows in the figures). With --profile OUT.prof the PostgreSQL import child runs under
cProfile (slower: its figures are not the benchmark's) and writes its statistics to OUT.prof.
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


def prepare_large(database_url: str, timeout: float, *, customers: int, seed: int) -> dict:
    """Migrate, then build bench/month_end.py's catalog of `customers` customers in a child process."""
    env = django_env(database_url)
    run_child([PYTHON, "manage.py", "migrate", "-v0"], env=env, timeout=timeout)
    child = [PYTHON, str(Path(__file__).resolve()), "--build-catalog", "--customers", str(customers)]
    run_child([*child, "--seed", str(seed)], env=env, timeout=timeout)
    return env


def build_large_catalog(*, customers: int, seed: int, usage_path: Path | None, rows: int, month: str) -> None:
    """In a child process (DATABASE_URL set): bench/month_end.py's catalog, and its usage file when asked."""
    from datetime import date

    sys.path.insert(0, str(ROOT / "bench"))
    from common import setup_django
    from month_end import build_catalog, write_usage

    setup_django(os.environ["DATABASE_URL"])
    priced = build_catalog(customers=customers, seed=seed)
    if usage_path is not None:
        year, number = (int(part) for part in month.split("-"))
        write_usage(usage_path, priced=priced, rows=rows, period=date(year, number, 1), seed=seed)


def timed_import(path: Path, env: dict, timeout: float, *, profile: Path | None = None) -> dict:
    command = [PYTHON, "manage.py", "import_usage", str(path)]
    if profile is not None:
        command[1:1] = ["-m", "cProfile", "-o", str(profile)]
    wall, peak_kib, output = run_child(command, env=env, timeout=timeout)
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


def prepare_database(args, url: str) -> dict:
    if args.customers:
        return prepare_large(url, args.timeout, customers=args.customers, seed=args.seed)
    return prepare(url, args.timeout)


def write_file(args, path: Path, rows: int) -> None:
    """The usage file: for the demo catalog (bench/generate_usage.py), or for the large one."""
    if not args.customers:
        sys.path.insert(0, str(ROOT / "bench"))
        from generate_usage import main as generate

        extra = ["--event-ids"] if args.event_ids else []
        generate([str(path), "--rows", str(rows), "--seed", str(args.seed), *extra])
        return
    # The file names the large catalog's customers and services: write it from a throw-away SQLite catalog.
    database = Path(tempfile.gettempdir()) / f"bench_usage_{os.getpid()}_catalog.sqlite3"
    try:
        env = django_env(f"sqlite:///{database}")
        run_child([PYTHON, "manage.py", "migrate", "-v0"], env=env, timeout=args.timeout)
        child = [PYTHON, str(Path(__file__).resolve()), "--build-catalog", "--customers", str(args.customers)]
        child += ["--seed", str(args.seed), "--write", str(path), "--rows", str(rows)]
        run_child(child, env=env, timeout=args.timeout)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)


def bench_postgres(args, path: Path, results: list) -> None:
    name = f"bench_usage_{os.getpid()}"
    admin = psycopg.connect(args.pg_url, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    url = args.pg_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        env = prepare_database(args, url)
        copy_s = bare_copy(url, path)
        results.append(("PostgreSQL", "(a) bare COPY into an unindexed table", args.rows, copy_s, None, ""))
        figures = timed_import(path, env, args.timeout, profile=args.profile)
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
        env = prepare_database(args, f"sqlite:///{database}")
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
    parser.add_argument(
        "--customers",
        type=int,
        default=0,
        help="build bench/month_end.py's catalog with this many customers instead of the demo one (12)",
    )
    parser.add_argument("--profile", type=Path, help="run the PostgreSQL import under cProfile, statistics to a file")
    parser.add_argument("--build-catalog", action="store_true", help=argparse.SUPPRESS)  # the child's work
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.event_ids and args.customers:
        parser.error("--event-ids is for the demo catalog's files only")
    if args.build_catalog:
        build_large_catalog(
            customers=args.customers, seed=args.seed, usage_path=args.write, rows=args.rows, month="2026-10"
        )
        return

    load_before = f"{os.getloadavg()[0]:.2f}"
    print(f"load average (1 min) at the start: {load_before}", flush=True)
    results: list[tuple] = []
    files = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench_usage_") as workdir:
            started = time.perf_counter()
            for rows in sorted({args.rows, args.sqlite_rows or args.rows}):
                path = Path(workdir) / f"usage-{rows}.csv"
                write_file(args, path, rows)
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
        catalog = f"{args.customers:,} customers (bench/month_end.py's catalog)" if args.customers else "demo (12)"
        print(
            f"(catalog: {catalog}; this process: peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
            f" MiB; cores: {os.cpu_count()}; load average (1 min) {load_before} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end)"
        )


if __name__ == "__main__":
    main()
