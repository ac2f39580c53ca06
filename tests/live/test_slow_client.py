"""A client that stops reading delays nobody else: against a real daphne process (Redis layer),
one socket subscribes and then never reads (a 4 KiB receive buffer, so the server's writes back
up within the first batches) while a second socket follows the same task. ~12 MB of log lines
later the second has every line, once and in order; the first still gets all of it once it reads.
"""

import asyncio
import base64
import json
import os
import socket
import time

import pytest
import websockets
from django.utils import timezone

from apps.tasks import lifecycle
from apps.tasks.models import TaskLogLine, TaskStatus
from tests.accounts.factories import access_token_for
from tests.support.clients import follow_task
from tests.support.servers import running_server, shared_database_environment
from tests.tasks.conftest import create_execution

pytestmark = pytest.mark.django_db(transaction=True)

BATCHES, LINES_PER_BATCH, LINE_BYTES = 300, 40, 1000


def _masked_text_frame(text: str) -> bytes:
    payload, mask = text.encode(), os.urandom(4)
    header = bytes([0x81])
    header += bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126])
    if len(payload) >= 126:
        header += len(payload).to_bytes(2, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        chunk = sock.recv(4096)
        assert chunk, f"closed before {marker!r}: {received!r}"
        received += chunk
    return received


def _stalled_subscriber(port: int, token: str, operation_id: str) -> socket.socket:
    """A raw WebSocket that subscribes, waits for the snapshot, and then reads nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /sfp/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    sock.settimeout(15)
    received = _read_until(sock, b'"event": "ready"')
    subscribe = {"action": "subscribe", "object": "task", "id": operation_id}
    sock.sendall(_masked_text_frame(json.dumps(subscribe)))
    _read_until(sock, b"task.snapshot")
    assert b" 101 " in received.split(b"\r\n", 1)[0]
    return sock


def _publish_log_batches(operation_id: str) -> float:
    filler = "x" * (LINE_BYTES - 20)
    for batch in range(BATCHES):
        lifecycle.append_log_lines(
            operation_id,
            [
                TaskLogLine(
                    execution_id=operation_id,
                    logged_at=timezone.now(),
                    message=f"line {batch}-{index} {filler}",
                )
                for index in range(LINES_PER_BATCH)
            ],
        )
    return time.monotonic()


def test_a_stalled_client_does_not_delay_another(owner):
    execution = create_execution(owner, status=TaskStatus.ACTIVE)
    token = access_token_for(owner)
    total_lines = BATCHES * LINES_PER_BATCH
    last_message = f"line {BATCHES - 1}-{LINES_PER_BATCH - 1} "

    with running_server("serve", "--skip-bootstrap", env=shared_database_environment()) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        stalled = _stalled_subscriber(port, token, execution.pk)

        async def follow() -> tuple[list[int], float, float]:
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/sfp/ws",
                origin="http://127.0.0.1",
                additional_headers={"Authorization": f"Bearer {token}"},
                max_size=2**22,
            ) as ws:
                await follow_task(ws, execution.pk)
                loop = asyncio.get_running_loop()
                publishing = loop.run_in_executor(None, _publish_log_batches, execution.pk)
                seqs: list[int] = []
                while len(seqs) < total_lines:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if message["event"] == "task.log":
                        seqs.extend(line["seq"] for line in message["payload"]["lines"])
                return seqs, await publishing, time.monotonic()

        seqs, published_at, all_received_at = asyncio.run(follow())

        # Now the stalled socket reads: the rest of the ~12 MB, kept for it by the server while
        # the other socket had everything, arrives late but whole.
        stalled.settimeout(60)
        tail, read_late = b"", 0
        while last_message.encode() not in tail:
            chunk = stalled.recv(1 << 20)
            assert chunk, "the server closed the stalled socket"
            read_late += len(chunk)
            tail = (tail + chunk)[-(1 << 16) :]
        stalled.close()

    assert seqs == list(range(1, total_lines + 1))  # every line, once, in order
    assert all_received_at - published_at < 10  # not held back by the stalled socket
    # More than kernel buffers can hold (4 MiB send + a few KiB receive) was still waiting for
    # the stalled socket when the other one was done: it really was stalled, and isolated.
    assert read_late > 6 * 2**20


def test_a_client_that_stops_answering_is_closed(owner):
    """A client that does not answer pings (one that stopped reading cannot) is dropped by
    daphne — here after a 1 s interval + 2 s timeout, 20 + 30 s by default — so the server
    never buffers for a dead reader forever."""
    execution = create_execution(owner, status=TaskStatus.ACTIVE)
    token = access_token_for(owner)
    environment = shared_database_environment()
    serve = ("serve", "--skip-bootstrap", "--ping-interval", "1", "--ping-timeout", "2")
    with running_server(*serve, env=environment) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        stalled = _stalled_subscriber(port, token, execution.pk)
        started = time.monotonic()
        stalled.settimeout(30)
        try:
            while stalled.recv(65536):  # read, but never answer a ping
                assert time.monotonic() - started < 30
        except ConnectionResetError:
            pass  # closed with data still unsent: the kernel resets the connection
        closed_after = time.monotonic() - started
        stalled.close()
    assert 1 <= closed_after < 30
