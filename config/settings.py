"""Tempora's settings: every value comes from the environment (see README, "Configuration").

Defaults make `make run` work on a fresh machine: SQLite in var/, DEBUG off,
localhost only. Helpers in config/env.py refuse malformed values at start-up.
"""

import os
from datetime import timedelta
from importlib.util import find_spec
from pathlib import Path
from zoneinfo import available_timezones

import dj_database_url
import django
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_int,
    env_list,
    env_lockout_parameters,
    env_proxy_ssl_header,
    env_str,
    secret_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("TEMPORA_VAR_DIR", str(BASE_DIR / "var")))

SECRET_KEY = secret_key(VAR_DIR / "secret_key")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_apscheduler",
    "django_celery_results",
    "django_htmx",
    # Django 6 has {% partialdef %} and "page.html#name" built in; 5.2 takes them from here.
    *(["template_partials"] if django.VERSION < (6, 0) else []),
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "scheduler_app",
    "axes",  # login throttling (Security, below)
    "csp",
    # Django's Tasks framework for the "django_tasks" executor, when installed (Tasks, below).
    *[app for app in ("django_tasks", "django_tasks_db") if find_spec(app)],
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a locked-out login's answer into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own templates (error pages); the console's are scheduler_app/templates/scheduler_app/.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# Database -----------------------------------------------------------------


def _database() -> dict:
    default_url = f"sqlite:///{VAR_DIR / 'tempora.sqlite3'}"
    url = env_str("DATABASE_URL", default_url)
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # The scheduler and the web server write at once. Without WAL, IMMEDIATE
        # transactions and a busy timeout, SQLite answers "database is locked"
        # and APScheduler's thread dies (DESIGN.md, "Processes").
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20, minimum=1),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        config["CONN_MAX_AGE"] = 0 if config["NAME"] == ":memory:" else config["CONN_MAX_AGE"]
        # A real file (not :memory:) so subprocesses under test share it; one per test
        # run so parallel runs never collide.
        config["TEST"] = {"NAME": str(VAR_DIR / f"test-tempora-{os.getpid()}.sqlite3")}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # PostgreSQL's JIT compiles a query it expects to be long before running it: for the
        # console's counts over 100,000 jobs that tripled the time (1 s, against 0.28 s without).
        # A URL's own ?options= wins.
        config.setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# Auth ---------------------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]


# Time and language --------------------------------------------------------

TIME_ZONE = env_str("TIME_ZONE", "UTC")
if TIME_ZONE not in available_timezones():
    raise ImproperlyConfigured(f"TIME_ZONE={TIME_ZONE!r} is not an IANA time zone name.")
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# Translations come from each app's locale/ directory (scheduler_app/locale).


# The cache (the API's own settings live on its views: scheduler_app/api/views/base.py) ------

# The API's write throttle counts here. In-process by default; with several web workers or
# hosts, point CACHE_URL at Redis so every process counts against the same limit.
CACHE_URL = env_str("CACHE_URL", "locmem://")
if CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "tempora",
        }
    }
elif CACHE_URL == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(f"CACHE_URL={CACHE_URL!r} is not locmem:// or a redis:// URL")


# Static files (whitenoise serves them, also under gunicorn) ---------------

STATIC_URL = "static/"
# The project's own files (its favicon); the console's are scheduler_app/static/scheduler_app/.
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


# Security (README, "Security") ---------------------------------------------

# The production switch: HTTPS only (redirect, HSTS), cookies only over HTTPS, so that
# `manage.py check --deploy` is clean. Each part can still be set on its own.
TEMPORA_SECURE = env_bool("TEMPORA_SECURE", False)
SECURE_SSL_REDIRECT = TEMPORA_SECURE
# A year, the minimum the browsers' preload lists accept. Lower it while trying HTTPS out:
# browsers remember it for that long.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if TEMPORA_SECURE else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", TEMPORA_SECURE)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", TEMPORA_SECURE)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE = LANGUAGE_COOKIE_SECURE = env_bool("SECURE_COOKIES", TEMPORA_SECURE)
# Behind a proxy that ends TLS: the header it sets on HTTPS requests (opt-in: trusting a
# header a client can send makes any request look secure).
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 1_048_576, minimum=1024)

