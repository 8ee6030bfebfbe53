"""Settings for the benchmark peer: Django + django-allauth, headless API only, TOTP MFA.

Environment:
  PEER_DATABASE    sqlite:////abs/path/db.sqlite3  or  postgres://user[:pw]@host:port/name
                   (default: sqlite:////tmp/usher-bench-peer.sqlite3)
  PEER_SECRET_KEY  Django's SECRET_KEY (default: a fixed benchmark-only value)
"""
import os
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured


def database_from_url(url: str) -> dict:
    """The DATABASES["default"] entry for a sqlite:/// or postgres:// URL."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]  # sqlite:////abs/path -> /abs/path
        if not path.startswith("/"):  # sqlite:///rel would land relative to the cwd
            raise ImproperlyConfigured(f"PEER_DATABASE: want sqlite:////ABSOLUTE/PATH, not {url!r}")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                # Several gunicorn workers write at once: WAL lets readers go on beside the
                # writer, BEGIN IMMEDIATE takes the write lock up front (no upgrade deadlocks),
                # and a writer waits up to `timeout` seconds (busy timeout) instead of failing
                # with "database is locked".
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
            "CONN_MAX_AGE": None,  # each worker keeps its connection between requests
        }
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": None,  # each worker keeps its connection between requests
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(f"PEER_DATABASE: unsupported URL {url!r}")


SECRET_KEY = os.environ.get(
    "PEER_SECRET_KEY", "usher-bench-peer-not-a-secret-5f0c2a9e7d4b1368a2e9c7f4d1b0a3e6"
)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.headless",
    "peer",  # for the bench_seed management command
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",  # the headless views are csrf_exempt
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "peer.urls"
WSGI_APPLICATION = "peer.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    }
]

DATABASES = {
    "default": database_from_url(
        os.environ.get("PEER_DATABASE", "sqlite:////tmp/usher-bench-peer.sqlite3")
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared by all gunicorn workers, so that allauth's TOTP replay protection and its rate limits
# hold across them (create the table with `manage.py createcachetable`). Django's database
# cache evicts live entries once it holds more than MAX_ENTRIES; the limit is set far above
# what a benchmark run keeps alive at once (entries live 60-300 s), so that a used TOTP code
# is never forgotten early.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "peer_cache",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}

# Sessions (the headless app client's X-Session-Token) live in the database: the default.
AUTHENTICATION_BACKENDS = ["allauth.account.auth_backends.AuthenticationBackend"]
PASSWORD_HASHERS = [
    "peer.hashers.UsherArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

# allauth: sign in by email and password, no email verification, headless API only.
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
HEADLESS_ONLY = True
HEADLESS_CLIENTS = ("app",)
MFA_SUPPORTED_TYPES = ["totp"]
# Usher accepts the code of the current 30 s step or of one step either side; so does this.
MFA_TOTP_TOLERANCE = 1
# allauth's rate limits stay on (its defaults). They key on the client address taken from
# the last X-Forwarded-For entry (one trusted proxy): the load generator sends a distinct
# address per request, as it does for Usher.
ALLAUTH_TRUSTED_PROXY_COUNT = 1

USE_TZ = True
LANGUAGE_CODE = "en-us"

# Quiet: no 4xx warnings; server errors (500s) still go to stderr with their traceback.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "ERROR"},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
