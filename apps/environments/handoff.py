"""Wake-ups for lock waiters: a ticket's change reaches whoever waits on it within milliseconds,
without anyone polling the database.

Every write that changes a ticket (acquired, released, cancelled, expired) calls `signal(keys)`
inside its transaction. On PostgreSQL that is a `pg_notify` on `HANDOFF_CHANNEL`, delivered to
every process when the transaction commits; each process keeps one listening connection (a
daemon thread) and wakes the threads waiting on those keys. In-process waiters are also woken on
commit directly, which is all the embedded SQLite default needs (one process).

A waiter subscribes *before* it reads the state it waits on, so a change between its read and its
wait is never missed. If the listening connection fails, every waiter is woken to read again and
the listener reconnects with back-off; while it is down waiters fall back to re-reading every
`FALLBACK_RECHECK_SECONDS`, so a database restart delays hand-offs but never loses one.
"""

import contextlib
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator

import structlog
from django.db import connection, transaction

logger = structlog.get_logger(__name__)

HANDOFF_CHANNEL = "sfp_lock_handoff"
FALLBACK_RECHECK_SECONDS = 1.0
LISTENER_READY_SECONDS = 2.0
STOP_CHECK_SECONDS = 1.0


class _Waiters:
    """Threads of this process waiting on keys (ticket or request ids)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, set[threading.Event]] = defaultdict(set)

    def add(self, keys: Iterable[str], event: threading.Event) -> None:
        with self._lock:
            for key in keys:
                self._by_key[key].add(event)

    def remove(self, keys: Iterable[str], event: threading.Event) -> None:
        with self._lock:
            for key in keys:
                events = self._by_key.get(key)
                if events is not None:
                    events.discard(event)
                    if not events:
                        del self._by_key[key]

    def wake(self, keys: Iterable[str]) -> None:
        with self._lock:
            events = {event for key in keys for event in self._by_key.get(key, ())}
        for event in events:
            event.set()

    def wake_all(self) -> None:
        with self._lock:
            events = {event for events in self._by_key.values() for event in events}
        for event in events:
            event.set()


_waiters = _Waiters()


class _Listener(threading.Thread):
    """One LISTEN connection per process, reconnecting after failures."""

    def __init__(self, params: dict) -> None:
        super().__init__(name="sfp-lock-handoff", daemon=True)
        self._params = params
        self.listening = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        backoff = 0.1
        while not self.stopping.is_set():
            try:
                with psycopg.connect(**self._params, autocommit=True) as conn:
                    conn.execute(f"LISTEN {HANDOFF_CHANNEL}")
                    self.listening.set()
                    _waiters.wake_all()  # anything sent while we were not listening: re-read
                    backoff = 0.1
                    while not self.stopping.is_set():
                        for notice in conn.notifies(timeout=STOP_CHECK_SECONDS):
                            _waiters.wake(notice.payload.split(","))
            except Exception as error:  # noqa: BLE001 — any failure of the connection: reconnect
                self.listening.clear()
                if self.stopping.is_set():
                    break
                logger.warning("lock.handoff_listener_lost", error=str(error), retry_in=backoff)
                _waiters.wake_all()
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.listening.clear()


_listener: _Listener | None = None
_listener_lock = threading.Lock()


def _uses_notify() -> bool:
    return connection.vendor == "postgresql"


def _ensure_listener() -> _Listener | None:
    global _listener
    if not _uses_notify():
        return None
    with _listener_lock:
        if _listener is None or not _listener.is_alive():
            params = dict(connection.get_connection_params())
            params.pop("cursor_factory", None)
            _listener = _Listener(params)
            _listener.start()
    _listener.listening.wait(LISTENER_READY_SECONDS)
    return _listener


def stop_listener() -> None:
    """Close this process's listening connection (before its database goes away: tests, or a
    worker shutting down); the next waiter starts a new one."""
    global _listener
    with _listener_lock:
        listener, _listener = _listener, None
    if listener is not None:
        listener.stopping.set()
        listener.join(STOP_CHECK_SECONDS + 1)


def listening() -> bool:
    """Whether wake-ups from other processes reach this one now (False on SQLite: one process)."""
    return _listener is not None and _listener.listening.is_set()


def signal(keys: Iterable[str]) -> None:
    """Wake the waiters of these keys when the current transaction commits."""
    keys = [str(key) for key in keys if key]
    if not keys:
        return
    if _uses_notify():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [HANDOFF_CHANNEL, ",".join(keys)])
    transaction.on_commit(lambda: _waiters.wake(keys))


@contextlib.contextmanager
def subscription(keys: Iterable[str]) -> Iterator["Wakeup"]:
    """Wait on keys: enter before reading the state, then `wait()` between reads."""
    keys = [str(key) for key in keys]
    listener = _ensure_listener()
    wakeup = Wakeup(listener)
    _waiters.add(keys, wakeup.event)
    try:
        yield wakeup
    finally:
        _waiters.remove(keys, wakeup.event)


class Wakeup:
    def __init__(self, listener: _Listener | None) -> None:
        self.event = threading.Event()
        self._listener = listener

    def wait(self, seconds: float) -> bool:
        """Sleep until woken or `seconds` pass; True when woken."""
        if self._listener is not None and not self._listener.listening.is_set():
            seconds = min(seconds, FALLBACK_RECHECK_SECONDS)
        woken = self.event.wait(max(0.0, seconds))
        self.event.clear()
        return woken