# How many reverse proxies in front append to X-Forwarded-For (config/client_ip.py): 0 uses
# the connection's address, which behind a proxy is the proxy's for everyone.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)

# Login throttling (django-axes) on the console login, the admin login and HTTP Basic on
# /api/tokens/. API tokens never count: a wrong token is a 401, not a failed login.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# A user from one address by default: another user, or the same user elsewhere, can still sign in.
AXES_LOCKOUT_PARAMETERS = env_lockout_parameters("LOGIN_LOCKOUT_BY", "username+ip_address")
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.client_ip.client_ip"
AXES_LOCKOUT_CALLABLE = "scheduler_app.web.views.account.locked_out"
AXES_HTTP_RESPONSE_CODE = 429

# Content-Security-Policy (django-csp): only this site's own files run; nothing inline
# except the API docs' start-up code, which carries the request's nonce.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # Swagger UI's and ReDoc's stylesheets draw icons as data: URLs.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"upgrade-insecure-requests": True} if TEMPORA_SECURE else {}),
    },
}


# Email (the send_email task uses Django's backend) ------------------------

_smtp_backend = "django.core.mail.backends.smtp.EmailBackend"
_email_backend = env_str("EMAIL_BACKEND", _smtp_backend)
_smtp = {
    "host": env_str("EMAIL_HOST", "localhost"),
    "port": env_int("EMAIL_PORT", 25, minimum=1),
    "username": env_str("EMAIL_HOST_USER", ""),
    "password": env_str("EMAIL_HOST_PASSWORD", ""),
    "use_tls": env_bool("EMAIL_USE_TLS", False),
    "timeout": env_int("EMAIL_TIMEOUT", 30, minimum=1),
}
if django.VERSION >= (6, 1):
    # Django 6.1 replaces the EMAIL_* settings by MAILERS (the old ones warn, and go in 2028);
    # the same environment variables fill it. Only the SMTP backend takes these options.
    MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _smtp if _email_backend == _smtp_backend else {}}}
else:
    EMAIL_BACKEND = _email_backend
    EMAIL_HOST, EMAIL_PORT, EMAIL_TIMEOUT = _smtp["host"], _smtp["port"], _smtp["timeout"]
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = _smtp["username"], _smtp["password"]
    EMAIL_USE_TLS = _smtp["use_tls"]
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "tempora@localhost")


# Celery (the "celery" executor; results through django-celery-results) ----

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = "django-db"
# tempora.run_execution sets acks_late and reject_on_worker_lost itself (scheduler_app/tasks.py).
# What only a worker can set (README, "Celery workers"): a worker holds no message beyond the
# runs it executes, so one that dies strands none that was not started; Redis gives back the
# message of a worker that died without acknowledging after the visibility timeout (checked
# every ~30 s), a no-op for a claimed row, the run itself for a row still `queued`.
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 300,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 3,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]


# Django's Tasks (the "django_tasks" executor) ----------------------------------

