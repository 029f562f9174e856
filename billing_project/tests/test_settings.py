import os
import subprocess
import sys
from pathlib import Path

from billing_project import settings

PROJECT_DIR = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DEBUG", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = run_manage("check")
    assert result.returncode == 1
    assert result.stderr.strip() == "Countinghouse refuses to start: SECRET_KEY must be set when DEBUG is off."


def test_starts_without_secret_key_in_debug():
    result = run_manage("check", DEBUG="true")
    assert result.returncode == 0, result.stderr


def test_deploy_check_is_clean_with_production_settings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="a-production-secret-" + "x" * 50,
        ALLOWED_HOSTS="billing.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_security_settings():
    assert settings.PASSWORD_HASHERS[0] == "accounts.hashers.TunedArgon2PasswordHasher"
    assert settings.SESSION_COOKIE_AGE == 7 * 24 * 60 * 60
    assert settings.SESSION_STAFF_IDLE_TIMEOUT.total_seconds() == 8 * 60 * 60
    assert "accounts.sessions.SessionLifetimeMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 10 * 1024 * 1024
    assert settings.AXES_FAILURE_LIMIT == 5


def celery_mode(redis_url: str) -> list[str]:
    """CELERY_TASK_ALWAYS_EAGER and the broker URL as a fresh process reads them with this REDIS_URL."""
    probe = "from django.conf import settings as s; print(s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL)"
    return run_manage("shell", "-c", probe, DEBUG="true", REDIS_URL=redis_url).stdout.split()[-2:]


def test_celery_runs_eagerly_without_a_broker_and_on_redis_with_one():
    assert celery_mode("") == ["True", "memory://"]
    assert celery_mode("redis://127.0.0.1:6379/15") == ["False", "redis://127.0.0.1:6379/15"]
