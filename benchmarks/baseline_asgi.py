"""A bare ASGI app answering `pong`: the baseline daphne itself costs, with no Django at all."""


async def application(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"pong"})
