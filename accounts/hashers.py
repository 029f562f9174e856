from django.contrib.auth.hashers import Argon2PasswordHasher


class TunedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with costs chosen so one login verifies in well under 100 ms on a 2-core server.

    bench/login_time.py measures it; docs/BENCHMARKS.md has the figure.
    """

    # OWASP's recommended Argon2id setting: 46 MiB, one pass, one lane.
    time_cost = 1
    memory_cost = 47104  # KiB
    parallelism = 1
