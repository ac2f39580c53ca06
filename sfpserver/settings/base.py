"""Settings the server runs with, in both modes.

*Embedded default* (no `DATABASE_URL`): SQLite, the in-memory channel layer and the database task
backend, with every file under `SFP_DATA_DIR`; nothing but the server process is needed.
*Production* (`DATABASE_URL` set): PostgreSQL through psycopg 3 and Redis for the channel layer;
the server refuses to start while a required secret is missing and names it.

Each optional integration lives in its own module in this package and is off unless configured;
they are imported at the bottom of this file.
"""

import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from sfpserver.env import BASE_DIR, DATABASE_URL, EMBEDDED, SFP_MODE, env

# --- Mode -------------------------------------------------------------------------------------

SFP_DATA_DIR = Path(env.str("SFP_DATA_DIR", default=str(BASE_DIR / ".data"))).resolve()
if EMBEDDED:
    SFP_DATA_DIR.mkdir(parents=True, exist_ok=True)

# Secrets production cannot run without. Later capabilities append to this list (encryption keys,
# token signing keys) so one check names everything that is missing.
REQUIRED_IN_PRODUCTION = ["DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "SFP_ENCRYPTION_KEYS"]


def _embedded_secret(name: str) -> str:
    """A random secret generated once into SFP_DATA_DIR and reused on every later start."""
    path = SFP_DATA_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


if SFP_MODE == "production":
    _missing = [name for name in REQUIRED_IN_PRODUCTION if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            "Production mode (DATABASE_URL is set) needs these environment variables: "
            + ", ".join(_missing)
        )

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or (
    _embedded_secret("secret_key") if EMBEDDED else ""
)
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is not set")

# Vault keys (apps.integrations.vault): the first encrypts, all decrypt. The embedded default
# generates one on first run, and says so, because losing it loses every stored credential.
SFP_ENCRYPTION_KEYS = env.list("SFP_ENCRYPTION_KEYS", default=[])
if not SFP_ENCRYPTION_KEYS and EMBEDDED:
    _key_file = SFP_DATA_DIR / "encryption_key"
    if not _key_file.exists():
        import base64
        import sys

        _key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        _key_file.chmod(0o600)
        print(
            f"Generated an encryption key in {_key_file}: back it up with the database.",
            file=sys.stderr,
        )
    SFP_ENCRYPTION_KEYS = [_key_file.read_text().strip()]

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Applications -----------------------------------------------------------------------------

INSTALLED_APPS = [
    "daphne",
    "apps.accounts.console.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_prometheus",
    "apps.core",
    "apps.accounts",
    "apps.integrations",
    "apps.projects",
    "apps.environments",
    "apps.tasks",
    "apps.live",
    "apps.dashboard",
    # After the project's apps: `manage.py runworker` is ours (the tasks worker), not Channels'.
    "channels",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "apps.core.middleware.RequestContextMiddleware",
    "apps.core.middleware.MalformedRequestMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "apps.core.middleware.ApiErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.accounts.middleware.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.SyncPrometheusAfterMiddleware",
]

ROOT_URLCONF = "sfpserver.urls"
ASGI_APPLICATION = "sfpserver.asgi.application"
WSGI_APPLICATION = "sfpserver.wsgi.application"
# The published API has no trailing slashes; never redirect to add one.
APPEND_SLASH = False

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
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

if DATABASE_URL:
    _database = env.db_url("DATABASE_URL")
    if _database["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://…)")
    _database["ENGINE"] = "django_prometheus.db.backends.postgresql"
    # A new connection per request cuts throughput several-fold (docs/adr/0001); keep them open.
    _database["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    _database["CONN_HEALTH_CHECKS"] = True
    _database.setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_CONNECT_TIMEOUT", default=5
    )
elif EMBEDDED:
    _database = {
        "ENGINE": "django_prometheus.db.backends.sqlite3",
        "NAME": SFP_DATA_DIR / "sfpserver.sqlite3",
        "OPTIONS": {
            # WAL lets the in-process worker write while requests read.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
else:
    raise ImproperlyConfigured(f"SFP_MODE={SFP_MODE} needs DATABASE_URL (PostgreSQL)")

DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Identity ---------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The dashboard's login page (the console at /admin/ keeps its own).
LOGIN_URL = "dashboard:login"

# --- Internationalisation ---------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (served by whitenoise under daphne) -----------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's output; only production serves from it.
STATIC_ROOT = (
    Path(env.str("SFP_STATIC_ROOT", default=str(SFP_DATA_DIR / "staticfiles")))
    if SFP_MODE == "production"
    else None
)
# Production serves the hashed, compressed output of collectstatic; the embedded default and the
# tests serve straight from the app folders so no collectstatic step is needed.
WHITENOISE_USE_FINDERS = SFP_MODE != "production"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if SFP_MODE == "production"
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- REST API ---------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.accounts.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.core.permissions.DeclaredRoles"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.LimitedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # `format` is an ordinary query parameter here (the audit export), not a renderer switch.
    "URL_FORMAT_OVERRIDE": None,
}

# Request bodies (apps.core.parsers): larger answers 413, nested deeper answers 400.
SFP_API_MAX_JSON_BYTES = env.int("SFP_API_MAX_JSON_BYTES", default=1024 * 1024)
SFP_API_MAX_JSON_DEPTH = env.int("SFP_API_MAX_JSON_DEPTH", default=64)

SPECTACULAR_SETTINGS = {
    "TITLE": "sfp server",
    "DESCRIPTION": "Self-hosted control plane for Salesforce DevOps (sfp server compatible API).",
    "VERSION": "0.1.0",
    "OAS_VERSION": "3.0.3",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/sfp/api",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TeamRoleEnum": "apps.accounts.models.TeamRole",
        "UserRoleEnum": ["owner", "member", "application"],
        "TokenStatusEnum": ["active", "expired", "revoked"],
        "CheckStatusEnum": ["up", "down"],
        "CredentialAuthTypeEnum": ["accessToken", "sfdxAuthUrl", "none"],
        "IntegrationAuthTypeEnum": "apps.integrations.models.AuthType",
    },
}


# --- Optional integrations, one module each ---------------------------------------------------

from sfpserver.settings.channels import *  # noqa: E402,F403
from sfpserver.settings.identity import *  # noqa: E402,F403
from sfpserver.settings.logging import *  # noqa: E402,F403
from sfpserver.settings.metrics import *  # noqa: E402,F403
from sfpserver.settings.providers import *  # noqa: E402,F403
from sfpserver.settings.sso import *  # noqa: E402,F403
from sfpserver.settings.tasks import *  # noqa: E402,F403

# Sorted after `tasks` on purpose: when configured, Hatchet replaces the database task backend.
from sfpserver.settings.tasks_hatchet import *  # noqa: E402,F403
