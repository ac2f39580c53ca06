"""The one `environ.Env` every settings module reads from.

Values come from the process environment; a `.env` file at the project root, when present, fills
in what the environment does not set (it never overrides a real environment variable).
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

_dotenv = BASE_DIR / ".env"
if _dotenv.is_file():
    environ.Env.read_env(_dotenv, overwrite=False)

# The mode decides defaults everywhere else, so it is settled here, once.
DATABASE_URL = env.str("DATABASE_URL", default="")
SFP_MODE = env.str("SFP_MODE", default="production" if DATABASE_URL else "embedded")
if SFP_MODE not in {"embedded", "production", "test"}:
    raise ImproperlyConfigured(f"SFP_MODE must be embedded, production or test, not {SFP_MODE!r}")
EMBEDDED = SFP_MODE == "embedded"
