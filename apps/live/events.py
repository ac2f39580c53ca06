"""The live event catalogue: every message the server sends over `/sfp/ws`, and its payload.

How to connect, the limits a connection lives by and a script client: `docs/live.md`.

Connecting: a script sends its token in `Authorization: Bearer …` and no `Origin` header; a
browser's `Origin` must be one of `ALLOWED_HOSTS` (session cookie or `authenticate` message). A
socket not authenticated `SFP_LIVE_AUTH_SECONDS` (10 s) after it opened is closed with 4401.

Client → server (JSON text frames, at most `SFP_LIVE_MAX_FRAME_CHARS` characters, at most
`SFP_LIVE_FRAMES_PER_SECOND` per second with bursts of `SFP_LIVE_FRAME_BURST`):

- `{"action": "authenticate", "token": "<JWT or sfp_app_…>"}` — first message, when the token was
  not sent in the `Authorization` header (browsers cannot set it) and there is no login session.
- `{"action": "subscribe", "object": "task", "id": "<operationId>", "since": <seq>?}` — follow a
  task. With `since` (the last `seq` the client saw of this task; 0 for the whole log), the log
  lines after it are sent first, from the database, then the task's state.
- `{"action": "subscribe", "object": "tasks"}` — the feed of every task's events.
- `{"action": "subscribe", "object": "me"}` — the caller's own feed: events of the tasks and
  pipelines it started (a user's, or an application token's), plus, for owners, every
  `pipeline.gate` event (owners are the ones who decide gates).
- `{"action": "subscribe", "object": "environment", "id": "<environment id>"}` — its lock.
- `{"action": "subscribe", "object": "project", "id": "<owner/repo>"}` — locks of its resources.
- `{"action": "subscribe", "object": "locks"}` — the feed of every resource's lock events (the
  lock board: it also sees projects and environments created after it subscribed).
- `{"action": "unsubscribe", "object": …, "id": …}` — the same shapes, to stop.

Every subscription is checked against the API's read roles (owner, member, application).

Server → client. Events about an object carry `seq`, the object's own sequence number: one
counter per task (its status, progress, log lines and gates share it; a log line's `seq` is its
number in that counter) and one per lock resource. Numbers of one object only grow, and a task's
numbers have no holes: every number is one event or one log line. So a client keeps the last
`seq` it applied per object, ignores anything at or below it, and reconnects with
`since` = that number to get exactly what it missed.

- `{"event": "ready", "user": "<email>", "roles": [...]}` after authentication.
- `{"event": "subscribed", "object": …, "id": …}` / `{"event": "unsubscribed", …}`.
- `{"event": "task.log", "seq": n, "payload": {operationId, lines: [{seq, stream, message,
  timestamp}]}}` — log lines in batches (`seq` of the event = its last line's); on subscribe with
  `since`, the missed lines come first, in chunks of up to 1,000.
- `{"event": "task.snapshot", "seq": n, "payload": {operationId, status, progress, currentStep,
  error}}` — the task's state at `n`, sent on subscribe after the missed lines: status and
  progress are state, so the latest value stands for every change before it.
- `{"event": "task.status", "seq": n, "payload": {operationId, status}}` — a status change.
- `{"event": "task.progress", "seq": n, "payload": {operationId, progress, currentStep}}` —
  either field is null when it did not change.
- `{"event": "pipeline.gate", "seq": n, "payload": {operationId, step, gateId, state, title?,
  by?}}` — a pipeline's gate: state is waiting, approved or rejected; numbered in the pipeline's
  counter; on the pipeline's task group, the tasks feed and owners' `me` feeds.
- `{"event": "environment.snapshot", "seq": n, "payload": {environmentId, name} + <lock state>}`
  — sent on subscribe to an environment.
- `{"event": "environment.lock", "seq": n, "payload": <lock state>}` — whenever a resource's
  holder, queue or expiry changes (environment, project and locks subscriptions). Each one carries
  the whole state, so a skipped number loses nothing.

  `<lock state>` is the one shape of a resource's lock, the same as an environment's `lockStatus`
  in the REST API and the lock board's rows (built by `lock_state_dto` in
  `apps/environments/selectors/locks.py`): `{repository, resource, isLocked, currentLock:
  {ticketId, lockedBy, lockReason, leaseStart, expiresAt, expiresInSeconds} | null, queuedLocks:
  [{position, ticketId, requestedBy, reason, estimatedWaitSeconds}]}`.
- `{"event": "error", "message": "…"}` for a refused or malformed request: a binary, non-JSON,
  too deeply nested or oversized frame, a message of the wrong shape or types, an unknown
  object, or a frame over the rate limit. The socket stays open.

Delivery: events are published by the domain apps through `apps.core.events.publish` after their
transaction commits; the socket only forwards them, never twice per object. If a followed task's
events skip a number on the way (a Redis reconnect, or two processes' events overtaking each
other), the socket re-reads the task from the database and sends the missed lines and the current
state before going on. When the channel layer comes back after an outage, every socket rejoins
its groups and does the same for each task it follows (`apps.live.layer_watch`). Each
connection has its own channel and buffer, so a client that reads slowly delays nobody else;
one that stops answering pings is closed by daphne.

Close codes: 4401 unauthenticated (no or bad credentials, or none in time), 4403 forbidden (a
caller with no role left; a refused origin is refused before the socket opens, HTTP 403), 4429
too many frames (more refused frames than the burst before the client slowed down). The
caller is checked again on every subscribe and every `SFP_LIVE_RECHECK_SECONDS` (60 s): a token
revoked or expired, or a session ended, since the socket opened closes it with 4401; a role lost
closes it with 4403 — as the API would refuse the next request. A client reconnects with fresh
credentials and `since`.
"""

# Client actions.
AUTHENTICATE = "authenticate"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"

# Objects a client can follow.
TASK = "task"
TASKS_FEED = "tasks"
LOCKS_FEED = "locks"
MY_FEED = "me"
ENVIRONMENT = "environment"
PROJECT = "project"

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_FRAMES = 4429
