"""The `/sfp/ws` WebSocket: authenticated with the API's own credentials, subscriptions checked
with the API's role rules, catch-up from the database, then live events from the channel layer.

Every event carries its object's sequence number. The consumer remembers the last number it sent
per object: it drops what it already sent (an event reaching it through two subscriptions, or
published before a catch-up that already covered it), and when a followed task's events skip a
number (lost or overtaken on the way) it re-reads the task from the database before going on.
A socket must authenticate within `SFP_LIVE_AUTH_SECONDS`; client frames are bounded in size
and rate; a malformed frame gets an error event and the socket stays open. An event is encoded
once per process however many sockets it goes to (`_encoded_event`).
The protocol and every event are documented in `apps.live.events`. Tokens are never logged.
"""

import asyncio
import json
import time
from collections import OrderedDict

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from apps.core import live_metrics
from apps.core.events import group_name
from apps.live import events
from apps.live.layer_watch import layer_watch

logger = structlog.get_logger(__name__)

READ_ROLES = {"owner", "member", "application"}
CATCH_UP_CHUNK = 1000
# Encoded frames of recent events, by (event, object key, seq): each is encoded for the first
# socket it goes to and reused for the rest. A task's or lock's seq names one event, so a hit is
# the same payload; a few hundred entries outlast any fan-out in flight.
_ENCODED_EVENTS: OrderedDict[tuple[str, str, int], str] = OrderedDict()
_ENCODED_EVENTS_KEPT = 512


def _encoded_event(event: str, key: str, seq: int, payload: dict) -> str:
    cache_key = (event, key, seq)
    frame = _ENCODED_EVENTS.get(cache_key)
    if frame is None:
        frame = json.dumps({"event": event, "seq": seq, "payload": payload})
        _ENCODED_EVENTS[cache_key] = frame
        if len(_ENCODED_EVENTS) > _ENCODED_EVENTS_KEPT:
            _ENCODED_EVENTS.popitem(last=False)
    return frame


@database_sync_to_async
def _principal_from_token(raw: str):
    from apps.accounts.authentication import authenticate_bearer
    from apps.accounts.tokens import TokenError

    try:
        return authenticate_bearer(raw)
    except TokenError:
        return None


@database_sync_to_async
def _principal_from_session(user):
    from apps.accounts.principal import principal_for_user

    if user is None or not user.is_authenticated:
        return None
    return principal_for_user(user)


@database_sync_to_async
def _recheck(credential: tuple[str, str]):
    """The caller again, as the API would see it now: (principal, None), or (None, close code)
    when the token was revoked or expired, the session ended, or no read role is left."""
    from importlib import import_module

    from apps.accounts.authentication import authenticate_bearer
    from apps.accounts.models import User
    from apps.accounts.principal import principal_for_user
    from apps.accounts.tokens import TokenError

    kind, value = credential
    if kind == "bearer":
        try:
            principal = authenticate_bearer(value)
        except TokenError:
            return None, events.CLOSE_UNAUTHENTICATED
    else:
        session_key, user_id = value.split(":", 1)
        user = User.objects.filter(pk=user_id, is_active=True).first()
        # Loading (not just looking up) the session also refuses an expired one.
        session = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
        if user is None or str(session.get("_auth_user_id")) != str(user.pk):
            return None, events.CLOSE_UNAUTHENTICATED
        principal = principal_for_user(user)
    if not principal.roles & READ_ROLES:
        return None, events.CLOSE_FORBIDDEN
    return principal, None


@database_sync_to_async
def _environment_snapshot(environment_id: str) -> tuple[str, str, int, dict] | None:
    """(lock group, object key, seq, payload) of an environment's lock, or None if unknown."""
    from apps.core.exceptions import NotFound
    from apps.environments.selectors.environments import environment_get, environment_lock_state
    from apps.environments.selectors.locks import lock_event_seq

    try:
        environment = environment_get(environment_id)
    except (ValueError, NotFound):  # not a UUID, or no such environment
        return None
    repository, resource = environment.project.identifier, environment.lock_resource
    seq = lock_event_seq(repository, resource)
    payload = {"environmentId": str(environment.pk), "name": environment.name}
    payload |= environment_lock_state(environment)
    return f"lock.{repository}.{resource}", _lock_key(repository, resource), seq, payload


@database_sync_to_async
def _project_exists(identifier: str) -> bool:
    from apps.projects.selectors import project_exists

    return project_exists(identifier)


