"""Countinghouse settings, read from the environment (see README, "Configuration")."""

import os
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF, UNSAFE_EVAL, UNSAFE_INLINE
from django.urls import reverse_lazy

from billing_project import money, seller

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        sys.exit("Countinghouse refuses to start: SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-used-only-with-debug-on"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "unfold.apps.BasicAppConfig",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "unfold.contrib.inlines",
    "unfold.contrib.import_export",
    "unfold.contrib.simple_history",
    "billing_project.admin_site.CountinghouseAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "import_export",
    "simple_history",
    "axes",
    "csp",
    "guardian",
    "django_countries",
    "accounts",
    "catalog",
    "usage",
    "approvals",
    "ledger",
    "orders",
    "reports",
    "fixtures",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "billing_project.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.sessions.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, so that it sees the outcome of every authentication attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billing_project.urls"
WSGI_APPLICATION = "billing_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["billing_project.templatetags.money"],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'countinghouse.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: the back-office's reads are short, and PostgreSQL compiles any statement it costs above 100,000 (a
    # scoped customer list, an IN list of a CSM's customers) for 10-15 ms, more than the statement itself takes.
    database_options = DATABASES["default"].setdefault("OPTIONS", {})
    database_options["options"] = f"{database_options.get('options', '')} -c jit=off".strip()
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# Argon2 first, with costs tuned so that one login stays under 100 ms here
# (docs/BENCHMARKS.md); older hashes are upgraded on the next login.
PASSWORD_HASHERS = [
    "accounts.hashers.TunedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Grants on single orders and customers (a shared order, a deputy CSM): orders.selectors, catalog.selectors.
    "guardian.backends.ObjectPermissionBackend",
]
# Nobody signed out holds a grant: no anonymous user row.
ANONYMOUS_USER_NAME = None
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
LOGOUT_REDIRECT_URL = "portal:login"

# Lock an account for an address after repeated failures.
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_FORM_FIELD = "username"
# Count failures by the email as sign-in looks it up, whatever its case or surrounding spaces.
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"

# A session ends this long after sign-in whatever the activity (accounts/sessions.py), and a staff user's
# after this long without a request (0 turns the idle timeout off); portal users have only the lifetime.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_LIFETIME_DAYS", "7")) * 24 * 60 * 60
SESSION_STAFF_IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("STAFF_SESSION_IDLE_MINUTES", str(8 * 60))))
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy: files from this origin only, inline code only with the response's nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# The admin's pages (billing_project/csp.py) allow two things more: django-unfold's Alpine.js evaluates the
# expressions written in its templates' attributes ('unsafe-eval'), and its templates carry inline styles.
CONTENT_SECURITY_POLICY_ADMIN_DIRECTIVES = CONTENT_SECURITY_POLICY["DIRECTIVES"] | {
    "script-src": [SELF, NONCE, UNSAFE_EVAL],
    "style-src": [SELF, UNSAFE_INLINE],
}
if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 60 * 60)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Explicit request limits; file uploads have their own limits where they are accepted.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000
DATA_UPLOAD_MAX_NUMBER_FILES = 20

LANGUAGE_CODE = "en"
USE_I18N = True
USE_TZ = True
# Billing months are calendar months in this zone (docs/DESIGN.md, "Money, time and numbers"); pages show times in it.
BILLING_TIME_ZONE = os.environ.get("BILLING_TIME_ZONE", "UTC")
TIME_ZONE = BILLING_TIME_ZONE
# One date and date-time format (billing_project/formats/en/formats.py) and one number locale for Babel
# (billing_project/formatting.py).
FORMAT_MODULE_PATH = ["billing_project.formats"]
NUMBER_LOCALE = os.environ.get("NUMBER_LOCALE", "en")
# The largest single amount and quantity accepted; why balances cannot overflow is in billing_project/money.py.
try:
    MAX_AMOUNT = money.round_amount(
        money.parse_bound(
            "MAX_AMOUNT",
            os.environ.get("MAX_AMOUNT", money.DEFAULT_MAX_AMOUNT),
            places=money.AMOUNT_DECIMAL_PLACES,
            column_max=money.AMOUNT_COLUMN_MAX,
        )
    )
    MAX_QUANTITY = money.parse_bound(
        "MAX_QUANTITY",
        os.environ.get("MAX_QUANTITY", money.DEFAULT_MAX_QUANTITY),
        places=money.QUANTITY_DECIMAL_PLACES,
        column_max=money.QUANTITY_COLUMN_MAX,
    )
