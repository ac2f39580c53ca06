"""Identity settings: session JWTs, refresh tokens, application tokens and login throttling.

The JWT signing key is `SFP_JWT_SECRET` when set, else derived from `DJANGO_SECRET_KEY` (so the
embedded default needs nothing); application and refresh tokens are stored as HMACs keyed from
`DJANGO_SECRET_KEY`. Rotating that key therefore ends every session and invalidates every
application token: see docs/access.md.
"""

from sfpserver.env import env

SFP_JWT_SECRET = env.str("SFP_JWT_SECRET", default="")
SFP_JWT_ISSUER = env.str("SFP_JWT_ISSUER", default="sfp-server")
SFP_JWT_AUDIENCE = env.str("SFP_JWT_AUDIENCE", default="sfp-server")
SFP_ACCESS_TOKEN_TTL_SECONDS = env.int("SFP_ACCESS_TOKEN_TTL_SECONDS", default=900)
SFP_REFRESH_TOKEN_TTL_DAYS = env.int("SFP_REFRESH_TOKEN_TTL_DAYS", default=30)

SFP_APP_TOKEN_DEFAULT_DAYS = 30
SFP_APP_TOKEN_MAX_DAYS = env.int("SFP_APP_TOKEN_MAX_DAYS", default=365)

# Failed logins counted over a sliding window, per email and per client IP.
SFP_LOGIN_WINDOW_SECONDS = env.int("SFP_LOGIN_WINDOW_SECONDS", default=900)
SFP_LOGIN_MAX_FAILURES_PER_EMAIL = env.int("SFP_LOGIN_MAX_FAILURES_PER_EMAIL", default=5)
SFP_LOGIN_MAX_FAILURES_PER_IP = env.int("SFP_LOGIN_MAX_FAILURES_PER_IP", default=20)

# Proxies whose X-Forwarded-For is believed when recording the client IP (comma-separated).
SFP_TRUSTED_PROXIES = env.list("SFP_TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
