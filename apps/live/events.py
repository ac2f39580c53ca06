"""The live event catalogue: every message the server sends over `/sfp/ws`, and its payload.

Client → server (JSON text frames):

- `{"action": "authenticate", "token": "<JWT or sfp_app_…>"}` — first message, when the token was
  not sent in the `Authorization` header (browsers cannot set it) and there is no login session.
- `{"action": "subscribe", "object": "task", "id": "<operationId>", "since": <seq>?}` — follow a
  task; with `since`, the log lines after that sequence number are sent first, from the database.
- `{"action": "subscribe", "object": "tasks"}` — the feed of every task's events.
- `{"action": "subscribe", "object": "environment", "id": "<environment id>"}` — its lock.
- `{"action": "subscribe", "object": "project", "id": "<owner/repo>"}` — locks of its resources.
- `{"action": "unsubscribe", "object": "task", "id": "<operationId>"}`.

Server → client:

- `{"event": "ready", "user": "<email>", "roles": [...]}` after authentication.
- `{"event": "subscribed", "object": …, "id": …}` / `{"event": "unsubscribed", …}`.
- `{"event": "task.snapshot", "payload": {operationId, status, progress, currentStep, error}}` —
  sent on subscribe, so a (re)connecting client starts from the current state.
- `{"event": "task.status", "payload": {operationId, status}}` — a status change.
- `{"event": "task.progress", "payload": {operationId, progress, currentStep}}`.
- `{"event": "task.log", "payload": {operationId, lines: [{seq, stream, message, timestamp}]}}` —
  log lines in batches; `seq` is the line's number within the task, so a client that reconnects
  with `since` = the last `seq` it saw misses nothing and sees nothing twice.
- `{"event": "environment.snapshot", "payload": {environmentId, name, isLocked, currentLock,
  queuedLocks}}` — sent on subscribe to an environment.
- `{"event": "environment.lock", "payload": {repository, resource, isLocked, lockedBy, expiresAt,
  queued: [holder…]}}` — whenever a resource's holder or queue changes (environment and project).
- `{"event": "pipeline.gate", "payload": {operationId, step, gateId, state, title?, by?}}` — state
  is waiting, approved or rejected; on the pipeline's task group and the tasks feed.
- `{"event": "error", "message": "…"}` for a refused or malformed request (the socket stays open).

Close codes: 4401 unauthenticated (no or bad credentials), 4403 forbidden (origin refused).
Events are published by the domain apps through `apps.core.events.publish` after their
transaction commits; the socket only forwards them.
"""

# Client actions.
AUTHENTICATE = "authenticate"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"

# Objects a client can follow.
TASK = "task"
TASKS_FEED = "tasks"
ENVIRONMENT = "environment"
PROJECT = "project"

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
