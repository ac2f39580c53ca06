"""Local stand-ins for outside services (GitHub, Azure, Salesforce), served over real loopback HTTP.

`FakeServer` runs a `ThreadingHTTPServer` on 127.0.0.1 with a free port in a daemon thread,
records every request it receives so tests can assert on what a client sent (and on what it did
not send), and hands each request to `handle`, which subclasses implement to answer like the
real API: same status codes, JSON shapes and headers. Use it as a context manager, or call
`start()` and `stop()`.
"""

import json
import threading
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # as sent, query string included
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return {name: values[-1] for name, values in parse_qs(urlsplit(self.path).query).items()}

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode(), keep_blank_values=True)
        return {name: values[-1] for name, values in parsed.items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def bearer_token(self) -> str | None:
        """The credential of an `Authorization: Bearer …` or `Authorization: token …` header."""
        scheme, _, credential = self.headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token") and credential.strip():
            return credential.strip()
        return None


@dataclass
class FakeResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Self:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        )

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain") -> Self:
        return cls(status, text.encode(), {"Content-Type": f"{content_type}; charset=utf-8"})


class FakeServer:
    """Base of every fake: a loopback HTTP server whose answers come from `handle`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        # A fake that crashes answers 500; the traceback is kept so a failing test can show it.
        self.errors: list[str] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handle(self, request: RecordedRequest) -> FakeResponse:
        return FakeResponse.json(404, {"message": "Not Found"})

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, the form an allow-list of hosts uses."""
        return self.url.removeprefix("http://")

    def requests_to(self, method: str, route: str) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.method == method and r.route == route]

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # `stop()` waits for the next poll, so a short interval keeps every test fast.
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}-{self.host}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers={name.lower(): value for name, value in handler.headers.items()},
            body=handler.rfile.read(length) if length else b"",
        )
        with self.lock:
            self.requests.append(request)
        try:
            response = self.handle(request)
        except Exception:  # noqa: BLE001 - any crash must become a 500, as on a real server
            trace = traceback.format_exc()
            with self.lock:
                self.errors.append(trace)
            response = FakeResponse.text(500, trace)
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(response.body)))
        handler.end_headers()
        if request.method != "HEAD":
            handler.wfile.write(response.body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.0 closes every connection after its answer, so stopping never waits on an
            # idle keep-alive connection held open by a client's pool.
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                fake._dispatch(self)

            def do_POST(self) -> None:
                fake._dispatch(self)

            def do_PUT(self) -> None:
                fake._dispatch(self)

            def do_PATCH(self) -> None:
                fake._dispatch(self)

            def do_DELETE(self) -> None:
                fake._dispatch(self)

            def do_HEAD(self) -> None:
                fake._dispatch(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