@database_sync_to_async
def _task_snapshot(operation_id: str) -> tuple[int, dict] | None:
    from apps.tasks.selectors import execution_live_state

    return execution_live_state(operation_id)


@database_sync_to_async
def _log_lines(operation_id: str, after: int, up_to: int) -> list[dict]:
    from apps.tasks.lifecycle import log_line_dto
    from apps.tasks.selectors import log_lines_between

    lines = log_lines_between(operation_id, after=after, up_to=up_to, limit=CATCH_UP_CHUNK)
    return [log_line_dto(line) for line in lines]


def _task_key(operation_id: str) -> str:
    return f"task:{operation_id}"


def _lock_key(repository: str, resource: str) -> str:
    return f"lock:{repository}:{resource}"


def _object_key(event: str, payload: dict) -> str | None:
    if event == "environment.lock":
        return _lock_key(payload.get("repository", ""), payload.get("resource", ""))
    if "operationId" in payload:
        return _task_key(payload["operationId"])
    return None


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message):
        # Channels closes stale database connections before every handler, a hop to the sync
        # thread each time: for an event fanned out to many sockets that was most of the cost.
        # Forwarding an event needs no database (a resync goes through database_sync_to_async,
        # which does its own clean-up).
        if message["type"] == "sfp.event":
            await self.sfp_event(message)
        else:
            await super().dispatch(message)

    async def connect(self):
        self.principal = None
        self.groups_joined: set[str] = set()
        self.delivered: dict[str, int] = {}  # object key → last sequence number sent
        self.followed_tasks: set[str] = set()
        self.credential: tuple[str, str] | None = None  # kept in memory only, never logged
        self.rechecking: asyncio.Task | None = None
        self.auth_deadline: asyncio.Task | None = None
        self.frame_allowance = float(settings.SFP_LIVE_FRAME_BURST)
        self.last_frame_at = time.monotonic()
        self.refused_frames = 0
        await self.accept()
        live_metrics.SOCKETS_OPEN.inc()
        self.counted_open = True
        layer_watch().add(self)
        header = dict(self.scope.get("headers", [])).get(b"authorization", b"").decode()
        if header.lower().startswith("bearer "):
            self.credential = ("bearer", header[7:].strip())
            self.principal = await _principal_from_token(self.credential[1])
            if self.principal is None:
                await self.close(code=events.CLOSE_UNAUTHENTICATED)
                return
        else:
            self.principal = await _principal_from_session(self.scope.get("user"))
            session = self.scope.get("session")
            if self.principal is not None and session is not None:
                self.credential = ("session", f"{session.session_key}:{self.principal.user.pk}")
        if self.principal is not None:
            await self._ready()
        else:
            self.auth_deadline = asyncio.ensure_future(self._close_unless_authenticated())

    async def _close_unless_authenticated(self) -> None:
        await asyncio.sleep(settings.SFP_LIVE_AUTH_SECONDS)
        if self.principal is None:
            logger.info("live_socket_closed", reason=events.CLOSE_UNAUTHENTICATED)
            await self.close(code=events.CLOSE_UNAUTHENTICATED)

    async def _ready(self):
        if self.auth_deadline is not None:
            self.auth_deadline.cancel()
        if not self.principal.roles & READ_ROLES:  # authenticated, but no role left
            await self.close(code=events.CLOSE_FORBIDDEN)
            return
        if self.credential is not None:
            self.rechecking = asyncio.ensure_future(self._keep_rechecking())
        await self.send_json(
            {
                "event": "ready",
                "user": self.principal.user.email,
                "roles": sorted(self.principal.roles),
            }
        )

    async def _keep_rechecking(self) -> None:
        """Re-check the caller every SFP_LIVE_RECHECK_SECONDS; close the socket as the API
        would refuse the next request (4401: credentials over; 4403: no read role left)."""
        while True:
            await asyncio.sleep(settings.SFP_LIVE_RECHECK_SECONDS)
            principal, close_code = await _recheck(self.credential)
            if principal is None:
                logger.info("live_socket_closed", reason=close_code)
                await self.close(code=close_code)
                return
            self.principal = principal

    async def disconnect(self, code):
        for waiting in (getattr(self, "rechecking", None), getattr(self, "auth_deadline", None)):
            if waiting is not None:
                waiting.cancel()
        if getattr(self, "counted_open", False):
            live_metrics.SOCKETS_OPEN.dec()
            self.counted_open = False
            layer_watch().discard(self)
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A client frame: within the rate limit, text, at most SFP_LIVE_MAX_FRAME_CHARS, JSON;
        anything else gets an error event and the socket stays open."""
        if not self._frame_allowed():
            if self.refused_frames > settings.SFP_LIVE_FRAME_BURST:
                logger.info("live_socket_closed", reason=events.CLOSE_TOO_MANY_FRAMES)
                await self.close(code=events.CLOSE_TOO_MANY_FRAMES)
            else:
                await self._error(
                    f"Too many frames: at most {settings.SFP_LIVE_FRAMES_PER_SECOND:g} per second"
                )
            return
        if text_data is None:
            await self._error("Send JSON text frames, not binary ones")
            return
        if len(text_data) > settings.SFP_LIVE_MAX_FRAME_CHARS:
            await self._error(f"Frame over {settings.SFP_LIVE_MAX_FRAME_CHARS} characters")
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
            await self._error("Frames must be JSON")
            return
        await self.receive_json(content)

    def _frame_allowed(self) -> bool:
        """A token bucket: SFP_LIVE_FRAMES_PER_SECOND, saving up to SFP_LIVE_FRAME_BURST. Frames
        refused since the bucket was last full are counted (persistent abuse closes the socket)."""
        now = time.monotonic()
        burst = settings.SFP_LIVE_FRAME_BURST
        refill = (now - self.last_frame_at) * settings.SFP_LIVE_FRAMES_PER_SECOND
        self.frame_allowance = min(float(burst), self.frame_allowance + refill)
        self.last_frame_at = now
        if self.frame_allowance >= burst:
            self.refused_frames = 0
        if self.frame_allowance >= 1:
            self.frame_allowance -= 1
            return True
        self.refused_frames += 1
        return False

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self._error("Send JSON objects")
            return
        action = content.get("action")
        if self.principal is None:
            if action != events.AUTHENTICATE or not isinstance(content.get("token"), str):
                await self.close(code=events.CLOSE_UNAUTHENTICATED)
                return
            self.credential = ("bearer", content["token"])
            self.principal = await _principal_from_token(content["token"])
            if self.principal is None:
                await self.close(code=events.CLOSE_UNAUTHENTICATED)
                return
            await self._ready()
            return
        if action == events.SUBSCRIBE:
            await self._subscribe(content)
        elif action == events.UNSUBSCRIBE:
            await self._unsubscribe(content)
        else:
            await self._error(f"Unknown action {action!r}")

    async def _error(self, message: str) -> None:
        await self.send_json({"event": "error", "message": message})

    async def _join(self, *groups: str) -> None:
        for group in map(group_name, groups):
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    async def _leave(self, *groups: str) -> None:
        for group in map(group_name, groups):
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.discard(group)

    def _my_feed(self) -> list[str]:
        """The per-user feed: tasks this caller started, and gates for owners to decide."""
        from apps.tasks.models import TriggerKind
        from apps.tasks.pipelines import GATES_FEED

        if self.principal.is_token:
            return [f"{TriggerKind.TOKEN}.{self.principal.token.pk}"]
        feed = [f"{TriggerKind.USER}.{self.principal.user.pk}"]
        if "owner" in self.principal.roles:
            feed.append(GATES_FEED)
        return feed

    async def _groups_for(self, content) -> list[str] | None:
        """The groups a subscription joins, or None (after telling the client why)."""
        kind = content.get("object")
        if not self.principal.roles & READ_ROLES:
            await self._error("Forbidden - Requires role: owner, member, application")
            return None
        if kind == events.TASKS_FEED:
            return ["tasks"]
        if kind == events.LOCKS_FEED:
            return ["locks"]
        if kind == events.MY_FEED:
            return self._my_feed()
        if kind in (events.TASK, events.ENVIRONMENT, events.PROJECT) and isinstance(
            content.get("id"), str
        ):
            return [f"{kind}.{content['id']}"]
        await self._error("object must be task, environment, project (with an id), tasks or me")
        return None

    async def _subscribe(self, content):
        if self.credential is not None:  # the roles of now, as the API reads them per request
            principal, close_code = await _recheck(self.credential)
            if principal is None:
                await self.close(code=close_code)
                return
            self.principal = principal
        groups = await self._groups_for(content)
        if groups is None:
            return
        kind, object_id = content.get("object"), content.get("id")
        if kind == events.TASK:
            since = content.get("since")
            if since is not None and (not isinstance(since, int) or isinstance(since, bool)):
                await self._error("since must be an integer")
                return
            # Join first, then read the database: nothing can fall between the two.
            await self._join(*groups)
            seq_and_snapshot = await _task_snapshot(object_id)
            if seq_and_snapshot is None:
                await self._leave(*groups)
                await self._error(f"Task {object_id} not found")
                return
            self.followed_tasks.add(object_id)
            await self.send_json({"event": "subscribed", "object": kind, "id": object_id})
            await self._send_task_state(object_id, since, *seq_and_snapshot)
            return
        if kind == events.ENVIRONMENT:
            found = await _environment_snapshot(object_id)
            if found is None:
                await self._error(f"Environment {object_id} not found")
                return
            lock_group, key, seq, snapshot = found
            await self._join(lock_group)
            self.delivered[key] = max(seq, self.delivered.get(key, 0))
            await self.send_json({"event": "subscribed", "object": kind, "id": object_id})
            await self.send_json({"event": "environment.snapshot", "seq": seq, "payload": snapshot})
            return
        if kind == events.PROJECT and not await _project_exists(object_id):
            await self._error(f"Project {object_id} not found")
            return
        await self._join(*groups)
        await self.send_json({"event": "subscribed", "object": kind, "id": object_id})

    async def _send_task_state(self, operation_id: str, since: int | None, seq: int, snapshot):
        """Log lines after `since` up to `seq` (in chunks), then the state at `seq`."""
        after = since if since is not None else seq
        while after < seq:
            lines = await _log_lines(operation_id, after, seq)
            if not lines:
                break
            after = lines[-1]["seq"]
            await self.send_json(
                {
                    "event": "task.log",
                    "seq": after,
                    "payload": {"operationId": operation_id, "lines": lines},
                }
            )
        key = _task_key(operation_id)
        # max: an event forwarded while this state was read may already be newer.
        self.delivered[key] = max(seq, self.delivered.get(key, 0))
        await self.send_json({"event": "task.snapshot", "seq": seq, "payload": snapshot})

    async def _unsubscribe(self, content):
        groups = await self._groups_for(content)
        if groups is None:
            return
        if content.get("object") == events.ENVIRONMENT:
            found = await _environment_snapshot(content["id"])
            groups = [found[0]] if found else []
        if content.get("object") == events.TASK:
            self.followed_tasks.discard(content["id"])
        await self._leave(*groups)
        await self.send_json(
            {"event": "unsubscribed", "object": content.get("object"), "id": content.get("id")}
        )

    async def sfp_event(self, message):
        """A domain event from the channel layer (`type: sfp.event`)."""
        event, payload, seq = message["event"], message["payload"], message.get("seq")
        key = _object_key(event, payload)
        if key is None or seq is None:
            await self.send_json({"event": event, "payload": payload})
            return
        lines = payload.get("lines") if event == "task.log" else None
        first = lines[0]["seq"] if lines else seq
        last_sent = self.delivered.get(key)
        operation_id = payload.get("operationId")
        if (
            last_sent is not None
            and first > last_sent + 1
            and event != "environment.lock"  # lock events carry the whole state: skips are fine
            and operation_id in self.followed_tasks
        ):
            await self._resync_task(operation_id, since=last_sent)
            last_sent = self.delivered.get(key)
        if last_sent is not None and seq <= last_sent:
            live_metrics.DUPLICATES_DROPPED.inc()
            return  # already sent: through another subscription, a catch-up or a resync
        if lines and last_sent is not None:
            payload = payload | {"lines": [line for line in lines if line["seq"] > last_sent]}
        self.delivered[key] = seq
        live_metrics.EVENTS_SENT.labels(event=event).inc()
        if payload is message["payload"]:  # as published: the same frame for every socket
            await self.send(text_data=_encoded_event(event, key, seq, payload))
        else:
            await self.send_json({"event": event, "seq": seq, "payload": payload})

    async def heal(self) -> None:
        """After a channel-layer outage (`apps.live.layer_watch`): join every group again (the
        layer may have lost the subscriptions) and re-read each followed task from the database,
        since events published meanwhile were lost."""
        for group in list(self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)
        for operation_id in list(self.followed_tasks):
            since = self.delivered.get(_task_key(operation_id), 0)
            await self._resync_task(operation_id, since=since)

    async def _resync_task(self, operation_id: str, *, since: int) -> None:
        logger.info("live_resync", operation_id=operation_id, since=since)
        live_metrics.RESYNCS.inc()
        found = await _task_snapshot(operation_id)
        if found is not None:
            await self._send_task_state(operation_id, since, *found)