except ValueError as error:
    sys.exit(f"Countinghouse refuses to start: {error}")
# Largest usage file the admin upload page accepts; manage.py import_usage has no limit.
USAGE_UPLOAD_MAX_BYTES = int(os.environ.get("USAGE_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
# Largest order document or comment attachment; a document type may set a smaller limit.
MAX_DOCUMENT_BYTES = int(os.environ.get("MAX_DOCUMENT_BYTES", str(10 * 1024 * 1024)))

STATIC_URL = "static/"
# In development and tests static files come straight from the apps; production serves collectstatic's output.
WHITENOISE_USE_FINDERS = DEBUG
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
# Uploaded usage files and invoice PDFs: the file system, or an S3-compatible bucket when one is named
# (AWS_STORAGE_BUCKET_NAME, with AWS_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY).
AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
AWS_S3_ENDPOINT_URL = os.environ.get("AWS_S3_ENDPOINT_URL") or None
AWS_DEFAULT_ACL = None
AWS_QUERYSTRING_AUTH = True
STORAGES = {
    "default": {
        "BACKEND": "storages.backends.s3.S3Storage"
        if AWS_STORAGE_BUCKET_NAME
        else "django.core.files.storage.FileSystemStorage"
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "billing@countinghouse.localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where links in emails point: the address people open the back-office at, without a trailing slash.
SITE_URL = os.environ.get("SITE_URL", "http://localhost:8000").rstrip("/")
# Who hears of ledger reconciliation differences besides the Admin role: "Name <a@b>,..." or plain addresses.
ADMINS = [("", address.strip()) for address in env_list("ADMINS")]

# The seller on invoices, credit notes and e-invoices (billing_project/seller.py); refused at start when incomplete.
SELLER = seller.seller_from_environment(DEFAULT_FROM_EMAIL)
if problems := seller.seller_problems(SELLER):
    sys.exit(f"Countinghouse refuses to start: {'; '.join(problems)}.")
# The account partners' payouts leave from: the debtor of the SEPA credit-transfer file (orders.services.payouts).
PAYOUT_ACCOUNT = {
    "name": os.environ.get("PAYOUT_ACCOUNT_NAME", SELLER["name"]),
    "iban": os.environ.get("PAYOUT_ACCOUNT_IBAN", "DE89370400440532013000"),
    "bic": os.environ.get("PAYOUT_ACCOUNT_BIC", "COBADEFFXXX"),
}

# Celery: with no REDIS_URL, tasks run eagerly in the calling process.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = BILLING_TIME_ZONE
CELERY_ENABLE_UTC = True
# The month-end task fans out one task per batch of this many customers.
MONTH_END_CUSTOMERS_PER_TASK = int(os.environ.get("MONTH_END_CUSTOMERS_PER_TASK", "100"))
# A running billing run with no progress for this long shows as stalled and may be marked as failed.
BILLING_RUN_STALLED_AFTER_MINUTES = int(os.environ.get("BILLING_RUN_STALLED_AFTER_MINUTES", "30"))
# Exports (reports.services.exports): a report or list of more rows than EXPORT_BACKGROUND_ROWS is written by a
# Celery task into the default storage, its progress saved every EXPORT_PROGRESS_ROWS rows; an export with no
# progress for EXPORT_STALLED_AFTER_MINUTES may be taken over by a redelivered task; files go after EXPORT_KEEP_DAYS.
EXPORT_BACKGROUND_ROWS = int(os.environ.get("EXPORT_BACKGROUND_ROWS", "100000"))
EXPORT_PROGRESS_ROWS = int(os.environ.get("EXPORT_PROGRESS_ROWS", "10000"))
EXPORT_STALLED_AFTER_MINUTES = int(os.environ.get("EXPORT_STALLED_AFTER_MINUTES", "30"))
EXPORT_KEEP_DAYS = int(os.environ.get("EXPORT_KEEP_DAYS", "7"))
# Times are in BILLING_TIME_ZONE (CELERY_TIMEZONE).
CELERY_BEAT_SCHEDULE = {
    "month-end": {"task": "ledger.tasks.month_end_task", "schedule": crontab(minute=0, hour=6, day_of_month=1)},
    "mark-overdue": {"task": "ledger.tasks.mark_overdue_task", "schedule": crontab(minute=0, hour=9)},
    "payment-reminders": {"task": "ledger.tasks.send_reminders_task", "schedule": crontab(minute=0, hour=9)},
    "store-missing-documents": {
        "task": "ledger.tasks.store_missing_documents_task",
        "schedule": crontab(minute="*/15"),
    },
    "reconcile-ledger": {
        "task": "ledger.tasks.reconcile_ledger_task",
        "schedule": crontab(minute=0, hour=2, day_of_week="sunday"),
    },
    "task-digest": {"task": "orders.tasks.send_task_digest_task", "schedule": crontab(minute=0, hour=8)},
    "expired-exports": {"task": "reports.tasks.exports_delete_expired_task", "schedule": crontab(minute=30, hour=3)},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three, checking the body whole: malformed is a 400, never a 500 or an empty body.
    "DEFAULT_PARSER_CLASSES": [
        "billing_project.api_parsers.JSONParser",
        "billing_project.api_parsers.FormParser",
        "billing_project.api_parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "billing_project.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "billing_project.api_schema.ApiAutoSchema",
    "EXCEPTION_HANDLER": "billing_project.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Countinghouse API",
    "DESCRIPTION": "Customers, catalog and prices of the Countinghouse billing back-office.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # A customer's currency and a partner's payout currency are one choice set: one enum in the schema.
    "ENUM_NAME_OVERRIDES": {
        "CurrencyEnum": "billing_project.money.CURRENCY_CHOICES",
        "CountryEnum": "catalog.serializers.COUNTRY_CHOICES",
        "PayoutBatchStatusEnum": "orders.models.PayoutBatch.Status",
    },
}

IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "add"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "view"


def can_view(permission: str):
    """Sidebar entries show only what the user may open."""
    return lambda request: request.user.has_perm(permission)


UNFOLD = {
    "SITE_TITLE": "Countinghouse",
    "SITE_HEADER": "Countinghouse",
    "SITE_SUBHEADER": "Billing back-office",
    "SITE_SYMBOL": "account_balance",
    "SITE_URL": "/portal/",
    "SHOW_HISTORY": True,
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "reports.dashboard.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": [
            {
                "title": "Overview",
                "items": [
                    {"title": "Dashboard", "icon": "dashboard", "link": reverse_lazy("admin:index")},
                    {
                        "title": "Audit log",
                        "icon": "manage_search",
                        "link": reverse_lazy("admin:audit_log"),
                        "permission": can_view("reports.view_audit_log"),
                    },
                    {
                        "title": "Partner revenue",
                        "icon": "query_stats",
                        "link": reverse_lazy("admin:partner_revenue"),
                        "permission": can_view("reports.view_partner_revenue"),
                    },
                ],
            },
            {
                "title": "Reports",
                "items": [
                    {
                        "title": title,
                        "icon": icon,
                        "link": reverse_lazy(f"admin:report_{name.replace('-', '_')}"),
                        "permission": can_view(permission),
                    }
                    for name, title, icon, permission in [
                        ("aged-receivables", "Aged receivables", "hourglass_bottom", "reports.view_aged_receivables"),
                        ("invoice-register", "Invoice register", "receipt_long", "reports.view_invoice_register"),
                        ("payments-register", "Payments register", "payments", "reports.view_payments_register"),
                        ("revenue", "Revenue by month and service", "bar_chart", "reports.view_revenue_by_service"),
                        ("tax", "Tax report", "account_balance", "reports.view_tax_report"),
                    ]
                ]
                + [
                    {
                        "title": "My exports",
                        "icon": "download",
                        "link": reverse_lazy("admin:reports_export_changelist"),
                        "permission": lambda request: request.user.is_staff,
                    }
                ],
            },
            {
                "title": "Customers",
                "collapsible": False,
                "items": [
                    {
                        "title": "Customers",
                        "icon": "apartment",
                        "link": reverse_lazy("admin:catalog_customer_changelist"),
                        "permission": can_view("catalog.view_customer"),
                    },
                    {
                        "title": "Partners",
                        "icon": "handshake",
                        "link": reverse_lazy("admin:catalog_partner_changelist"),
                        "permission": can_view("catalog.view_partner"),
                    },
                    {
                        "title": "Revenue share agreements",
                        "icon": "percent",
                        "link": reverse_lazy("admin:orders_revenueshareagreement_changelist"),
                        "permission": can_view("orders.view_revenueshareagreement"),
                    },
                    {
                        "title": "Portal memberships",
                        "icon": "badge",
                        "link": reverse_lazy("admin:catalog_portalmembership_changelist"),
                        "permission": can_view("catalog.view_portalmembership"),
                    },
                ],
            },
            {
                "title": "Orders",
                "items": [
                    {
                        "title": "Orders",
                        "icon": "work",
                        "link": reverse_lazy("admin:orders_order_changelist"),
                        "permission": can_view("orders.view_order"),
                    },
                    {
                        "title": "Settlements",
                        "icon": "payments",
                        "link": reverse_lazy("admin:orders_settlement_changelist"),
                        "permission": can_view("orders.view_settlement"),
                    },
                    {
                        "title": "My open tasks",
                        "icon": "checklist_rtl",
                        "link": reverse_lazy("admin:orders_my_tasks"),
                        "permission": can_view("orders.view_task"),
                    },
                    {
                        "title": "Payout batches",
                        "icon": "account_balance_wallet",
                        "link": reverse_lazy("admin:orders_payoutbatch_changelist"),
                        "permission": can_view("orders.view_payoutbatch"),
                    },
                    {
                        "title": "Order types",
                        "icon": "category",
                        "link": reverse_lazy("admin:orders_ordertype_changelist"),
                        "permission": can_view("orders.view_ordertype"),
                    },
                    {
                        "title": "Document types",
                        "icon": "description",
                        "link": reverse_lazy("admin:orders_documenttype_changelist"),
                        "permission": can_view("orders.view_documenttype"),
                    },
                    {
                        "title": "Companies",
                        "icon": "corporate_fare",
                        "link": reverse_lazy("admin:orders_company_changelist"),
                        "permission": can_view("orders.view_company"),
                    },
                    {
                        "title": "Registrars",
                        "icon": "account_balance",
                        "link": reverse_lazy("admin:orders_registrar_changelist"),
                        "permission": can_view("orders.view_registrar"),
                    },
                ],
            },
            {
                "title": "Catalog and prices",
                "items": [
                    {
                        "title": "Services",
                        "icon": "inventory_2",
                        "link": reverse_lazy("admin:catalog_service_changelist"),
                        "permission": can_view("catalog.view_service"),
                    },
                    {
                        "title": "Price agreements",
                        "icon": "sell",
                        "link": reverse_lazy("admin:catalog_priceagreement_changelist"),
                        "permission": can_view("catalog.view_priceagreement"),
                    },
                    {
                        "title": "Minimum commitments",
                        "icon": "savings",
                        "link": reverse_lazy("admin:catalog_minimumcommitment_changelist"),
                        "permission": can_view("catalog.view_minimumcommitment"),
                    },
                    {
                        "title": "Price calculator",
                        "icon": "calculate",
                        "link": reverse_lazy("admin:ledger_price_calculator"),
                        "permission": can_view("catalog.view_priceagreement"),
                    },
                ],
            },
            {
                "title": "Usage",
                "items": [
                    {
                        "title": "Upload usage",
                        "icon": "upload_file",
                        "link": reverse_lazy("admin:usage_upload_new"),
                        "permission": can_view("usage.add_upload"),
                    },
                    {
                        "title": "Uploads",
                        "icon": "history",
                        "link": reverse_lazy("admin:usage_upload_changelist"),
                        "permission": can_view("usage.view_upload"),
                    },
                    {
                        "title": "Usage records",
                        "icon": "receipt_long",
                        "link": reverse_lazy("admin:usage_usagerecord_changelist"),
                        "permission": can_view("usage.view_usagerecord"),
                    },
                    {
                        "title": "Monthly summaries",
                        "icon": "calendar_month",
                        "link": reverse_lazy("admin:usage_monthlysummary_changelist"),
                        "permission": can_view("usage.view_monthlysummary"),
                    },
                    {
                        "title": "Closed periods",
                        "icon": "event_busy",
                        "link": reverse_lazy("admin:usage_closedperiod_changelist"),
                        "permission": can_view("usage.view_closedperiod"),
                    },
                ],
            },
            {
                "title": "Approvals",
                "items": [
                    {
                        "title": "Awaiting my approval",
                        "icon": "approval",
                        "link": reverse_lazy("admin:approvals_awaitingapproval_changelist"),
                        "permission": can_view("approvals.view_awaitingapproval"),
                    },
                    {
                        "title": "Approval requests",
                        "icon": "checklist",
                        "link": reverse_lazy("admin:approvals_approvalrequest_changelist"),
                        "permission": can_view("approvals.view_approvalrequest"),
                    },
                ],
            },
            {
                "title": "Billing",
                "items": [
                    {
                        "title": "Invoices",
                        "icon": "receipt",
                        "link": reverse_lazy("admin:ledger_invoice_changelist"),
                        "permission": can_view("ledger.view_invoice"),
                    },
                    {
                        "title": "Payments",
                        "icon": "payments",
                        "link": reverse_lazy("admin:ledger_payment_changelist"),
                        "permission": can_view("ledger.view_payment"),
                    },
                    {
                        "title": "Refunds",
                        "icon": "currency_exchange",
                        "link": reverse_lazy("admin:ledger_refund_changelist"),
                        "permission": can_view("ledger.view_refund"),
                    },
                    {
                        "title": "Adjustments",
                        "icon": "tune",
                        "link": reverse_lazy("admin:ledger_adjustment_changelist"),
                        "permission": can_view("ledger.view_adjustment"),
                    },
                    {
                        "title": "Credit notes",
                        "icon": "undo",
                        "link": reverse_lazy("admin:ledger_creditnote_changelist"),
                        "permission": can_view("ledger.view_creditnote"),
                    },
                    {
                        "title": "Month-end runs",
                        "icon": "event_repeat",
                        "link": reverse_lazy("admin:ledger_billingrun_changelist"),
                        "permission": can_view("ledger.view_billingrun"),
                    },
                    {
                        "title": "Billing configurations",
                        "icon": "settings",
                        "link": reverse_lazy("admin:ledger_billingconfig_changelist"),
                        "permission": can_view("ledger.view_billingconfig"),
                    },
                    {
                        "title": "Journal",
                        "icon": "menu_book",
                        "link": reverse_lazy("admin:ledger_transaction_changelist"),
                        "permission": can_view("ledger.view_transaction"),
                    },
                    {
                        "title": "Accounts",
                        "icon": "account_balance_wallet",
                        "link": reverse_lazy("admin:ledger_account_changelist"),
                        "permission": can_view("ledger.view_account"),
                    },
                    {
                        "title": "Reconciliation reports",
                        "icon": "fact_check",
                        "link": reverse_lazy("admin:ledger_reconciliationreport_changelist"),
                        "permission": can_view("ledger.view_reconciliationreport"),
                    },
                ],
            },
            {
                "title": "Users and access",
                "items": [
                    {
                        "title": "Users",
                        "icon": "person",
                        "link": reverse_lazy("admin:accounts_user_changelist"),
                        "permission": can_view("accounts.view_user"),
                    },
                    {
                        "title": "Roles",
                        "icon": "group",
                        "link": reverse_lazy("admin:auth_group_changelist"),
                        "permission": can_view("auth.view_group"),
                    },
                    {
                        "title": "API tokens",
                        "icon": "key",
                        "link": reverse_lazy("admin:accounts_apitoken_changelist"),
                        "permission": can_view("accounts.view_apitoken"),
                    },
                    {
                        "title": "Login attempts",
                        "icon": "lock",
                        "link": reverse_lazy("admin:axes_accessattempt_changelist"),
                        "permission": can_view("axes.view_accessattempt"),
                    },
                ],
            },
        ],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # factur-x logs every PDF it writes at INFO; its warnings and errors still show.
    "loggers": {"factur-x": {"level": "WARNING"}},
}
