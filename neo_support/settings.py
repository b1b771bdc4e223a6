"""Settings, all from the environment (see docs/configuration.md).

With no variables set this is the embedded default: DEBUG on, SQLite under
var/, in-memory channel layer, tasks on an in-process thread pool. Setting
DATABASE_URL and REDIS_URL switches to Postgres, the Redis channel layer and
real Celery workers through the same code.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from kombu.entity import Queue  # where kombu defines it; mypy cannot see the package's lazy re-export

from bots.tickets.imap_config import env_imap_mailboxes
from neo_support.env import (
    ConfigError,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_matching,
    env_origins,
    env_path,
    env_rate,
    env_secret,
    env_str,
    env_url,
)
from neo_support.model_queues import queue_models
from neo_support.redis_client import reconnecting
from neo_support.sso_config import sign_in_origins, socialaccount_providers, sso_config_from_env
from neo_support.storage_config import storage_from_env

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env_path("NEO_VAR_DIR", BASE_DIR / "var")

DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = env_secret("SECRET_KEY")
    if key is not None:
        return key
    if not DEBUG:
        raise ConfigError("SECRET_KEY", "not set, and DEBUG is off: set SECRET_KEY or SECRET_KEY_FILE")
    # Development only: one generated key, kept so sessions survive restarts.
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text(encoding="utf-8").strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


SECRET_KEY = _secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ConfigError("ALLOWED_HOSTS", "must name this site's host names when DEBUG is off")
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "neo_support.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "neo_support",
    "retrieval",
    "bots",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "neo_support.audit.context.AuditRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "neo_support.middleware_two_factor.TwoFactorRequiredMiddleware",
    "neo_support.setup_views.FirstRunMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "neo_support.views.ServiceOutageMiddleware",
]

ROOT_URLCONF = "neo_support.urls"
ASGI_APPLICATION = "neo_support.asgi.application"

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
                "neo_support.access.navigation",
            ],
        },
    },
]

# Database ----------------------------------------------------------------

_DEFAULT_DATABASE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
_database_url = env_url(
    "DATABASE_URL",
    _DEFAULT_DATABASE_URL,
    schemes=("sqlite", "postgres", "postgresql", "pgsql"),
)
assert _database_url is not None
try:
    _database = dj_database_url.parse(
        _database_url,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        conn_health_checks=True,
    )
except ValueError as error:
    raise ConfigError("DATABASE_URL", str(error)) from None
if _database["ENGINE"] == "django.db.backends.sqlite3":
    Path(_database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the in-process task pool write while requests read.
    _database["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # Tests use a file too: an in-memory database shared between threads locks whole
    # tables instead of waiting, and the in-process task pool writes from its threads.
    _database["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis, channel layer, Celery ---------------------------------------------

REDIS_URL = env_url("REDIS_URL", None, schemes=("redis", "rediss", "unix"))

# Prefix of the channel layer's and the event log's Redis keys (the test suite sets its own).
NEO_CHANNEL_PREFIX = env_str("NEO_CHANNEL_PREFIX", "neo")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: one PUBLISH per event for a whole group, against a ZADD per socket and a
            # process-wide inbox of 100 with the core layer, which dropped deltas at 1,000/s
            # (bench/websocket.py). Delivery is at most once; clients resume from the event log.
            "BACKEND": "neo_support.channel_layers.StandingRedisPubSubChannelLayer",
            "CONFIG": {
                # redis-py 8 times socket reads out after 5 s, exactly channels-redis's
                # blocking receive: idle sockets' consumers died with TimeoutError.
                # After a Redis restart, publishers and the subscription reconnect (and
                # resubscribe) instead of failing on their dead connections.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30, **reconnecting(asynchronous=True)}],
                "prefix": NEO_CHANNEL_PREFIX,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "neo_support.channel_layers.ThreadSafeInMemoryChannelLayer"}}

# Without Redis, tasks run in this process on a thread pool per queue
# (neo_support.tasking); with it, on Celery workers.
NEO_TASKS_IN_PROCESS = REDIS_URL is None
NEO_IN_PROCESS_THREADS = env_int("NEO_IN_PROCESS_THREADS", 2, minimum=1, maximum=64)

# One generation queue per served base model (neo_support.model_queues): `generation`
# for NEO_MODEL, one more for each model in NEO_MODELS.
NEO_MODEL = env_str("NEO_MODEL", "EleutherAI/gpt-neo-125M")  # the default base model
NEO_MODELS = env_list("NEO_MODELS")  # more base models bots may choose
GENERATION_QUEUES = tuple(queue_models(NEO_MODEL, NEO_MODELS))
CELERY_QUEUES = (*GENERATION_QUEUES, "indexing", "default", "training")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL
# kombu ships type information but leaves Queue.__init__ unannotated.
CELERY_TASK_QUEUES = tuple(Queue(name, routing_key=name) for name in CELERY_QUEUES)  # type: ignore[no-untyped-call]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = ("neo_support.tasking.route_task",)
# Tasks live beside their domain; every process imports these before its first dispatch.
CELERY_IMPORTS = (
    "bots.chat.tasks",
    "bots.tickets.tasks",
    "bots.webhooks.tasks",
    "bots.tuning.tasks",
    "bots.privacy.tasks",
    "retrieval.tasks",
)
CELERY_TASK_CREATE_MISSING_QUEUES = False
# A task is acknowledged only when it finished, and redelivered if the worker
# died under it; tasks are written to be idempotent for this.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
# Nothing waits on a task's return value (state lives in Postgres): storing it left a
# key per reply in Redis for an hour (bench/load.py).
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "close-idle-conversations": {
        "task": "bots.tasks.close_idle_conversations",
        "schedule": 15 * 60,
    },
    "retry-due-webhooks": {
        "task": "workers.tasks.retry_due_webhooks",
        "schedule": 5 * 60,
    },
    "apply-retention": {
        "task": "bots.privacy.tasks.apply_retention",
        "schedule": 60 * 60,
        "options": {"expires": 60 * 60},
    },
    "recover-stalled-replies": {
        "task": "workers.tasks.recover_stalled_replies",
        "schedule": 60,
        "options": {"expires": 60},
    },
}
# A reply pending or streaming this long without a change is given up for failed (its
# worker was killed): the visitor is told and may ask again. Longer than any reply takes.
NEO_REPLY_STALL_SECONDS = env_int("NEO_REPLY_STALL_SECONDS", 300, minimum=1)
NEO_HEARTBEAT_SECONDS = env_int("NEO_HEARTBEAT_SECONDS", 10, minimum=1)

# How long a conversation may sit idle before the bot marks it resolved, and
# how long a resolved one stays open to a follow-up before it is closed.
NEO_CONVERSATION_IDLE_HOURS = env_int("NEO_CONVERSATION_IDLE_HOURS", 24, minimum=1)
NEO_CONVERSATION_CLOSE_DAYS = env_int("NEO_CONVERSATION_CLOSE_DAYS", 7, minimum=1)

# Longest visitor message accepted; longer ones are refused with a clear error.
NEO_MAX_MESSAGE_CHARS = env_int("NEO_MAX_MESSAGE_CHARS", 4000, minimum=100)

# Chat sockets (docs/protocol.md) -----------------------------------------

NEO_WS_MAX_FRAME_BYTES = env_int("NEO_WS_MAX_FRAME_BYTES", 16384, minimum=1024, maximum=1048576)
NEO_WS_HELLO_SECONDS = env_int("NEO_WS_HELLO_SECONDS", 10, minimum=1, maximum=300)
NEO_VISITOR_TOKEN_DAYS = env_int("NEO_VISITOR_TOKEN_DAYS", 30, minimum=1)
NEO_EVENT_LOG_SECONDS = env_int("NEO_EVENT_LOG_SECONDS", 3600, minimum=60)
NEO_EVENT_LOG_EVENTS = env_int("NEO_EVENT_LOG_EVENTS", 2000, minimum=100)
# Rate limits in the `limits` notation ("10/minute", "100/hour;10/minute").
NEO_RATE_MESSAGES_PER_VISITOR = env_rate("NEO_RATE_MESSAGES_PER_VISITOR", "12/minute;120/hour")
NEO_RATE_MESSAGES_PER_IP = env_rate("NEO_RATE_MESSAGES_PER_IP", "60/minute")
NEO_RATE_FRAMES_PER_SOCKET = env_rate("NEO_RATE_FRAMES_PER_SOCKET", "120/minute")
NEO_RATE_CONNECTIONS_PER_IP = env_rate("NEO_RATE_CONNECTIONS_PER_IP", "60/minute")
# REST API requests per API key, or per signed-in user, or per IP when neither.
NEO_RATE_API = env_rate("NEO_RATE_API", "600/minute;20000/hour")
# How long POST /api/conversations/.../messages/ waits for the reply before answering
# 202 with the reply still pending (the client then polls or streams).
NEO_API_REPLY_WAIT_SECONDS = env_int("NEO_API_REPLY_WAIT_SECONDS", 60, minimum=0, maximum=600)

# Models ------------------------------------------------------------------

# NEO_MODEL and NEO_MODELS: with the Celery queues, one per served model.
NEO_DEVICE = env_matching("NEO_DEVICE", "auto", r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N")
NEO_DTYPE = env_choice("NEO_DTYPE", "auto", ("auto", "float32", "bfloat16", "float16"))
# How often a process whose model could not be loaded looks for it again, in the
# background (never on a visitor's request), so a model downloaded later is picked up.
NEO_MODEL_RETRY_SECONDS = env_int("NEO_MODEL_RETRY_SECONDS", 300, minimum=5, maximum=86400)
# Memory for the keys and values of bots' fixed prompt heads (instructions, canary,
# guidance), computed once per bot instead of at every reply; 0 turns it off.
NEO_PREFIX_CACHE_MB = env_int("NEO_PREFIX_CACHE_MB", 256, minimum=0, maximum=65536)
# Seconds a worker may spend at load timing fp32 linear kernels on this CPU at a few rows
# (workers.generation.kernels); 0 keeps the built-in choice.
NEO_KERNEL_CALIBRATION_SECONDS = env_int("NEO_KERNEL_CALIBRATION_SECONDS", 20, minimum=0, maximum=600)
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL", "all-MiniLM-L6-v2")

# Files -------------------------------------------------------------------

MEDIA_ROOT = env_path("MEDIA_ROOT", VAR_DIR / "media")
MEDIA_URL = "/media/"
STATIC_ROOT = env_path("STATIC_ROOT", VAR_DIR / "static")
STATIC_URL = "/static/"
if DEBUG:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request until collectstatic ran
# Uploads, attachments, tuned adapters: MEDIA_ROOT, or an S3-compatible store (NEO_STORAGE).
STORAGES = {
    "default": storage_from_env(),
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# WhiteNoise serves files through a synchronous iterator, which Django's ASGI
# handler adapts with a warning per file; the adaptation is correct, so the
# warning is noise (docs/decisions.md).
warnings.filterwarnings("ignore", message="StreamingHttpResponse must consume synchronous iterators")
NEO_UPLOAD_MAX_BYTES = env_int("NEO_UPLOAD_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
# Uploaded files are parsed in a child process under these limits (retrieval/loaders/isolation.py).
NEO_PARSER_ISOLATION = env_bool("NEO_PARSER_ISOLATION", True)
NEO_PARSER_MEMORY_MB = env_int("NEO_PARSER_MEMORY_MB", 2048, minimum=256)
NEO_PARSER_CPU_SECONDS = env_int("NEO_PARSER_CPU_SECONDS", 60, minimum=1)
NEO_PARSER_TIMEOUT_SECONDS = env_int("NEO_PARSER_TIMEOUT_SECONDS", 120, minimum=1)
# Inbound email: the largest raw message the webhook accepts, and the largest attachment kept.
NEO_EMAIL_MAX_BYTES = env_int("NEO_EMAIL_MAX_BYTES", 40 * 1024 * 1024, minimum=1024)
NEO_EMAIL_MAX_ATTACHMENT_BYTES = env_int("NEO_EMAIL_MAX_ATTACHMENT_BYTES", 10 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# Retrieval ----------------------------------------------------------------

# Where this host keeps its copy of each knowledge base's index: a cache rebuilt from the
# database when missing (docs/operations.md, "More than one host"). Unset: MEDIA_ROOT/indexes.
NEO_INDEX_DIR: Path | None = env_path("NEO_INDEX_DIR", Path()) if os.environ.get("NEO_INDEX_DIR") else None
# A host lacking a knowledge base's current index builds it before searching when it has at
# most this many chunks (about a second per 10,000); a bigger one is built in the background
# while the version the host holds answers.
NEO_INDEX_INLINE_BUILD_CHUNKS = env_int("NEO_INDEX_INLINE_BUILD_CHUNKS", 10_000, minimum=0)
# Knowledge bases with more chunks than this search an HNSW graph instead of exact search.
NEO_HNSW_THRESHOLD = env_int("NEO_HNSW_THRESHOLD", 50_000, minimum=1)
NEO_WEB_IMPORT_MAX_PAGES = env_int("NEO_WEB_IMPORT_MAX_PAGES", 50, minimum=1, maximum=10_000)
NEO_WEB_IMPORT_TIMEOUT = env_int("NEO_WEB_IMPORT_TIMEOUT", 10, minimum=1, maximum=300)
# Web import refuses private, loopback and link-local addresses (SSRF) unless this is on.
NEO_WEB_IMPORT_ALLOW_PRIVATE = env_bool("NEO_WEB_IMPORT_ALLOW_PRIVATE", False)

# Outgoing webhooks (docs/tickets.md) ---------------------------------------

# Webhooks refuse private, loopback and link-local addresses (SSRF) unless this is on.
NEO_WEBHOOK_ALLOW_PRIVATE = env_bool("NEO_WEBHOOK_ALLOW_PRIVATE", False)
# Without Redis there is no broker to hold a retry's countdown: a failed delivery waits
# up to this many seconds in its worker thread and tries again (0: it stays pending
# until the `retry_due_webhooks` beat task, which needs Redis, picks it up).
NEO_WEBHOOK_INLINE_RETRY_SECONDS = env_int("NEO_WEBHOOK_INLINE_RETRY_SECONDS", 0, minimum=0, maximum=300)

# Email -------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ConfigError("EMAIL_USE_SSL", "EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be on")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 30, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Neo Support <support@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)

# Inbound email by IMAP (docs/tickets.md): a JSON list of mailboxes, each polled for
# unseen mail by Celery beat; checked here so a bad entry stops start-up.
NEO_IMAP_MAILBOXES = env_imap_mailboxes("NEO_IMAP_MAILBOXES")
NEO_IMAP_POLL_SECONDS = env_int("NEO_IMAP_POLL_SECONDS", 60, minimum=5)
NEO_IMAP_TIMEOUT = env_int("NEO_IMAP_TIMEOUT", 30, minimum=1)
if NEO_IMAP_MAILBOXES:
    # Only with mailboxes to poll; a poll not started within one interval is dropped,
    # so polls never pile up behind a busy or stopped worker.
    CELERY_BEAT_SCHEDULE["poll-mailboxes"] = {
        "task": "bots.tasks.poll_mailboxes",
        "schedule": NEO_IMAP_POLL_SECONDS,
        "options": {"expires": NEO_IMAP_POLL_SECONDS},
    }

# Organizations (docs/operations.md, "First run: setup without Django admin") ------

# Whether owners may create further organizations ("New organization" in the header).
NEO_ALLOW_NEW_ORGANIZATIONS = env_bool("NEO_ALLOW_NEW_ORGANIZATIONS", True)

# Auth and security ---------------------------------------------------------

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard:home"
LOGOUT_REDIRECT_URL = "account_login"

# Staff accounts: django-allauth signs people in, out, up, and runs password resets,
# TOTP two-factor and the sessions page (docs/operations.md, "Staff accounts").
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
# Who may create an account: nobody (closed), invited addresses only (invite), or anyone
# whose address is verified first (open).
NEO_SIGNUP = env_choice("NEO_SIGNUP", "invite", ("closed", "invite", "open"))
ACCOUNT_ADAPTER = "neo_support.accounts.AccountAdapter"
ACCOUNT_FORMS = {"signup": "neo_support.accounts.SignUpForm"}
ACCOUNT_LOGIN_METHODS = {"username", "email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
# Open sign-up must prove the address before the account can sign in; an invited address
# is proven by its link, and accounts an operator made are not held up (accounts.py).
ACCOUNT_EMAIL_VERIFICATION = "mandatory" if NEO_SIGNUP == "open" else "optional"
ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS = 3
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Neo Support] "
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "http" if DEBUG else "https"
# As before allauth: a session lasts SESSION_COOKIE_AGE, and the sign-in page shows to
# someone signed in already (to sign in as someone else).
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_AUTHENTICATED_LOGIN_REDIRECTS = False
# Sign-in attempts: 30 a minute from one address; failed ones 10 a minute from one address
# and 5 in 5 minutes for one account (the name typed). Sign-up, password reset and the
# rest keep allauth's limits.
ACCOUNT_RATE_LIMITS = {"login": "30/m/ip", "login_failed": "10/m/ip,5/5m/key"}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_ADAPTER = "neo_support.accounts.MfaAdapter"
MFA_TOTP_ISSUER = "Neo Support"
# Codes of the current 30 s step only: allauth remembers a used code for one step, so a
# wider window would let a code be replayed once that memory lapsed (docs/decisions.md).
MFA_TOTP_TOLERANCE = 0
# Single sign-on through the install's OpenID Connect provider (neo_support/sso.py):
# NEO_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET and _DOMAINS (domain=organization-slug:role).
# Off when NEO_OIDC_ISSUER is unset.
NEO_SSO = sso_config_from_env()
SOCIALACCOUNT_PROVIDERS = socialaccount_providers(NEO_SSO)
SOCIALACCOUNT_ADAPTER = "neo_support.sso.SingleSignOnAdapter"
# The provider vouches for the address (an unverified one is refused); the account is made
# on first sign-in without a form, and an existing account with that address is the one
# signed in.
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_STORE_TOKENS = False
# The throttles above and the used-code memory live in the cache: shared by every web
# process through Redis when there is one, in this process otherwise.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{NEO_CHANNEL_PREFIX}:cache",
        }
    }

# Production defaults are strict; each can be relaxed by its variable.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Every page's scripts come from this server's own files: no inline script, no CDN.
# Styles may be inline (the widget styles its shadow DOM; Swagger UI sets style attributes).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF, *sign_in_origins(NEO_SSO)],
        "frame-ancestors": [NONE],
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "neo_support.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["neo_support.api_auth.OrganizationPermission"],
    "EXCEPTION_HANDLER": "neo_support.api.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_PAGINATION_CLASS": "neo_support.api.ApiPages",
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_THROTTLE_CLASSES": ["neo_support.api_auth.ApiRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "neo_support.api_schema.NeoAutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Neo Support API",
    "DESCRIPTION": (
        "Bots, knowledge bases, documents, search, conversations, tickets, feedback, analytics and "
        "webhooks of one organization. Authenticate with `Authorization: Bearer <API key>`; "
        'every error is `{"error": {"code", "message", "details"?}}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "bots.models.TicketStatus",
        "ConversationStatusEnum": "bots.models.ConversationStatus",
        "MessageStatusEnum": "bots.models.MessageStatus",
        "WebhookDeliveryStatusEnum": "bots.models.WebhookDeliveryStatus",
        "DocumentStatusEnum": "retrieval.models.DocumentStatus",
        "FilterActionEnum": ["block", "flag", "off"],
    },
    "SCHEMA_PATH_PREFIX": "/api/",
    "AUTHENTICATION_WHITELIST": [
        "neo_support.api_auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Libraries that narrate their start-up: Presidio lists every recognizer it loads
        # (and warns about each non-English one, which we never ask for); faiss reports each
        # CPU build it tries before the one that loads. Their errors still show.
        "presidio-analyzer": {"level": "ERROR"},
        "decision_process": {"level": "ERROR"},  # Presidio's decision trace
        "faiss.loader": {"level": "WARNING"},
    },
}
