"""The Origin rule of `/sfp/ws`: browsers, which always send `Origin`, must come from one of
`ALLOWED_HOSTS` (so another site cannot open a socket with the user's session cookie); a client
that sends no `Origin` and a bearer token in `Authorization` (a script, the CLI, CI) is let
through, and the consumer checks its token as the API would. A client with neither is refused
(403), as before: without a token it could only have meant to use a cookie."""

from channels.security.websocket import AllowedHostsOriginValidator


class OriginCheckedUnlessBearer:
    def __init__(self, inner):
        self.inner = inner
        self.origin_checked = AllowedHostsOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers", []))
        if b"origin" not in headers and _is_bearer(headers.get(b"authorization", b"")):
            return await self.inner(scope, receive, send)
        return await self.origin_checked(scope, receive, send)


def _is_bearer(authorization: bytes) -> bool:
    return authorization[:7].lower() == b"bearer " and bool(authorization[7:].strip())
