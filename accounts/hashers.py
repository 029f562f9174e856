from django.contrib.auth.hashers import Argon2PasswordHasher


class TunedArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2id with costs chosen so one login verifies in well under 100 ms on a 2-core server.

    bench/login_time.py measures it; docs/BENCHMARKS.md has the figure.
    """

    time_cost = 2
    memory_cost = 65536  # KiB
    parallelism = 2
