"""`make fuzz`: schemathesis against a freshly seeded server, as Admin, Finance and the portal user.

1. A fresh database: `<name>_fuzz` beside DATABASE_URL's on PostgreSQL (dropped at the end), or a
   SQLite file in a temporary folder without DATABASE_URL.
2. `migrate`, `seed_demo`, an API token per role and the demo's ids (tests/fuzz/prepare.py).
3. gunicorn with DEBUG off on a free port of 127.0.0.1, stopped at the end whatever happens.
4. `schemathesis run` over every operation of the schema, once per role, with every phase (examples,
   coverage, fuzzing, stateful), positive and negative data, and the checks below. Ids in paths come
   from the demo (tests/fuzz/hooks.py), so approval actions and attachments are reached.

Exits non-zero when any role's run found a failure. Each failure is printed with a curl command
that reproduces it (the token shows as [Filtered]: create one with tests/fuzz/prepare.py or in the
admin, under API tokens). Budget: FUZZ_MAX_EXAMPLES cases per operation and phase, and
FUZZ_MAX_SECONDS per role; FUZZ_ROLES picks roles (default all three), FUZZ_SEED fixes the seed.
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ROLES = ("admin", "finance", "portal")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "40"))
MAX_SECONDS = int(os.environ.get("FUZZ_MAX_SECONDS", "110"))


def say(message: str) -> None:
    print(f"== fuzz: {message}", flush=True)


def manage(*arguments: str, env: dict[str, str], **kwargs) -> None:
    subprocess.run([str(BIN / "python"), "manage.py", *arguments], env=env, cwd=ROOT, check=True, **kwargs)


class FreshDatabase:
    """A database of its own for the run, beside the one DATABASE_URL names (or SQLite without one)."""

    def __init__(self, workdir: Path):
        base = os.environ.get("DATABASE_URL", "")
        self.admin_url = None
        if base.startswith(("postgres://", "postgresql://")):
            parts = urlsplit(base)
            self.name = f"{parts.path.lstrip('/') or 'countinghouse'}_fuzz"
            self.url = urlunsplit(parts._replace(path=f"/{self.name}"))
            self.admin_url = urlunsplit(parts._replace(path="/postgres"))
        elif base:
            sys.exit(f"== fuzz: runs on PostgreSQL or SQLite, not {urlsplit(base).scheme}")
        else:
            self.name = str(workdir / "fuzz.sqlite3")
            self.url = f"sqlite:///{self.name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(sql)

    def create(self) -> None:
        if self.admin_url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.admin_url:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(base_url: str, server: subprocess.Popen, seconds: int = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("== fuzz: the server exited before it answered; see its log above")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"== fuzz: the server did not answer on {base_url} within {seconds} s")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def schemathesis(role: str, schema: Path, base_url: str, workdir: Path, env: dict[str, str]) -> int:
    token = json.loads((workdir / f"{role}.json").read_text())["token"]
    command = [
        str(BIN / "schemathesis"),
        "run",
        str(schema),
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        ",".join(CHECKS),
        "--mode",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--request-timeout",
        "30",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(workdir / f"report-{role}"),
        "--no-color",
    ]
    if os.environ.get("FUZZ_SEED"):
        command += ["--seed", os.environ["FUZZ_SEED"]]
    fuzz_env = {**env, "SCHEMATHESIS_HOOKS": str(HERE / "hooks.py"), "FUZZ_ROLE_FILE": str(workdir / f"{role}.json")}
    return subprocess.run(command, env=fuzz_env, cwd=workdir).returncode


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)  # so that `finally` stops the server and drops the database


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started = time.monotonic()
    roles = [role.strip() for role in os.environ.get("FUZZ_ROLES", ",".join(ROLES)).split(",") if role.strip()]
    unknown = set(roles) - set(ROLES)
    if unknown:
        sys.exit(f"== fuzz: unknown role(s) {', '.join(sorted(unknown))}; choose from {', '.join(ROLES)}")
    workdir = Path(tempfile.mkdtemp(prefix="countinghouse-fuzz-"))
    database = FreshDatabase(workdir)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE", "EMAIL_BACKEND", "AWS_STORAGE_BUCKET_NAME")
    }
    env.update(
        DATABASE_URL=database.url,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        MEDIA_ROOT=str(workdir / "media"),
        LOG_LEVEL="WARNING",
    )
    server = None
    server_log = workdir / "server.log"
    results: dict[str, int] = {}
    try:
        say(f"database {database.name}")
        database.create()
        manage("migrate", "--no-input", "--verbosity", "0", env=env)
        # seed_demo creates users with a known password and so refuses with DEBUG off; the server runs without it.
        manage("seed_demo", env={**env, "DEBUG": "true"}, stdout=subprocess.DEVNULL)
        subprocess.run([str(BIN / "python"), str(HERE / "prepare.py"), str(workdir)], env=env, cwd=ROOT, check=True)
        schema = workdir / "schema.yaml"
        manage("spectacular", "--validate", "--fail-on-warn", "--file", str(schema), env=env)

        say(f"server on {base_url} (gunicorn, DEBUG off); its log: {server_log}")
        with server_log.open("wb") as log:
            server = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "billing_project.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--timeout",
                    "60",
                ],
                env=env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_up(base_url, server)

        for role in roles:
            say(f"schemathesis as {role}: up to {MAX_EXAMPLES} cases per operation and phase, {MAX_SECONDS} s")
            results[role] = schemathesis(role, schema, base_url, workdir, env)
    finally:
        if server is not None:
            stop(server)
        database.drop()
    errors = server_log.read_text(errors="replace") if server_log.exists() else ""
    if "Traceback" in errors:
        say("the server logged errors:")
        print(errors[-20000:])
    failed = [role for role, code in results.items() if code != 0]
    say(f"took {time.monotonic() - started:.0f} s; " + (f"FAILED as {', '.join(failed)}" if failed else "passed"))
    if failed:
        say(f"reports (JUnit) and the server log are kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    # One line per run that CI reads: each role's run counts as one test.
    print(f"fuzz: {len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed or len(results) < len(roles) else 0


if __name__ == "__main__":
    sys.exit(main())
