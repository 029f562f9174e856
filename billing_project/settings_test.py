"""Settings for the test suite: the production settings with test-only secrets and fast hashing."""

import os

os.environ.setdefault("SECRET_KEY", "test-suite-only-not-a-secret")

from billing_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECURE_SSL_REDIRECT = False
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Suites run at once from one checkout give each its own folder (TEST_MEDIA_ROOT), as worker processes inherit it.
MEDIA_ROOT = os.environ.get("TEST_MEDIA_ROOT") or BASE_DIR / ".test-media"  # noqa: F405
WHITENOISE_USE_FINDERS = True