# The backport's database backend, its worker `manage.py db_worker`: runs of django_tasks jobs
# go to its table, and each worker claims and records them (README, "The scheduler for Django's
# Tasks"). DJANGO_TASKS_BACKEND chooses another (e.g. django_tasks.backends.immediate.ImmediateBackend).
if find_spec("django_tasks_db"):
    TASKS = {"default": {"BACKEND": env_str("DJANGO_TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}


# Tempora (scheduler_app/conf.py has each key's default and meaning) -------------

# A key is set only when its environment variable is (README, "Configuration"); the app's
# default applies otherwise. Only the type is read here: ranges and the rules between values
# are system checks (scheduler_app/checks.py) that `manage.py check` and runscheduler report.
_TEMPORA_FROM_ENV = {
    "MAX_WORKERS": env_int("SCHEDULER_MAX_WORKERS", None),
    "MISFIRE_GRACE_TIME": env_int("SCHEDULER_MISFIRE_GRACE_TIME", None),
    "LEASE_SECONDS": env_int("SCHEDULER_LEASE_SECONDS", None),
    "NODE_DEAD_SECONDS": env_int("SCHEDULER_NODE_DEAD_SECONDS", None),
    "HISTORY_PER_JOB": env_int("SCHEDULER_HISTORY_PER_JOB", None),
    "HISTORY_DAYS": env_int("SCHEDULER_HISTORY_DAYS", None),
    "OUTPUT_LIMIT": env_int("SCHEDULER_OUTPUT_LIMIT", None),
    "DEFAULT_TIMEOUT": env_int("SCHEDULER_DEFAULT_TIMEOUT", None),
    "MAX_TIMEOUT": env_int("SCHEDULER_MAX_TIMEOUT", None),
    "JOURNAL_DIR": env_str("SCHEDULER_JOURNAL_DIR", "") or None,
    "MAX_RUNS_PER_USER": env_int("SCHEDULER_MAX_RUNS_PER_USER", None),
    "CELERY_LOST_SECONDS": env_int("SCHEDULER_CELERY_LOST_SECONDS", None),
    "TASKS_BACKEND": env_str("TEMPORA_TASKS_BACKEND", "") or None,
    # e.g. TEMPORA_TASK_MODULES=tests.process.jobs_for_tests, as the process tests do.
    "TASK_MODULES": env_list("TEMPORA_TASK_MODULES", None),
    "HTTP_ALLOW_HOSTS": env_list("TEMPORA_HTTP_ALLOW_HOSTS", None),
    "HTTP_MAX_TIMEOUT": env_int("TEMPORA_HTTP_MAX_TIMEOUT", None),
    "HTTP_MAX_BODY_BYTES": env_int("TEMPORA_HTTP_MAX_BODY_BYTES", None),
    "HTTP_MAX_REDIRECTS": env_int("TEMPORA_HTTP_MAX_REDIRECTS", None),
    "EMAIL_MAX_RECIPIENTS": env_int("TEMPORA_EMAIL_MAX_RECIPIENTS", None),
    "EMAIL_ALLOWED_DOMAINS": env_list("TEMPORA_EMAIL_ALLOWED_DOMAINS", None),
    "OPEN_JOB_CREATION": env_bool("TEMPORA_OPEN_JOB_CREATION", None),
    "MAX_JOBS_PER_USER": env_int("TEMPORA_MAX_JOBS_PER_USER", None),
    "METRICS_ALLOWED_IPS": env_list("METRICS_ALLOWED_IPS", None),
    "API_WRITE_THROTTLE": env_str("API_WRITE_THROTTLE", None),
}
TEMPORA = {
    # This project's own choices: its var/ folder (lock files, the journal), and the built-in
    # backup and data directories inside it (the app's default is none: those tasks refuse).
    # SCHEDULER_BACKUP_DIR is TEMPORA_BACKUP_DIR's older name.
    "VAR_DIR": VAR_DIR,
    "BACKUP_DIR": Path(env_str("TEMPORA_BACKUP_DIR", "") or env_str("SCHEDULER_BACKUP_DIR", "") or VAR_DIR / "backups"),
    "DATA_DIR": Path(env_str("TEMPORA_DATA_DIR", "") or VAR_DIR / "data"),
    **{key: value for key, value in _TEMPORA_FROM_ENV.items() if value is not None},
}


# Logging ------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # APScheduler logs every fire at INFO; our executor logs the ones that matter.
        "apscheduler": {"level": "WARNING"},
        # django-axes logs every sign-in at INFO; failures and lockouts are WARNING.
        "axes": {"level": "WARNING"},
    },
}
