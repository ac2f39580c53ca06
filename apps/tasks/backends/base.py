"""The project's task class: a django.tasks `Task` for one operation of the catalogue.

It carries only the operation's name (`task_type`); its policy (pool, retries, backoff, timeout)
is read from the catalogue's `Operation`, the one declaration every backend reads, so the same
operation means the same retries, backoff, timeout and pool routing on the database backend and
on Hatchet.
"""

from dataclasses import dataclass

from django.tasks.base import Task


@dataclass(frozen=True, slots=True, kw_only=True)
class SfpTask(Task):
    task_type: str = ""

    @property
    def operation(self):
        from apps.tasks.catalogue import operation

        return operation(self.task_type)

    @property
    def pool(self) -> str:
        return self.operation.pool

    @property
    def retries(self) -> int:
        return self.operation.retries

    @property
    def backoff_seconds(self) -> float:
        return self.operation.backoff_seconds

    @property
    def backoff_max_seconds(self) -> float:
        return self.operation.backoff_max_seconds

    @property
    def timeout_seconds(self) -> int:
        return self.operation.timeout_seconds
