"""The project's task class: a django.tasks `Task` carrying the operation's policy.

Declared with `@task(queue_name=<pool>, task_type=…, retries=…, backoff_seconds=…,
timeout_seconds=…)`; every backend reads the policy from here, so the same declaration means the
same retries, backoff, timeout and pool routing on the database backend and on Hatchet.
"""

from dataclasses import dataclass

from django.tasks.base import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class SfpTask(Task):
    task_type: str = ""
    retries: int = 0
    backoff_seconds: float = 5.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: int = 3600

    @property
    def pool(self) -> str:
        return self.queue_name
