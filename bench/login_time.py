"""Measure how long one sign-in takes with the production password hasher.

Usage: .venv/bin/python bench/login_time.py [--rounds 30]

It builds a throw-away test database, creates a staff user, then times (a) the Argon2 verify
alone and (b) a whole POST to /admin/login/ through Django's test client (form, axes checks,
session). Prints median and 95th percentile in milliseconds.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing_project.settings")
os.environ.setdefault("SECRET_KEY", "benchmark-only-secret")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import get_hasher  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args().rounds

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    from accounts.models import User

    password = "a long benchmark password"
    user = User.objects.create_user("bench@example.com", password, full_name="Bench", is_staff=True)
    hasher = get_hasher()
    print(f"hasher: {hasher.algorithm} {type(hasher).__name__} {hasher.safe_summary(user.password)}")

    verify = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert user.check_password(password)
        verify.append((time.perf_counter() - started) * 1000)

    # One client, as one server process: its middleware is built once, not per request.
    client = Client()
    login = []
    for _ in range(rounds):
        client.cookies.clear()
        started = time.perf_counter()
        response = client.post("/admin/login/", {"username": user.email, "password": password}, secure=True)
        login.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 302, response.status_code

    for name, values in (("password verify", verify), ("admin login POST", login)):
        print(
            f"{name:>18}: median {statistics.median(values):6.1f} ms, p95 {percentile(values, 0.95):6.1f} ms, "
            f"max {max(values):6.1f} ms ({rounds} rounds)"
        )
    connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


if __name__ == "__main__":
    main()
