"""The `/sfp/ws` WebSocket: authenticated with the API's own credentials, subscriptions checked
with the API's role rules, catch-up from the database, then live events from the channel layer.

The protocol and every event are documented in `apps.live.events`. Tokens are never logged.
"""

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.core.events import group_name
from apps.live import events

logger = structlog.get_logger(__name__)

READ_ROLES = {"owner", "member", "application"}
CATCH_UP_LIMIT = 5000


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
def _environment_target(environment_id: str) -> tuple[str, dict] | None:
    from apps.environments.environments import lock_status
    from apps.environments.models import Environment

    try:
        environment = (
            Environment.objects.select_related("project").filter(pk=environment_id).first()
        )
    except ValueError:  # not a UUID
        return None
    if environment is None:
        return None
    group = f"lock.{environment.project.identifier}.{environment.lock_resource}"
    return group, {"environmentId": str(environment.pk), "name": environment.name} | lock_status(
        environment
    )


@database_sync_to_async
def _project_exists(identifier: str) -> bool:
    from apps.projects.selectors import project_exists

    return project_exists(identifier)


@database_sync_to_async
def _task_snapshot(operation_id: str, since: int | None) -> tuple[dict | None, list[dict]]:
    from apps.tasks.models import TaskExecution, TaskLogLine

    execution = TaskExecution.objects.filter(pk=operation_id).first()
    if execution is None:
        return None, []
    snapshot = {
        "operationId": execution.operation_id,
        "status": execution.status,
        "progress": execution.progress,
        "currentStep": execution.current_step or None,
        "error": execution.error,
    }
    lines = []
    if since is not None:
        lines = [
            {"seq": line.seq, "stream": line.stream, "message": line.message,
             "timestamp": line.logged_at.isoformat()}
            for line in TaskLogLine.objects.filter(execution=execution, seq__gt=since)
            .order_by("seq")[:CATCH_UP_LIMIT]
        ]  # fmt: skip
    return snapshot, lines


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.principal = None
        self.groups_joined: set[str] = set()
        await self.accept()
        header = dict(self.scope.get("headers", [])).get(b"authorization", b"").decode()
        if header.lower().startswith("bearer "):
            self.principal = await _principal_from_token(header[7:].strip())
            if self.principal is None:
                await self.close(code=events.CLOSE_UNAUTHENTICATED)
                return
        else:
            self.principal = await _principal_from_session(self.scope.get("user"))
        if self.principal is not None:
            await self._ready()

    async def _ready(self):
        if not self.principal.roles & READ_ROLES:  # authenticated, but no role left
            await self.close(code=events.CLOSE_FORBIDDEN)
            return
        await self.send_json(
            {
                "event": "ready",
                "user": self.principal.user.email,
                "roles": sorted(self.principal.roles),
            }
        )

    async def disconnect(self, code):
        for group in self.groups_joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            await self.send_json({"event": "error", "message": "Send JSON objects"})
            return
        action = content.get("action")
        if self.principal is None:
            if action != events.AUTHENTICATE or not isinstance(content.get("token"), str):
                await self.close(code=events.CLOSE_UNAUTHENTICATED)
                return
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
            await self.send_json({"event": "error", "message": f"Unknown action {action!r}"})

    async def _target(self, content) -> str | None:
        kind = content.get("object")
        if not self.principal.roles & READ_ROLES:
            await self.send_json(
                {
                    "event": "error",
                    "message": "Forbidden - Requires role: owner, member, application",
                }
            )
            return None
        if kind == events.TASKS_FEED:
            return "tasks"
        has_id = isinstance(content.get("id"), str)
        if kind == events.TASK and has_id:
            return f"task.{content['id']}"
        if kind == events.ENVIRONMENT and has_id:
            return f"environment:{content['id']}"
        if kind == events.PROJECT and has_id:
            return f"project.{content['id']}"
        await self.send_json(
            {
                "event": "error",
                "message": "object must be task, environment, project (with an id) or tasks",
            }
        )
        return None

    async def _subscribe(self, content):
        group = await self._target(content)
        if group is None:
            return
        if group.startswith("task."):
            since = content.get("since")
            if since is not None and not isinstance(since, int):
                await self.send_json({"event": "error", "message": "since must be an integer"})
                return
            # Join first, then read the database: nothing can fall between the two.
            await self.channel_layer.group_add(group_name(group), self.channel_name)
            snapshot, lines = await _task_snapshot(content["id"], since)
            if snapshot is None:
                await self.channel_layer.group_discard(group_name(group), self.channel_name)
                await self.send_json(
                    {"event": "error", "message": f"Task {content['id']} not found"}
                )
                return
            self.groups_joined.add(group_name(group))
            await self.send_json({"event": "subscribed", "object": "task", "id": content["id"]})
            await self.send_json({"event": "task.snapshot", "payload": snapshot})
            if lines:
                self.last_sent_seq = {content["id"]: lines[-1]["seq"]}
                await self.send_json(
                    {"event": "task.log", "payload": {"operationId": content["id"], "lines": lines}}
                )
            return
        if group.startswith("environment:"):
            target = await _environment_target(content["id"])
            if target is None:
                await self.send_json(
                    {"event": "error", "message": f"Environment {content['id']} not found"}
                )
                return
            lock_group, snapshot = target
            await self.channel_layer.group_add(group_name(lock_group), self.channel_name)
            self.groups_joined.add(group_name(lock_group))
            await self.send_json(
                {"event": "subscribed", "object": "environment", "id": content["id"]}
            )
            await self.send_json({"event": "environment.snapshot", "payload": snapshot})
            return
        if group.startswith("project.") and not await _project_exists(content["id"]):
            await self.send_json(
                {"event": "error", "message": f"Project {content['id']} not found"}
            )
            return
        await self.channel_layer.group_add(group_name(group), self.channel_name)
        self.groups_joined.add(group_name(group))
        await self.send_json(
            {"event": "subscribed", "object": content.get("object"), "id": content.get("id")}
        )

    async def _unsubscribe(self, content):
        group = await self._target(content)
        if group is None:
            return
        await self.channel_layer.group_discard(group_name(group), self.channel_name)
        self.groups_joined.discard(group_name(group))
        await self.send_json(
            {"event": "unsubscribed", "object": content.get("object"), "id": content.get("id")}
        )

    async def sfp_event(self, message):
        """A domain event from the channel layer (`type: sfp.event`)."""
        payload = message["payload"]
        if message["event"] == "task.log":
            # Lines already sent by the catch-up are not sent twice.
            last = getattr(self, "last_sent_seq", {}).get(payload.get("operationId"), 0)
            lines = [line for line in payload["lines"] if line["seq"] > last]
            if not lines:
                return
            payload = payload | {"lines": lines}
        await self.send_json({"event": message["event"], "payload": payload})
